"""Stopping the service: SIGTERM mid-export rolls the open sessions back, reaps the plugins and puts the export
back in Prefect's queue; the restarted service runs it again and nothing is lost."""

from __future__ import annotations

import time

import psutil

from integrations.mock.integration import _pull_request, _repo
from pinpoint_agent.root import Root
from pinpoint_agent.stores import open_state
from tests.export.helpers import read_export

from .conftest import mock

REPOS, PRS = 12, 4000


def test_sigterm_mid_export_then_restart_loses_nothing(make_service) -> None:
    """SIGTERM after the first sessions completed: exit 0, no plugin left, no .temp.gz, run back to Scheduled;
    the restarted service finishes it and every object arrives across the two runs, state consistent."""
    svc = make_service().start()
    run = svc.trigger("export", {"integrations": mock(repos=REPOS, prs_per_repo=PRS, users=3),
                                 "agent_config": {"customer_id": "c9"}})
    deadline = time.monotonic() + 120
    while len(list((svc.root / "exports").rglob("sourcecode.PullRequest/*.json.gz"))) < 2:
        assert time.monotonic() < deadline, svc.log[-3000:]
        assert svc.read(run["id"])["state"]["type"] in ("SCHEDULED", "PENDING", "RUNNING"), svc.log[-3000:]
        time.sleep(0.02)
    plugins = [psutil.Process(p) for p in svc.plugin_pids()]
    assert plugins
    stopped = time.monotonic()
    assert svc.stop() == 0
    assert time.monotonic() - stopped < 30
    _, alive = psutil.wait_procs(plugins, timeout=5)
    assert alive == []
    assert not list((svc.root / "exports").rglob("*.temp.gz"))
    state = svc.read(run["id"])["state"]
    assert (state["type"], state["name"]) == ("SCHEDULED", "AwaitingRetry"), state
    assert "agent stopped during this export" in state["message"]
    first = read_export(svc.root)
    assert 0 < len(first.get("sourcecode.PullRequest", [])) < REPOS * PRS

    svc.start()  # same root, same deployments: the queued export runs again
    done = svc.wait(run["id"], timeout=180)
    assert done["state"]["type"] == "COMPLETED", (done["state"], svc.log[-3000:])
    assert done["run_count"] == 2
    union = read_export(svc.root)  # the interrupted run's complete files and the rerun's
    expected = {_pull_request("c9", _repo("c9", r), n)["id"] for r in range(REPOS) for n in range(PRS)}
    assert {pr["id"] for pr in union["sourcecode.PullRequest"]} == expected
    assert not list((svc.root / "exports").rglob("*.temp.gz"))
    store = open_state(Root(svc.root))
    try:
        tokens = store.tokens("mock@SOURCECODE/")
        pr_tokens = [k for k in tokens if k.endswith("/sourcecode.PullRequest")]
        assert len(pr_tokens) == REPOS and all(tokens[k] == "run:1" for k in pr_tokens)
        with store._tx() as db:
            assert db.execute("SELECT COUNT(*) FROM staged_tokens").fetchone()[0] == 0
    finally:
        store.close()
