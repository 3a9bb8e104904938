"""The real `pinpoint-agent export` end to end: CLI → Prefect flow → plugin process → sessions → files."""

from __future__ import annotations

import orjson
import pytest

from pinpoint_agent.ids import values
from tests.export.helpers import read_export, run_cli

MOCK = [{"id": "m1", "name": "mock", "type": 1, "config": {"repos": 3, "prs_per_repo": 40, "users": 4}}]


@pytest.fixture
def mock_file(tmp_path):
    p = tmp_path / "integrations.json"
    p.write_text(orjson.dumps(MOCK).decode())
    return p


@pytest.mark.usefixtures("prefect_api")
def test_two_exports_first_historical_then_incremental(tmp_path, mock_file):
    """The first export sends everything (historical), the second only the mock's new pull requests."""
    root, out = tmp_path / "root", tmp_path / "result.json"
    first = run_cli("export", "--integrations-file", str(mock_file), "--pinpoint-root", str(root),
                    "--output-file", str(out), "--agent-config-json", '{"customer_id": "cust1"}')
    assert first.returncode == 0, first.stderr
    r1 = orjson.loads(out.read_bytes())
    assert r1["integrations"][0]["incremental"] is False and r1["integrations"][0]["error"] == ""
    assert [p["name"] for p in r1["integrations"][0]["projects"]] == [f"mock-org/repo-{i}" for i in range(3)]
    o1 = read_export(root, r1["export_id"])
    assert len(o1["sourcecode.PullRequest"]) == 120 and len(o1["sourcecode.User"]) == 4

    users = o1["sourcecode.CommitUser"]
    assert len(users) == 4
    for u in users:
        assert u["ref_type"] == "git"
        assert u["ref_id"] == values("cust1", u["email"])
        assert u["id"] == values("User", "cust1", u["email"], "git", u["associated_ref_id"])
        assert u["email"] == u["email"].lower()

    second = run_cli("export", "--integrations-file", str(mock_file), "--pinpoint-root", str(root),
                     "--output-file", str(out), "--agent-config-json", '{"customer_id": "cust1"}')
    assert second.returncode == 0, second.stderr
    r2 = orjson.loads(out.read_bytes())
    assert r2["integrations"][0]["incremental"] is True
    o2 = read_export(root, r2["export_id"])
    assert sorted(o2) == ["sourcecode.PullRequest"]
    new_refs = sorted(pr["ref_id"] for pr in o2["sourcecode.PullRequest"])
    assert new_refs == ["0-40", "1-40", "2-40"]
    log = (root / "logs" / "export").read_text()
    assert "incremental=True" in log and "incremental=False" not in log  # the log holds the last run only


def test_export_leaves_progress_and_summary_artifacts(tmp_path, mock_file, prefect_api):
    """The Prefect UI shows a progress artifact per integration (at 100%) and an export-summary table."""
    import httpx

    root = tmp_path / "root"
    assert run_cli("export", "--integrations-file", str(mock_file), "--pinpoint-root", str(root)).returncode == 0
    arts = httpx.post(f"{prefect_api}/artifacts/latest/filter", json={"limit": 200}, timeout=30).json()
    by_key = {a["key"]: a for a in arts}
    assert by_key["progress-mock-sourcecode-m1"]["data"] == 100.0
    table = orjson.loads(by_key["export-summary"]["data"]) if isinstance(by_key["export-summary"]["data"], str) \
        else by_key["export-summary"]["data"]
    rows = {r["model"]: r for r in table}
    assert rows["sourcecode.PullRequest"]["objects"] == 120 and rows["sourcecode.PullRequest"]["mode"] == "historical"


@pytest.mark.usefixtures("prefect_api")
def test_reprocess_historical_sends_everything_again(tmp_path, mock_file):
    """--reprocess-historical ignores stored tokens and dedup: the full data set comes out again."""
    root, out = tmp_path / "root", tmp_path / "result.json"
    for _ in range(2):
        assert run_cli("export", "--integrations-file", str(mock_file), "--pinpoint-root", str(root)).returncode == 0
    again = run_cli("export", "--integrations-file", str(mock_file), "--pinpoint-root", str(root),
                    "--reprocess-historical", "--output-file", str(out))
    assert again.returncode == 0, again.stderr
    r = orjson.loads(out.read_bytes())
    assert r["integrations"][0]["incremental"] is False
    out_objects = read_export(root, r["export_id"])
    # unchanged objects are written again (dedup is bypassed) and the mock restarts from its first run
    assert len(out_objects["sourcecode.PullRequest"]) == 3 * 40 and len(out_objects["sourcecode.User"]) == 4


@pytest.mark.usefixtures("prefect_api")
def test_integration_failure_is_in_the_result_with_exit_0(tmp_path):
    """A crashing integration is reported in the result JSON (exit 0); the other integration completes."""
    both = [MOCK[0], {"id": "bad", "name": "mock", "type": 0,
                      "config": {"repos": 1, "fail": {"mode": "crash", "after_objects": 2}}}]
    root, out = tmp_path / "root", tmp_path / "r.json"
    proc = run_cli("export", "--integrations-json", orjson.dumps(both).decode(), "--pinpoint-root", str(root),
                   "--output-file", str(out))
    assert proc.returncode == 0, proc.stderr
    r = {i["id"]: i for i in orjson.loads(out.read_bytes())["integrations"]}
    assert r["m1"]["error"] == ""
    assert "mock@WORK@bad" in r["bad"]["error"] and "exit code 17" in r["bad"]["error"]
    assert "crashed" in proc.stdout  # repeated on the agent's stdout
    assert not list((root / "exports").rglob("*.temp.gz"))


def test_force_historical_drops_tokens(tmp_path, mock_file, prefect_api):
    """force-historical makes the next export of that integration historical."""
    root, out = tmp_path / "root", tmp_path / "r.json"
    assert run_cli("export", "--integrations-file", str(mock_file), "--pinpoint-root", str(root)).returncode == 0
    forced = run_cli("force-historical", "mock@SOURCECODE", "--pinpoint-root", str(root))
    assert forced.returncode == 0 and "dropped" in forced.stdout
    assert run_cli("export", "--integrations-file", str(mock_file), "--pinpoint-root", str(root),
                   "--output-file", str(out)).returncode == 0
    assert orjson.loads(out.read_bytes())["integrations"][0]["incremental"] is False


def test_secrets_stay_out_of_prefect_logs_and_output(tmp_path, prefect_api):
    """A token in an integration's config reaches neither Prefect's stored parameters, nor a log, nor output."""
    import httpx

    token = "tok-" + "9f8e7d6c5b4a" * 2
    ints = [{"id": "s", "name": "mock", "type": 1, "config": {"repos": 1, "prs_per_repo": 2, "api_key": token}}]
    root, out = tmp_path / "root", tmp_path / "r.json"
    proc = run_cli("export", "--integrations-json", orjson.dumps(ints).decode(), "--pinpoint-root", str(root),
                   "--output-file", str(out), "--log-level", "debug")
    assert proc.returncode == 0, proc.stderr
    runs = httpx.post(f"{prefect_api}/flow_runs/filter", json={"limit": 200}, timeout=30).json()
    assert runs and token not in orjson.dumps(runs).decode()
    assert any(str(r["parameters"]).count("secret-store:run/") for r in runs)
    import os
    from pathlib import Path

    prefect_home = Path(os.environ["PREFECT_HOME"])  # the session's server keeps its database there
    for f in [out, *root.rglob("*"), *prefect_home.rglob("*")]:
        if f.is_file():
            data = f.read_bytes()
            assert token.encode() not in data, f
    assert token not in proc.stdout + proc.stderr
