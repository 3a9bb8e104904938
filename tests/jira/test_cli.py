"""The real `pinpoint-agent export` CLI on the fake Jira: Prefect flow -> jira plugin -> sessions -> files, a
second (incremental) export that writes only what changed, and no credential anywhere."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.export.helpers import read_export, run_cli
from tests.github.test_cli import every_file_text
from tests.jira.fake_jira import API_TOKEN, PAT, FakeJira


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_api")
def test_cli_export_then_incremental_export_and_no_token_anywhere(cloud: FakeJira, tmp_path: Path) -> None:
    """`pinpoint-agent export --integrations-json` writes the work models; after one issue changes, the second
    export is incremental, searches `updated >=` and writes that issue only; the API token is in no log,
    output, state or result (a 429 wait is logged on the way)."""
    cloud.rate_limit("/search/jql", wait=1)
    entries = orjson.dumps([{"id": "j1", "name": "jira", "type": 0, "config": cloud.config(page_size=4)}]).decode()
    root, out = tmp_path / "root", tmp_path / "result.json"
    args = ["export", "--integrations-json", entries, "--pinpoint-root", str(root), "--output-file", str(out),
            "--agent-config-json", '{"customer_id": "c1"}']
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    r1 = orjson.loads(out.read_bytes())
    jira = r1["integrations"][0]
    assert jira["error"] == "" and jira["incremental"] is False
    assert [(p["name"], p["error"]) for p in jira["projects"]] == [("ENG", ""), ("OPS", ""), ("DOC", "")]
    o1 = read_export(root, r1["export_id"])
    assert {m: len(o1.get(m, [])) for m in ("work.Project", "work.User", "work.Issue", "work.IssueComment",
                                            "work.Sprint")} == {"work.Project": 3, "work.User": 4, "work.Issue": 21,
                                                                "work.IssueComment": 42, "work.Sprint": 4}

    first_logs = every_file_text(root / "logs")  # logs keep the last run only
    assert "rate limited" in first_logs

    changed = cloud.data.by_key("OPS-6")
    assert changed is not None
    cloud.data.touch(changed, summary="Renamed while nobody looked")
    cloud.jqls.clear()
    second = run_cli(*args)
    assert second.returncode == 0, second.stderr
    r2 = orjson.loads(out.read_bytes())
    assert r2["integrations"][0]["incremental"] is True and r2["integrations"][0]["error"] == ""
    o2 = read_export(root, r2["export_id"])
    assert [i["identifier"] for i in o2["work.Issue"]] == ["OPS-6"]
    assert o2["work.Issue"][0]["title"] == "Renamed while nobody looked"
    assert all("updated >=" in j for j in cloud.jqls) and len(cloud.jqls) == 3

    everything = "\n".join([every_file_text(root), first_logs, first.stdout, first.stderr, second.stdout, second.stderr,
                            out.read_text()])
    # The agent names a `jira` entry by its host (127.0.0.1: jira-hosted); the config's flavor says Cloud.
    assert (root / "logs" / "integrations" / "jira-hosted@WORK@j1").stat().st_size > 0
    assert API_TOKEN not in everything


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_api")
def test_cli_interactive_commands_on_data_center(dc: FakeJira, tmp_path: Path) -> None:
    """validate-config, export-onboard-data workconfig and mutate ISSUE_SET_TITLE through the real CLI against a
    Data Center fake (the backend's `jira` on a non-Atlassian host runs as jira-hosted), with the PAT nowhere."""
    entries = orjson.dumps([{"id": "j2", "name": "jira", "type": 0, "config": dc.config()}]).decode()
    root = tmp_path / "root"
    common = ["--integrations-json", entries, "--pinpoint-root", str(root), "--agent-config-json",
              '{"customer_id": "c1"}']
    outputs = []
    for n, extra in enumerate((["validate-config"], ["export-onboard-data", "--object-type", "workconfig"],
                               ["mutate", "--mutation", '{"fn": "ISSUE_SET_TITLE", "data": {"ref_id": "DOC-3", '
                                                        '"title": "Retitled from the CLI"}}'])):
        out = tmp_path / f"out{n}.json"
        proc = run_cli(extra[0], *extra[1:], *common, "--output-file", str(out))
        assert proc.returncode == 0, proc.stderr
        outputs.append((orjson.loads(out.read_bytes()), proc.stdout + proc.stderr))
    (valid, _), (onboard, _), (mutated, _) = outputs
    assert valid == {"errors": [], "success": True, "server_version": "9.12.2"}
    assert onboard["success"] is True and [s["name"] for s in onboard["data"]["statuses"]][0] == "To Do"
    assert mutated["success"] is True and mutated["error"] == ""
    [issue] = mutated["mutated_objects"]["work.Issue"]
    assert issue["identifier"] == "DOC-3" and issue["title"] == "Retitled from the CLI"
    doc3 = dc.data.by_key("DOC-3")
    assert doc3 is not None and doc3.summary == "Retitled from the CLI"
    assert PAT not in every_file_text(root) + "".join(text for _, text in outputs)
