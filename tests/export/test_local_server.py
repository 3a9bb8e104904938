"""The root's local Prefect server (``pinpoint_agent/prefect_server.py``): one per root whatever races, the
only process a one-shot command leaves, and gone by itself after the idle time."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import orjson
import psutil

from pinpoint_agent.prefect_server import read_info, stop_local
from tests.export.helpers import AGENT

MOCK = '[{"id": "i1", "name": "mock", "type": 1, "config": {"users": 1}}]'


def _processes_of(root: Path) -> list[psutil.Process]:
    """Processes whose command line names the root (the CLI, its plugins, the root's server)."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if str(root) in " ".join(p.info["cmdline"] or ()):
                found.append(p)
        except psutil.Error:
            continue
    return found


def test_two_commands_on_a_new_root_leave_one_server_that_stops_when_idle(tmp_path: Path) -> None:
    """Two commands started at once on a new root (no PREFECT_API_URL) share one server; once they exit it is
    the only process left, it stops by itself after PINPOINT_PREFECT_IDLE_STOP seconds, and the next command
    starts a new one."""
    root = tmp_path / "root"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PINPOINT_PREFECT_IDLE_STOP"] = "8"
    procs = [subprocess.Popen([*AGENT, "validate-config", "--integrations-json", MOCK, "--pinpoint-root", str(root),
                               "--output-file", str(tmp_path / f"out{i}.json")], env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for i in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()[-2000:]
    for i in range(2):
        assert orjson.loads((tmp_path / f"out{i}.json").read_bytes())["success"] is True
    left = _processes_of(root)
    info = read_info(root / "prefect")
    assert [p.pid for p in left] == [info["pid"]]
    assert "pinpoint_agent.prefect_server" in " ".join(left[0].cmdline())
    deadline = time.monotonic() + 90
    while left[0].is_running() and left[0].status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left[0].is_running() or left[0].status() == psutil.STATUS_ZOMBIE, "the server did not stop"
    assert not (root / "prefect" / "server.json").exists()
    assert "stopping the idle Prefect server (8s unused)" in (root / "prefect" / "server.log").read_text()

    # The next command after the idle stop starts a new server: the stop loses no command.
    proc = subprocess.run([*AGENT, "validate-config", "--integrations-json", MOCK, "--pinpoint-root", str(root)],
                          env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert orjson.loads(proc.stdout)["success"] is True
    again = read_info(root / "prefect")["pid"]
    assert again != info["pid"] and psutil.pid_exists(again)
    assert stop_local(root / "prefect") and not psutil.pid_exists(again)
