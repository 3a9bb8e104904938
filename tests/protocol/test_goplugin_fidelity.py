"""The host against a plugin that behaves like a hashicorp/go-plugin Go plugin (tests/protocol/plugins):
per-call broker offers under go-plugin's dial-once-within-5-s rule, warm plugins, hclog lines, Go panics,
UNIMPLEMENTED, and go-plugin >= 1.3's stdio stream. The same checks against a real Go plugin are in
tests/protocol/test_go_example.py (when a Go toolchain is present)."""

from __future__ import annotations

import os
import stat
import sys
import time
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from structlog.testing import capture_logs

from integrations.sdk.testing import RecordingAgent
from pinpoint_agent.config import AgentConfig
from pinpoint_agent.errors import FatalError, NotSupportedError, PluginCrashed
from pinpoint_agent.exporter import ExportJob
from pinpoint_agent.host import IntegrationHost
from pinpoint_agent.interactive import Target
from pinpoint_agent.protocol import CallConfig, IntegrationConfig, IntegrationType, OnboardObjectType
from pinpoint_agent.protocol._gen import plugin_pb2_grpc
from pinpoint_agent.protocol.broker import HostBroker, PluginBroker
from pinpoint_agent.root import Root
from pinpoint_agent.service._plugins import WarmPlugins

pytestmark = pytest.mark.usefixtures("no_leaked_processes")

REPO = Path(__file__).resolve().parents[2]
PLUGIN = Path(__file__).parent / "plugins" / "goplugin_like.py"
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def entry(name: str = "goplugin-like", **config: object) -> IntegrationConfig:
    return IntegrationConfig(id="g1", name=name, type=IntegrationType.SOURCECODE, config=config)


def start(tmp_path: Path, **config: object) -> tuple[IntegrationHost, IntegrationConfig]:
    e = entry(**config)
    return IntegrationHost.start(e, RecordingAgent(), root=tmp_path, argv=[sys.executable, str(PLUGIN)],
                                 env=ENV, start_timeout=20), e


def log_text(tmp_path: Path, key: str = "goplugin-like@SOURCECODE@g1") -> str:
    return (tmp_path / "logs" / "integrations" / key).read_text()


# -- 1. the broker --------------------------------------------------------------------------------------
@pytest.fixture
def broker_pair():
    plugin_side = PluginBroker(hold=0.5)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    plugin_pb2_grpc.add_GRPCBrokerServicer_to_server(plugin_side, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    host_side = HostBroker(channel)
    yield plugin_side, host_side
    host_side.close()
    channel.close()
    server.stop(None)


def test_python_broker_keeps_go_plugins_rules(broker_pair):
    """The project's plugin-side broker behaves as go-plugin's: an offer serves one dial, and an offer nobody
    dialed within its hold time is gone, so a host that offers once per process fails here as with Go."""
    plugin_side, host_side = broker_pair
    first = host_side.offer("tcp", "127.0.0.1:1")
    plugin_side.dial(first, timeout=2).close()
    with pytest.raises(FatalError, match="timeout waiting for connection info"):
        plugin_side.dial(first, timeout=0.3)  # already taken
    late = host_side.offer("tcp", "127.0.0.1:1")
    time.sleep(0.8)  # longer than the hold
    with pytest.raises(FatalError, match="timeout waiting for connection info"):
        plugin_side.dial(late, timeout=0.3)


def test_each_call_gets_a_fresh_offer(tmp_path):
    """A plugin that dials the Agent service in every Export (as go-plugin plugins do) works on the second
    call too: the host offered the service afresh, the first offer having been used."""
    host, e = start(tmp_path, objects=3)
    with host:
        for n in (1, 2):
            result = host.export(CallConfig(integration=e, customer_id="c1"), timeout=30)
            assert [p.id for p in result.projects] == ["p1"]
            assert len(host.callbacks.objects["sourcecode.Repo"]) == 3 * n  # type: ignore[attr-defined]


def test_a_plugin_without_init_reaches_the_agent_through_the_call_offer(tmp_path):
    """Init is optional: a plugin answering it UNIMPLEMENTED starts, and its Export dials the offer the call
    carries."""
    e = entry(objects=2)
    agent = RecordingAgent()
    with IntegrationHost.start(e, agent, root=tmp_path, argv=[sys.executable, str(PLUGIN)],
                               env={**ENV, "GOPLUGIN_LIKE_NO_INIT": "1"}, start_timeout=20) as host:
        host.export(CallConfig(integration=e), timeout=30)
    assert len(agent.objects["sourcecode.Repo"]) == 2


def _warm_target(tmp_path: Path, name: str, argv: list[str]) -> Target:
    """A target whose integrations folder holds ``bin/<name>``, started by the warm pool as an external plugin."""
    bindir = tmp_path / "plugins" / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    exe = bindir / name
    exe.write_text("#!/bin/sh\nexec " + " ".join(argv) + ' "$@"\n')
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return Target(entry=entry(name, objects=3), agent=AgentConfig(), root=tmp_path / "root",
                  integrations_dir=tmp_path / "plugins")


def _export(target: Target, host: IntegrationHost) -> tuple[dict, list[str]]:
    job = ExportJob.begin(Root(target.root), target.agent)
    manager = job.manager(target.entry)
    incremental = job.state.has_tokens(target.entry.state_key + "/")
    try:
        result = host.export(target.call_config, timeout=60, callbacks=manager)
        manager.rollback_open()
        objects = manager.objects_by_model()
        job.finish([], [])
    finally:
        job.state.close()
    return {"incremental": incremental, "objects": objects}, [p.name for p in result.projects]


def test_warm_plugins_reach_the_agent_after_a_pause(tmp_path, monkeypatch):
    """Warm plugins (the run service's pool) idle 6 s, past go-plugin's 5 s, then export twice, the second
    incrementally: a Go-style plugin dialing per call and an SDK plugin keeping its Init connection both
    reach the agent every time."""
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    go_like = _warm_target(tmp_path, "goplugin-like", [sys.executable, str(PLUGIN)])
    sdk = _warm_target(tmp_path, "mock-sdk", [sys.executable, "-m", "integrations.mock"])
    sdk.entry = IntegrationConfig(id="m1", name="mock-sdk", type=IntegrationType.SOURCECODE,
                                  config={"repos": 1, "prs_per_repo": 5, "users": 1})
    pool = WarmPlugins()
    try:
        with pool.lease(go_like) as go_host, pool.lease(sdk) as sdk_host:
            time.sleep(6)
            first, names = _export(go_like, go_host)
            assert first == {"incremental": False, "objects": {"sourcecode.Repo": 3}} and names == ["since 0"]
            second, names = _export(go_like, go_host)
            assert second["incremental"] is True and names == ["since 3"]
            sdk_first, _ = _export(sdk, sdk_host)
            assert sdk_first["objects"]["sourcecode.PullRequest"] == 5
            sdk_second, _ = _export(sdk, sdk_host)
            assert sdk_second["incremental"] is True
        assert set(pool.pids()) == {"goplugin-like@SOURCECODE@g1", "mock-sdk@SOURCECODE@m1"}  # still warm
    finally:
        pool.close()


# -- 2. hclog lines and Go panics ---------------------------------------------------------------------
def test_hclog_lines_keep_their_level_message_and_fields(tmp_path):
    """hclog JSON and text lines reach the agent's log with their own level, message, module and fields."""
    lines = [
        '{"@level":"warn","@message":"rate limit low","@module":"github","@timestamp":"2024-01-01T00:00:00.000000Z",'
        '"remaining":12}',
        '2024-01-01T00:00:00.000Z [ERROR] github.api: request failed: status=502 url="https://x/y z"',
        "2024-01-01T00:00:00.000Z [DEBUG] starting export",
        "[INFO]  fetch done: repos=3",
        "plain text",
    ]
    host, e = start(tmp_path, log_lines=lines)
    with capture_logs() as logs, host:
        host.export(CallConfig(integration=e), timeout=30)
    mine = [(x["log_level"], x["event"], {k: v for k, v in x.items() if k not in ("log_level", "event",
                                                                                     "integration")})
            for x in logs if x.get("integration") == "goplugin-like@SOURCECODE@g1"]
    assert ("warning", "rate limit low", {"module": "github", "remaining": 12}) in mine
    assert ("error", "request failed", {"module": "github.api", "status": "502", "url": "https://x/y z"}) in mine
    assert ("debug", "starting export", {}) in mine
    assert ("info", "fetch done", {"repos": "3"}) in mine
    assert ("info", "plain text", {"stream": "stderr"}) in mine
    assert "rate limit low" in log_text(tmp_path)  # the integration's own log keeps the raw lines


def test_go_panic_is_a_crash_reported_from_its_first_line(tmp_path):
    """A Go panic (and its long goroutine dump) is a crash whose error starts at the panic's message, so the
    cause reaches the result and the agent's stdout, not 15 lines of goroutine frames."""
    host, e = start(tmp_path, panic=True)
    with host, pytest.raises(PluginCrashed) as info:
        host.export(CallConfig(integration=e), timeout=30)
    assert info.value.exit_code == 2
    text = str(info.value)
    assert "exit code 2" in text and "panic: runtime error: index out of range" in text
    assert "goroutine 21 [running]" in text
    assert host.process.saw_traceback


# -- 3. UNIMPLEMENTED ----------------------------------------------------------------------------------
@pytest.mark.parametrize("call, words", [
    (lambda h, c: h.validate_config(c, timeout=10), "does not support validate-config"),
    (lambda h, c: h.onboard_export(c, OnboardObjectType.USERS, timeout=10), "does not support onboarding users"),
    (lambda h, c: h.mutate(c, "PR_SET_TITLE", {}, timeout=10), "does not support mutation PR_SET_TITLE"),
    (lambda h, c: h.webhook(c, {}, b"{}", timeout=10), "does not support webhooks"),
])
def test_unimplemented_is_not_supported_like_the_sdk(tmp_path, call, words):
    """A plugin answering gRPC UNIMPLEMENTED gets the SDK default's answer: NotSupportedError, same words."""
    host, e = start(tmp_path)
    with host:
        with pytest.raises(NotSupportedError, match=f"^goplugin-like {words}$"):
            call(host, CallConfig(integration=e))
        assert host.healthy()  # not a crash: the plugin stays usable


# -- 4. go-plugin >= 1.3 stdio --------------------------------------------------------------------------
def test_stdio_stream_is_read_so_the_plugin_never_blocks(tmp_path):
    """A plugin sending 300 KiB through go-plugin's GRPCStdio (which blocks until read) finishes its
    export, and its stdout and stderr lines land in the integration's log."""
    host, e = start(tmp_path, stdio_lines=300)
    with host:
        result = host.export(CallConfig(integration=e), timeout=20)
        assert [p.id for p in result.projects] == ["p1"]
    text = log_text(tmp_path)
    assert "[stdout] stdio line 299 " in text and "\nstdio line 298 " in text
