"""`pinpoint-agent export` with a backend, end to end: CLI → flow → mock plugin → upload to a real HTTP fake
on loopback → result report → state committed (or discarded)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from pinpoint_agent.backend import EnrolledConfig
from pinpoint_agent.testing.fake_backend import FakeBackend
from tests.forwarding.conftest import API_KEY
from tests.forwarding.helpers import export, pr_refs, run_cli, tokens, uploaded, zip_names

pytestmark = pytest.mark.usefixtures("prefect_api")

FIRST_RUN_PRS = sorted(f"{repo}-{n}" for repo in range(2) for n in range(50))


def test_enrolled_export_is_uploaded_reported_then_committed(
    backend: FakeBackend, enrolled: EnrolledConfig, root: Path, tmp_path: Path
) -> None:
    """With config.json the export asks for an upload url, uploads every object as a zip of parts, reports the
    result after the last part, ships its log lines, and only then are the tokens current."""
    done = export(root, tmp_path / "r.json")
    eid = done.export_id
    assert done.upload["error"] == "" and done.upload["parts"] >= 1
    assert done.upload["bytes"] == len(backend.assembled(eid))
    assert backend.upload_url_requests == [{"export_id": eid, "job_id": eid}]
    objects = uploaded(backend, eid)
    assert pr_refs(objects) == FIRST_RUN_PRS
    assert "export.log" in zip_names(backend, eid)
    assert not (root / "exports" / eid).exists()  # the backend holds the data now

    (report,) = backend.results
    assert report["success"] is True and report["export_id"] == eid
    assert report["upload"]["parts"] == done.upload["parts"] and report["upload"]["bytes"] == done.upload["bytes"]
    assert report["result"]["integrations"][0]["objects"]["sourcecode.PullRequest"] == 100
    paths = [(r.method, r.path.split("?")[0]) for r in backend.requests
             if not r.path.startswith(("/agent/logs/", "/agent/enroll"))]
    assert paths[-1] == ("POST", "/agent/export/result")  # reported after every part arrived
    assert all(m == "PUT" for m, _ in paths[1:-1]) and paths[0] == ("POST", "/agent/export/upload-url")

    assert tokens(root)  # committed once the report was accepted
    shipped = backend.log_lines
    assert any(line["event"] == "export started" for line in shipped)
    assert all(line["export_id"] == eid for line in shipped)
    assert {b[0] for b in backend.log_batches} == {"export"}
    assert done.result["integrations"][0]["error"] == ""


def test_failed_upload_keeps_state_and_the_rerun_sends_everything_again(
    backend: FakeBackend, enrolled: EnrolledConfig, root: Path, tmp_path: Path
) -> None:
    """A refused upload leaves tokens and dedup untouched (reported as failed, exit 0); the rerun uploads the
    same objects again, and only after that success does a third run send just the new ones."""
    backend.fail_next(1, status=403, path_prefix="/upload/")
    failed = export(root, tmp_path / "r.json")
    assert failed.proc.stderr == "" and "Traceback" not in failed.proc.stdout
    assert "403" in failed.upload["error"] and failed.upload["parts"] == 0
    assert tokens(root) == {}
    assert backend.results[-1]["success"] is False and "403" in backend.results[-1]["error"]
    assert backend.uploads() == []
    assert not (root / "exports" / failed.export_id).exists()

    again = export(root, tmp_path / "r.json")
    assert again.upload["error"] == ""
    resent = uploaded(backend, again.export_id)
    assert pr_refs(resent) == FIRST_RUN_PRS  # the same objects as the failed export held
    assert resent.get("sourcecode.User")  # dedup was not advanced either
    assert again.result["integrations"][0]["incremental"] is False
    assert tokens(root)

    third = export(root, tmp_path / "r.json")
    only_new = uploaded(backend, third.export_id)
    assert third.result["integrations"][0]["incremental"] is True
    assert pr_refs(only_new) == ["0-50", "1-50"] and "sourcecode.User" not in only_new


def test_rejected_report_means_not_delivered(
    backend: FakeBackend, enrolled: EnrolledConfig, root: Path, tmp_path: Path
) -> None:
    """Parts that arrived do not count until the result report is accepted: a refused report leaves tokens
    unchanged."""
    backend.fail_next(1, status=400, path_prefix="/agent/export/result")
    done = export(root, tmp_path / "r.json")
    assert backend.uploads() == [done.export_id]  # the parts arrived
    assert "export/result" in done.upload["error"] and "400" in done.upload["error"]
    assert tokens(root) == {}


def test_transient_backend_failures_are_retried(
    backend: FakeBackend, enrolled: EnrolledConfig, root: Path, tmp_path: Path
) -> None:
    """503s on parts and on the report and a dropped upload-url request are retried; the export is delivered."""
    backend.drop_next(1, path_prefix="/agent/export/upload-url")
    backend.fail_next(2, status=503, path_prefix="/upload/")
    backend.fail_next(1, status=503, retry_after=0.1, path_prefix="/agent/export/result")
    done = export(root, tmp_path / "r.json")
    assert done.upload["error"] == ""
    assert backend.part_attempts(done.export_id) == done.upload["parts"]  # a faulted PUT is answered before it
    statuses = [r.status for r in backend.requests if r.path.startswith("/upload/")]
    assert statuses.count(503) == 2 and statuses.count(202) == done.upload["parts"]
    assert [r["success"] for r in backend.results] == [True]
    assert pr_refs(uploaded(backend, done.export_id)) == FIRST_RUN_PRS
    assert tokens(root)


def test_agent_config_backend_wins_and_its_key_leaks_nowhere(
    backend: FakeBackend, root: Path, tmp_path: Path, prefect_api: str
) -> None:
    """backend_url+api_key in the agent config win over config.json and take its upload_url; the key is in no
    file under the root, no output, no Prefect parameter, no shipped log line and no error."""
    import httpx

    with FakeBackend(api_key="other-key-000111222") as enrolled_backend:
        run = run_cli("enroll", "good-code", "--backend-url", enrolled_backend.url, "--pinpoint-root", str(root))
        assert run.returncode == 0, run.stderr
        agent = {"customer_id": "cust-fwd", "backend_url": backend.url, "api_key": API_KEY,
                 "upload_url": backend.upload_url("job-77"), "job_id": "job-77"}
        backend.fail_next(1, status=503, path_prefix="/upload/")  # an error path, with the key in the header
        done = export(root, tmp_path / "r.json", agent)
        assert enrolled_backend.requests == [r for r in enrolled_backend.requests if r.path == "/agent/enroll"]
    assert done.upload["error"] == "" and backend.upload_url_requests == []
    assert backend.uploads() == ["job-77"] and backend.results[0]["job_id"] == "job-77"

    runs = httpx.post(f"{prefect_api}/flow_runs/filter", json={"limit": 200}, timeout=30).json()
    texts = [orjson.dumps(runs).decode(), done.proc.stdout, done.proc.stderr,
             orjson.dumps(backend.log_lines).decode(), orjson.dumps(backend.results).decode()]
    assert all(API_KEY not in t for t in texts)
    for f in [tmp_path / "r.json", *root.rglob("*")]:
        if f.is_file():
            assert API_KEY.encode() not in f.read_bytes(), f
    zipped = backend.assembled("job-77")
    assert API_KEY.encode() not in zipped


def test_half_a_backend_in_the_agent_config_exits_1(root: Path, tmp_path: Path) -> None:
    """backend_url without api_key is one line on stderr and exit 1, before anything is exported."""
    proc = run_cli("export", "--integrations-json", orjson.dumps([{"name": "mock", "type": 1}]).decode(),
                   "--pinpoint-root", str(root), "--agent-config-json", '{"backend_url": "http://127.0.0.1:9"}')
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == ["error: agent config: backend_url and api_key go together "
                                                "(api_key is missing)"]
    assert not (root / "exports").exists()
