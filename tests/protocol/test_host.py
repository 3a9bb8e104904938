"""The plugin host against the mock as a real process: calls, callbacks, and every failure path."""

from __future__ import annotations

import os
import time

import psutil
import pytest

from integrations.sdk.testing import RecordingAgent
from pinpoint_agent.errors import ConfigError, PluginCrashed, PluginError, PluginStartError, PluginTimeout
from pinpoint_agent.host import Cancelled, IntegrationHost
from pinpoint_agent.protocol import CallConfig, IntegrationConfig, IntegrationType

pytestmark = pytest.mark.usefixtures("no_leaked_processes")


def entry(**config):
    return IntegrationConfig(id="t1", name="mock", type=IntegrationType.SOURCECODE, config=config)


def run_export(tmp_path, env=None, timeout=60, idle_timeout=None, **config):
    agent = RecordingAgent()
    e = entry(**config)
    with IntegrationHost.start(e, agent, root=tmp_path, env=env, start_timeout=10) as host:
        result = host.export(CallConfig(integration=e, customer_id="c1"), timeout=timeout, idle_timeout=idle_timeout)
    return agent, result


def test_export_runs_through_callbacks(tmp_path):
    """A real plugin process exports through the Agent callbacks: every object arrives, sessions end done."""
    agent, result = run_export(tmp_path, repos=3, prs_per_repo=700, users=4)
    assert len(result.projects) == 3
    assert len(agent.objects["sourcecode.PullRequest"]) == 3 * 700
    assert len(agent.objects["sourcecode.User"]) == 4
    assert all(s["done"] is not None for s in agent.sessions.values())
    log = (tmp_path / "logs" / "integrations" / "mock@SOURCECODE@t1").read_text()
    assert '"event":"export finished"' in log  # the plugin's structured stderr went to its log file


def test_raise_inside_export_is_an_error_naming_the_integration(tmp_path):
    """An exception in the integration comes back as a typed error naming it; the process stays usable."""
    with pytest.raises(PluginError, match=r"mock@SOURCECODE@t1.*failing on purpose"):
        run_export(tmp_path, fail={"mode": "raise", "after_objects": 3})
    log = (tmp_path / "logs" / "integrations" / "mock@SOURCECODE@t1").read_text()
    assert "Traceback" in log and "RuntimeError" in log


def test_the_mock_fails_after_exactly_the_configured_objects(tmp_path):
    """The mock sends in chunks, each ending where a configured failure is due, so the failure comes after
    exactly ``after_objects`` objects (its message counts them), and the failed session is rolled back."""
    agent = RecordingAgent()
    e = entry(users=0, repos=1, prs_per_repo=3000, fail={"mode": "raise", "after_objects": 1234})
    with IntegrationHost.start(e, agent, root=tmp_path, start_timeout=10) as host, \
            pytest.raises(PluginError, match="after 1234 objects"):
        host.export(CallConfig(integration=e, customer_id="c1"), timeout=60)
    prs = [s for s in agent.sessions.values() if s["name"] == "sourcecode.PullRequest"]
    assert [(s["rolled_back"], s["done"]) for s in prs] == [(True, None)]


@pytest.mark.parametrize("mode, words", [("crash", "exit code 17"), ("signal", "signal SIGKILL")])
def test_crash_is_reported_with_exit_status(tmp_path, capsys, mode, words):
    """A plugin that dies mid-export gives PluginCrashed naming the integration and how it died."""
    with pytest.raises(PluginCrashed, match=words) as info:
        run_export(tmp_path, fail={"mode": mode, "after_objects": 5})
    assert info.value.integration == "mock@SOURCECODE@t1"
    assert "crashed" in (tmp_path / "logs" / "integrations" / "mock@SOURCECODE@t1").read_text()


def test_hang_is_stopped_by_the_idle_timeout(tmp_path):
    """A plugin that stops calling back is declared hung after the idle timeout and killed."""
    started = time.monotonic()
    with pytest.raises(PluginTimeout, match="no progress"):
        run_export(tmp_path, idle_timeout=1.5, fail={"mode": "hang", "after_objects": 1})
    assert time.monotonic() - started < 20


def test_total_timeout_stops_a_long_export(tmp_path):
    """The export deadline stops a plugin that would run too long."""
    with pytest.raises(PluginTimeout, match="within 1s"):
        run_export(tmp_path, timeout=1, fail={"mode": "hang", "after_objects": 1})


def test_garbage_on_stdout_before_handshake_is_a_start_error(tmp_path):
    """A plugin whose first stdout line is not a handshake is refused with the line quoted, and reaped."""
    with pytest.raises(PluginStartError, match="not a handshake"):
        run_export(tmp_path, env={**os.environ, "PINPOINT_MOCK_STARTUP": "garbage"})


def test_exit_before_handshake_reports_exit_code_and_stderr(tmp_path):
    """A plugin that exits before its handshake is reported with its exit code and last stderr lines."""
    with pytest.raises(PluginStartError, match=r"exit code 2[\s\S]*failing on purpose before the handshake"):
        run_export(tmp_path, env={**os.environ, "PINPOINT_MOCK_STARTUP": "exit"})


def test_silent_plugin_times_out_at_start(tmp_path):
    """A plugin that never prints its handshake fails the start timeout and is killed."""
    agent = RecordingAgent()
    env = {**os.environ, "PINPOINT_MOCK_STARTUP": "silent"}
    with pytest.raises(PluginStartError, match="no handshake within 1s"):
        IntegrationHost.start(entry(), agent, root=tmp_path, env=env, start_timeout=1)


def test_stderr_flood_does_not_block_the_plugin(tmp_path):
    """20 MiB of stderr in the middle of an export is drained; the export completes."""
    agent, _ = run_export(tmp_path, repos=1, prs_per_repo=50, fail={"mode": "flood", "after_objects": 2})
    assert len(agent.objects["sourcecode.PullRequest"]) == 50
    assert (tmp_path / "logs" / "integrations" / "mock@SOURCECODE@t1").stat().st_size > 20 * 1024 * 1024


def test_stray_stdout_after_handshake_goes_to_stderr(tmp_path):
    """Output an integration prints after the handshake cannot corrupt the protocol; the export completes."""
    agent, _ = run_export(tmp_path, repos=1, prs_per_repo=10, fail={"mode": "stdout", "after_objects": 2})
    assert len(agent.objects["sourcecode.PullRequest"]) == 10
    assert "stray stdout line" in (tmp_path / "logs" / "integrations" / "mock@SOURCECODE@t1").read_text()


def test_cancel_stops_the_export_and_reaps(tmp_path):
    """Setting the cancel event ends a running export promptly and the process is gone."""
    import threading

    agent = RecordingAgent()
    e = entry(fail={"mode": "hang", "after_objects": 1})
    cancel = threading.Event()
    host = IntegrationHost.start(e, agent, root=tmp_path)
    pid = host.process.proc.pid
    threading.Timer(0.5, cancel.set).start()
    with pytest.raises(Cancelled):
        host.export(CallConfig(integration=e, customer_id="c1"), cancel=cancel)
    host.close()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_unknown_integration_is_a_config_error(tmp_path):
    """An integration name with no executable and no built-in package is a clear config error."""
    e = IntegrationConfig(id="x", name="nosuchthing", type=IntegrationType.WORK)
    with pytest.raises(ConfigError, match="unknown integration 'nosuchthing'"):
        IntegrationHost.start(e, RecordingAgent(), root=tmp_path, integrations_dir=tmp_path / "integrations")


def test_external_executable_is_preferred_and_started_with_the_cookie(tmp_path):
    """<integrations-dir>/bin/<name> is used before a built-in package (any language can be a plugin)."""
    bindir = tmp_path / "integrations" / "bin"
    bindir.mkdir(parents=True)
    script = bindir / "mock"
    script.write_text(f"#!/bin/sh\necho external >&2\nexec {os.sys.executable} -m integrations.mock\n")
    script.chmod(0o755)
    agent = RecordingAgent()
    e = entry(repos=1, prs_per_repo=1)
    with IntegrationHost.start(e, agent, root=tmp_path, integrations_dir=tmp_path / "integrations") as host:
        host.export(CallConfig(integration=e, customer_id="c1"))
    assert "external" in (tmp_path / "logs" / "integrations" / "mock@SOURCECODE@t1").read_text()


def test_callback_errors_reach_the_integration_not_the_agent(tmp_path):
    """A callback that fails on the agent side becomes an error of that export; the agent keeps going."""

    class Broken(RecordingAgent):
        def send_exported(self, session_id, objects, dedup=b""):
            raise RuntimeError("disk on fire")

    e = entry(repos=1, prs_per_repo=5)
    with IntegrationHost.start(e, Broken(), root=tmp_path) as host:
        with pytest.raises(PluginError, match="disk on fire"):
            host.export(CallConfig(integration=e, customer_id="c1"))
        assert host.healthy()


def test_a_failed_session_done_fails_the_export(tmp_path):
    """SessionDone goes out from the SDK's sender thread (the integration does not wait for it); when the
    agent refuses it, the export still ends in that error, and nothing after it was sent."""

    class RefusesDone(RecordingAgent):
        def session_done(self, session_id, last_processed):
            if self.sessions[session_id]["name"] == "sourcecode.PullRequest":
                raise RuntimeError("cannot close the file")
            super().session_done(session_id, last_processed)

    agent = RefusesDone()
    e = entry(repos=3, prs_per_repo=5, users=0)
    with IntegrationHost.start(e, agent, root=tmp_path) as host:
        with pytest.raises(PluginError, match="cannot close the file"):
            host.export(CallConfig(integration=e, customer_id="c1"))
    prs = [s for s in agent.sessions.values() if s["name"] == "sourcecode.PullRequest"]
    assert prs and all(s["done"] is None for s in prs)
    assert len(agent.objects["sourcecode.PullRequest"]) == 5  # the first repo's; later batches were not sent
