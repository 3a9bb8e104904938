"""The resident runner (``pinpoint_agent/resident.py``): after one command, the next ones run in a process
that already imported Prefect. Real CLI processes, a real runner, the mock integration as a real plugin."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import psutil
import pytest

from pinpoint_agent import resident
from tests.export.helpers import AGENT, plugins_marked, read_export


def _pidfd_works() -> bool:
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):
        return False
    return True


# Runner tests need what a runner needs (Linux 5.3+: a monitor watches its worker through a pidfd); without
# it every command runs in its own process, which the rest of the suite covers.
needs_runner = pytest.mark.skipif(not _pidfd_works(), reason="no pidfd_open here: no resident runner")

SMALL = orjson.dumps([{"id": "m", "name": "mock", "type": 1,
                       "config": {"repos": 2, "prs_per_repo": 3, "users": 2}}]).decode()


@pytest.fixture
def runtime(prefect_api: str) -> Iterator[dict[str, str]]:
    """A private folder for runner sockets (short: a unix socket path has ~100 bytes); the runners started
    there are killed at the end."""
    folder = Path(tempfile.mkdtemp(prefix="pa-run-"))
    yield {"XDG_RUNTIME_DIR": str(folder)}
    for p in psutil.process_iter(["cmdline"]):
        if any(str(folder) in part for part in p.info["cmdline"] or ()):
            p.kill()


def cli(*args: str, env: dict[str, str], cwd: Path | None = None, timeout: float = 120
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AGENT, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env={**os.environ, **env}, stdin=subprocess.DEVNULL)


def sockets(env: dict[str, str]) -> list[Path]:
    return sorted((Path(env["XDG_RUNTIME_DIR"]) / "pinpoint-agent").glob("runner-*.sock"))


def warm(env: dict[str, str], where: Path) -> Path:
    """One command in its own process, which leaves a runner behind; returns its socket once it serves."""
    assert sockets(env) == []
    first = cli("export", "--integrations-json", SMALL, "--pinpoint-root", str(where / "warm"), env=env)
    assert first.returncode == 0, first.stderr
    deadline = time.monotonic() + 60
    while not sockets(env) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(sockets(env)) == 1, "no runner started after the first command"
    return sockets(env)[0]


def runner_log(sock: Path) -> str:
    return sock.with_suffix(".log").read_text()


def runner_pid(sock: Path) -> int:
    return int(runner_log(sock).split()[1])  # "runner <pid> serving <path>"


@needs_runner
def test_the_next_command_runs_in_the_runner_as_in_its_own_process(tmp_path, runtime):
    """Same output files, result, log lines, exit code; relative paths resolve in the caller's folder."""
    sock = warm(runtime, tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.Popen([*AGENT, "export", "--integrations-json", SMALL, "--pinpoint-root", "root",
                             "--output-file", "result.json"], cwd=work, env={**os.environ, **runtime},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert f"worker {proc.pid}" not in runner_log(sock)
    assert "export" in runner_log(sock).split("worker ", 1)[1], runner_log(sock)  # a worker ran it
    result = orjson.loads((work / "result.json").read_bytes())
    assert [i["error"] for i in result["integrations"]] == [""]
    assert len(read_export(work / "root")["sourcecode.PullRequest"]) == 6
    assert "export finished" in out  # the worker wrote to this process's stdout (the log, as --output-file is set)
    again = cli("export", "--integrations-json", SMALL, "--pinpoint-root", "root", env=runtime, cwd=work)
    assert again.returncode == 0, again.stderr
    assert orjson.loads(again.stdout)["integrations"][0]["incremental"] is True
    assert runner_log(sock).count("worker ") == 2


@needs_runner
def test_bad_input_in_the_runner_is_one_line_and_exit_1(tmp_path, runtime):
    warm(runtime, tmp_path)
    bad = cli("export", "--integrations-json", "[{not json", "--pinpoint-root", str(tmp_path / "r"), env=runtime)
    assert bad.returncode == 1
    assert bad.stderr.strip().startswith("error: ") and len(bad.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


@needs_runner
def test_the_callers_environment_reaches_the_command_and_its_plugins(tmp_path, runtime):
    """A variable only the caller has (here one that makes the mock plugin print garbage before its handshake)
    takes effect in the worker's plugin; the runner's own environment never had it."""
    sock = warm(runtime, tmp_path)
    r = cli("export", "--integrations-json", SMALL, "--pinpoint-root", str(tmp_path / "r"),
            env={**runtime, "PINPOINT_MOCK_STARTUP": "garbage"})
    assert r.returncode == 0, r.stderr
    assert "not a handshake" in orjson.loads(r.stdout)["integrations"][0]["error"]
    assert "PINPOINT_MOCK_STARTUP" not in psutil.Process(runner_pid(sock)).environ()


@needs_runner
def test_secrets_of_the_first_command_stay_out_of_the_runner(tmp_path, runtime):
    """The runner is started with only what locating code and Prefect needs: no token of the command that
    started it is in its environment or command line."""
    env = {**runtime, "GITHUB_TOKEN": "ghp_runnerSecret0123456789"}
    ints = orjson.dumps([{"id": "m", "name": "mock", "type": 1,
                          "config": {"repos": 1, "prs_per_repo": 1, "token": "tok_runnerSecret98765"}}]).decode()
    first = cli("export", "--integrations-json", ints, "--pinpoint-root", str(tmp_path / "r"), env=env)
    assert first.returncode == 0, first.stderr
    deadline = time.monotonic() + 60
    while not sockets(runtime) and time.monotonic() < deadline:
        time.sleep(0.05)
    runner = psutil.Process(runner_pid(sockets(runtime)[0]))
    seen = " ".join(runner.cmdline()) + " " + " ".join(f"{k}={v}" for k, v in runner.environ().items())
    assert "runnerSecret" not in seen
    assert runner.environ()["PREFECT_API_URL"] == os.environ["PREFECT_API_URL"]


def _plugin_with(marker: str, deadline: float) -> psutil.Process:
    while time.monotonic() < deadline:
        if found := plugins_marked(marker):
            return found[0]
        time.sleep(0.05)
    raise AssertionError("the plugin never started")


def _hanging_export(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], psutil.Process]:
    ints = orjson.dumps([{"id": "m", "name": "mock", "type": 1,
                          "config": {"repos": 2, "prs_per_repo": 100,
                                     "fail": {"mode": "hang", "after_objects": 50}}}]).decode()
    marker = f"hang-{tmp_path.name}"
    proc = subprocess.Popen([*AGENT, "export", "--integrations-json", ints, "--pinpoint-root", str(tmp_path / "r")],
                            env={**os.environ, **env, "PINPOINT_TEST_MARK": marker}, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    return proc, _plugin_with(marker, time.monotonic() + 60)


@needs_runner
def test_a_killed_caller_takes_its_worker_and_plugin_with_it(tmp_path, runtime):
    """SIGKILL on the command: its worker is killed at once (as the agent itself would be) and the plugin,
    seeing its stdin close, exits; the runner stays and serves the next command."""
    sock = warm(runtime, tmp_path)
    proc, plugin = _hanging_export(tmp_path, runtime)
    worker = plugin.parent()
    assert worker is not None and worker.pid != proc.pid
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    gone, alive = psutil.wait_procs([worker, plugin], timeout=10)
    assert alive == []
    assert psutil.Process(runner_pid(sock)).is_running()
    after = cli("export", "--integrations-json", SMALL, "--pinpoint-root", str(tmp_path / "next"), env=runtime)
    assert after.returncode == 0, after.stderr


@needs_runner
def test_ctrl_c_reaches_the_worker_and_the_caller_says_one_line(tmp_path, runtime):
    warm(runtime, tmp_path)
    proc, plugin = _hanging_export(tmp_path, runtime)
    worker = plugin.parent()
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert err.strip().splitlines()[-1] == "error: interrupted" and "Traceback" not in err
    assert psutil.wait_procs([worker, plugin], timeout=10)[1] == []
    assert not list((tmp_path / "r" / "exports").rglob("*.temp.gz"))


@needs_runner
def test_a_worker_killed_by_a_signal_ends_its_caller_with_that_signal(tmp_path, runtime):
    warm(runtime, tmp_path)
    proc, plugin = _hanging_export(tmp_path, runtime)
    worker = plugin.parent()
    assert worker is not None
    worker.send_signal(signal.SIGKILL)  # (SIGTERM would be caught: Prefect's engine ends the run cleanly)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, err
    assert psutil.wait_procs([plugin], timeout=10)[1] == []


@needs_runner
def test_commands_at_the_same_time_each_get_their_own_worker(tmp_path, runtime):
    sock = warm(runtime, tmp_path)
    procs = [subprocess.Popen([*AGENT, "export", "--integrations-json", SMALL, "--pinpoint-root",
                               str(tmp_path / f"r{i}")], env={**os.environ, **runtime}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, stdin=subprocess.DEVNULL) for i in range(3)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert orjson.loads(out)["integrations"][0]["error"] == ""
    assert runner_log(sock).count("worker ") == 3  # the warm-up ran in its own process


@needs_runner
def test_a_runner_without_commands_exits_and_removes_its_socket(tmp_path, runtime):
    env = {**runtime, resident.IDLE_ENV: "1"}
    sock = warm(env, tmp_path)
    runner = psutil.Process(runner_pid(sock))
    assert psutil.wait_procs([runner], timeout=20)[1] == []
    assert not sock.exists()
    assert "exits (idle)" in runner_log(sock)


def test_switched_off_every_command_runs_in_its_own_process(tmp_path, runtime):
    env = {**runtime, resident.SWITCH: "0"}
    for _ in range(2):
        r = cli("export", "--integrations-json", SMALL, "--pinpoint-root", str(tmp_path / "r"), env=env)
        assert r.returncode == 0, r.stderr
    time.sleep(1)
    assert sockets(runtime) == []


def test_the_runner_key_follows_the_code_and_prefect_settings(tmp_path):
    code = tmp_path / "code"
    for package in ("pinpoint_agent", "flows", "tasks"):
        (code / package).mkdir(parents=True)
        (code / package / "__init__.py").write_text("")
    env = {"PREFECT_API_URL": "http://127.0.0.1:1/api", "OTHER": "x"}
    key = resident._key(env, code)
    assert resident._key({**env, "OTHER": "y"}, code) == key  # only Prefect's settings count
    assert resident._key({**env, "PREFECT_API_URL": "http://127.0.0.1:2/api"}, code) != key
    (code / "flows" / "__init__.py").write_text("# changed")
    assert resident._key(env, code) != key


def test_no_runner_socket_in_a_folder_others_can_write(monkeypatch):
    short = Path(tempfile.mkdtemp(prefix="pa-"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(short))
    (short / "pinpoint-agent").mkdir(mode=0o700)
    assert resident.socket_path(dict(os.environ)) == short / "pinpoint-agent" / \
        f"runner-{resident._key(dict(os.environ))}.sock"
    os.chmod(short / "pinpoint-agent", 0o777)
    assert resident.socket_path(dict(os.environ)) is None
    deep = short / ("d" * 80)
    deep.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(deep))
    assert resident.socket_path(dict(os.environ)) is None  # too long for a unix socket
    shutil.rmtree(short)
