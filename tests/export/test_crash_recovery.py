"""Killing the agent mid-export loses nothing: the rerun's output and the first run's complete files
together hold every object, and the state store is consistent."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import orjson
import psutil
import pytest

from pinpoint_agent.ids import object_key
from pinpoint_agent.root import Root
from pinpoint_agent.stores import open_state
from tests.export.helpers import AGENT, assert_nothing_lost, plugins_of, read_export, run_cli

REPOS, PRS = 12, 4000


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_sigkill_mid_export_then_rerun_loses_nothing(tmp_path, kind, request):
    """SIGKILL after the first sessions completed; the rerun fills in the rest; no temp or staged leftovers.
    With the state in PostgreSQL the same holds, and the killed agent's claim of the integration does not
    block the rerun."""
    url = request.getfixturevalue("pg_url") if kind == "postgres" else ""
    env = {"PINPOINT_STATE_URL": url}
    root = tmp_path / "root"
    ints = orjson.dumps([{"id": "m", "name": "mock", "type": 1,
                          "config": {"repos": REPOS, "prs_per_repo": PRS, "users": 3}}]).decode()
    args = ["export", "--integrations-json", ints, "--pinpoint-root", str(root), "--agent-config-json",
            '{"customer_id": "c9"}']
    proc = subprocess.Popen([*AGENT, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, env={**os.environ, **env})
    plugin_pids: set[int] = set()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        plugin_pids |= {p.pid for p in plugins_of(proc.pid)}
        done = list((root / "exports").rglob("sourcecode.PullRequest/*.json.gz")) if root.exists() else []
        if len(done) >= 2:
            break
        assert proc.poll() is None, "export ended before it could be killed"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert plugin_pids
    # The plugin notices its agent is gone (stdin EOF) and exits: no orphan.
    gone, alive = psutil.wait_procs([psutil.Process(p) for p in plugin_pids if psutil.pid_exists(p)], timeout=10)
    assert alive == []
    first = read_export(root)
    assert 0 < len(first.get("sourcecode.PullRequest", [])) < REPOS * PRS

    rerun = run_cli(*args, env=env)
    assert rerun.returncode == 0, rerun.stderr
    state = open_state(Root(root), url)
    # every export under the root: the killed one's complete files and the rerun's
    union = assert_nothing_lost([root], state, REPOS, PRS)
    # Every pull request's hashcode is current (the look-up merges the committed log into the table) ...
    last = {object_key(pr)[0]: object_key(pr)[1] for pr in union}
    assert state.known_hashes("mock@SOURCECODE", "sourcecode.PullRequest", list(last)) == last
    with state._tx() as db:  # ... and stored once
        assert db.execute("SELECT COUNT(*) FROM dedup JOIN dedup_models ON id = model_id "
                          "WHERE model = 'sourcecode.PullRequest'").fetchone()[0] == \
            REPOS * PRS
    state.close()


@pytest.mark.usefixtures("prefect_api")
def test_ctrl_c_stops_the_export_reaps_the_plugin_and_says_one_line(tmp_path):
    """SIGINT mid-export: exit 1 with one line, the plugin process is gone, no half-written file stays."""
    root = tmp_path / "root"
    ints = orjson.dumps([{"id": "m", "name": "mock", "type": 1,
                          "config": {"repos": 5, "prs_per_repo": 5000,
                                     "fail": {"mode": "hang", "after_objects": 9000}}}]).decode()
    proc = subprocess.Popen([*AGENT, "export", "--integrations-json", ints, "--pinpoint-root", str(root)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    plugin = None
    deadline = time.monotonic() + 120
    while plugin is None and time.monotonic() < deadline:
        kids = plugins_of(proc.pid)
        plugin = kids[0] if kids else None
        time.sleep(0.05)
    assert plugin is not None
    time.sleep(1.0)  # let it send a few batches, then hang
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert err.strip().splitlines()[-1].startswith("error: ") and "Traceback" not in err
    assert psutil.wait_procs([plugin], timeout=10)[1] == []
    assert not list((root / "exports").rglob("*.temp.gz"))
