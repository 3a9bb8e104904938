"""The hidden interactive commands through the real ``pinpoint-agent`` console script: results, exit codes,
logs, and one clear line for bad input with nothing written."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest

from .conftest import AGENT, GitServer

MOCK = '[{"id": "i1", "name": "mock", "type": 1, "config": {"users": 2, "repos": 3}}]'


def _run(env: dict[str, str] | None, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([AGENT, *args], env=env or dict(os.environ), capture_output=True, text=True,
                          timeout=timeout, check=False)


def _result(proc: subprocess.CompletedProcess[str], out: Path) -> Any:
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    return orjson.loads(out.read_bytes())


# -- bad input: one line, exit 1, nothing written (fails before Prefect is touched) -----------------------
TWO = '[{"id": "a", "name": "mock", "type": 1}, {"id": "b", "name": "mock", "type": 1}]'
BAD: list[tuple[list[str], str]] = [
    (["validate-config", "--integrations-json", TWO], "validate-config needs exactly one integration, got 2"),
    (["validate-config", "--integrations-json", '[{"name": "nosuch"}]'], "unknown integration 'nosuch'"),
    (["validate-config", "--integrations-json", "[{"], "--integrations-json is not valid JSON"),
    (["validate-config"], "no integrations given"),
    (["validate-config", "--integrations-json", MOCK, "--log-format", "xml"],
     "--log-format must be text or json"),
    (["export-onboard-data", "--object-type", "teams", "--integrations-json", MOCK],
     "unknown object type 'teams'"),
    (["export-onboard-data", "--integrations-json", MOCK], "--object-type"),
    (["export-onboard-data", "--object-type", "users", "--integrations-json", TWO],
     "exactly one integration"),
    (["mutate", "--mutation", "{oops", "--integrations-json", MOCK], "--mutation is not valid JSON"),
    (["mutate", "--mutation", '{"data": {}}', "--integrations-json", MOCK], "--mutation: needs 'fn'"),
    (["mutate", "--integrations-json", MOCK], "--mutation"),
    (["mutate", "--mutation", '{"fn": "X"}', "--integrations-json", MOCK,
      "--agent-config-json", '{"git_max_concurrent": 0}'],
     "agent config: git_max_concurrent"),
    (["webhook", "--data", "not json", "--integrations-json", MOCK], "--data is not valid JSON"),
    (["webhook", "--data", '{"body": {}}', "--integrations-json", MOCK], "--data: needs 'headers'"),
    (["webhook", "--integrations-json", MOCK], "--data"),
]


@pytest.mark.parametrize(("args", "says"), BAD, ids=[f"{a[0]}-{i}" for i, (a, _) in enumerate(BAD)])
def test_bad_input_is_one_line_and_writes_nothing(root: Path, tmp_path: Path, args: list[str],
                                                  says: str) -> None:
    """Bad input prints one error line, exits 1, and creates neither the output file nor the root."""
    out = tmp_path / "result.json"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    proc = _run(env, *args, "--pinpoint-root", str(root), "--output-file", str(out), timeout=60)
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert says in lines[0]
    assert not out.exists() and not root.exists()


def test_missing_output_folder_is_refused_before_anything_runs(root: Path, tmp_path: Path) -> None:
    """An --output-file in a folder that does not exist is a setup error, not a lost result."""
    proc = _run(None, "mutate", "--mutation", '{"fn": "X"}', "--integrations-json", MOCK,
                "--pinpoint-root", str(root), "--output-file", str(tmp_path / "nope" / "r.json"))
    assert proc.returncode == 1 and proc.stderr.startswith("error: --output-file: folder ")
    assert not root.exists()


# -- success paths (need the session's Prefect server, started while the tests above run) -------------
@pytest.mark.prefect
def test_validate_config_with_authenticated_test_clone(prefect_env: dict[str, str], root: Path,
                                                       tmp_path: Path, git_server: GitServer) -> None:
    """validate-config clones the integration's repo with its credentials; no secret stays in logs or temp."""
    secret = git_server.password
    ints = tmp_path / "integrations.json"
    ints.write_bytes(orjson.dumps([{"id": "i1", "name": "mock", "type": 1, "config": {
        "git_repos": [git_server.url], "repo_credentials": f"{git_server.user}:{secret}"}}]))
    out = tmp_path / "result.json"
    proc = _run(prefect_env, "validate-config", "--integrations-file", str(ints),
                "--pinpoint-root", str(root), "--output-file", str(out))
    assert _result(proc, out) == {"errors": [], "success": True, "server_version": "mock-1.0"}
    assert git_server.authorizations
    log = (root / "logs" / "validate-config").read_text()
    assert "validate-config finished" in log
    for path in root.rglob("*"):
        if path.is_file() and "prefect" not in path.parts:
            assert secret not in path.read_text(errors="replace"), path
    assert list((root / "temp").iterdir()) == []


@pytest.mark.prefect
def test_export_onboard_data_writes_the_data(prefect_env: dict[str, str], root: Path, tmp_path: Path) -> None:
    """export-onboard-data writes {"success","error","data"} with the integration's repos to --output-file."""
    out = tmp_path / "repos.json"
    proc = _run(prefect_env, "export-onboard-data", "--object-type", "REPOS", "--integrations-json", MOCK,
                "--pinpoint-root", str(root), "--output-file", str(out))
    res = _result(proc, out)
    assert (res["success"], res["error"]) == (True, "")
    assert [r["name"] for r in res["data"]] == ["mock-org/repo-0", "mock-org/repo-1", "mock-org/repo-2"]
    assert "export-onboard-data finished" in (root / "logs" / "export-onboard-data").read_text()


@pytest.mark.prefect
def test_mutate_success_and_failure_exit_zero(prefect_env: dict[str, str], root: Path,
                                              tmp_path: Path) -> None:
    """mutate returns the mutated objects; an unknown fn is success false in the result with exit 0."""
    out = tmp_path / "mutate.json"
    mutation = '{"fn": "PR_SET_TITLE", "data": {"ref_id": "1-2", "title": "T"}}'
    proc = _run(prefect_env, "mutate", "--mutation", mutation,
                "--integrations-json", MOCK, "--agent-config-json", '{"customer_id": "cust"}',
                "--pinpoint-root", str(root), "--output-file", str(out))
    res = _result(proc, out)
    assert set(res) == {"mutated_objects", "webapp_response", "success", "error", "error_code"}
    assert res["success"] is True and res["webapp_response"] == {"ok": True}
    assert res["mutated_objects"]["sourcecode.PullRequest"][0]["customer_id"] == "cust"

    # no --output-file: the result goes to stdout
    proc = _run(prefect_env, "mutate", "--mutation", '{"fn": "PR_MERGE", "data": {}}',
                "--integrations-json", MOCK, "--pinpoint-root", str(root))
    assert proc.returncode == 0, proc.stderr
    res = orjson.loads(proc.stdout)
    assert res["success"] is False
    assert res["error"] == "mock does not support mutation PR_MERGE (mock/pr_merge)"
    assert "mutate failed" in (root / "logs" / "mutate").read_text()


@pytest.mark.prefect
def test_webhook_returns_objects(prefect_env: dict[str, str], root: Path, tmp_path: Path) -> None:
    """webhook turns a delivery into {"mutated_objects","success","error"}; the delivery's secret header (a
    hook's shared token) reaches neither Prefect's stored parameters nor the logs."""
    out = tmp_path / "webhook.json"
    data = ('{"headers": {"X-Mock-Event": "pull_request", "X-Gitlab-Token": "hook-canary-31337"}, '
            '"body": {"repo": 2, "number": 5}}')
    proc = _run(prefect_env, "webhook", "--data", data, "--integrations-json", MOCK,
                "--pinpoint-root", str(root), "--output-file", str(out), "--log-format", "json")
    res = _result(proc, out)
    assert (res["success"], res["error"]) == (True, "")
    assert [pr["ref_id"] for pr in res["mutated_objects"]["sourcecode.PullRequest"]] == ["2-5"]
    lines = [orjson.loads(ln) for ln in (root / "logs" / "webhook").read_text().splitlines()]
    assert any(ln["event"] == "webhook finished" for ln in lines)
    import httpx

    runs = httpx.post(f"{prefect_env['PREFECT_API_URL']}/flow_runs/filter", timeout=30,
                      json={"flow_runs": {"name": {"like_": "%"}}, "limit": 200}).content
    assert b"hook-canary-31337" not in runs and b"secret-store:run/" in runs
    assert "hook-canary-31337" not in (root / "logs" / "webhook").read_text()
