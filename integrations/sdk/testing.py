"""A contract suite every integration runs, and a recording Agent for protocol tests.

    # tests/integrations/test_myintegration_contract.py
    from integrations.sdk.testing import IntegrationContract

    class TestMyIntegrationContract(IntegrationContract):
        integration_name = "myintegration"
        config = {...}            # a config the integration accepts without network, if any

It starts the integration as a real process through the agent's plugin host and checks the handshake,
health, shutdown, clean "not supported" answers and the session rules as the agent enforces them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pinpoint_agent.errors import NotSupportedError, SessionError
from pinpoint_agent.host import Callbacks, IntegrationHost
from pinpoint_agent.protocol import (
    MAGIC_COOKIE_KEY,
    MAGIC_COOKIE_VALUE,
    CallConfig,
    GitRepoRequest,
    IntegrationConfig,
    IntegrationType,
    OnboardObjectType,
    parse_handshake,
)


class RecordingAgent(Callbacks):
    """An in-memory Agent: counts sessions and objects and enforces the basic session rules."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sessions: dict[int, dict[str, Any]] = {}
        self.objects: dict[str, list[bytes]] = {}
        self.git: list[GitRepoRequest] = []
        self.events: list[tuple[str, str]] = []
        self._next = 0

    def session_start(self, is_tracking: bool, name: str, parent_id: int, parent_object_id: str,
                      parent_object_name: str) -> tuple[int, str]:
        with self.lock:
            if parent_id and parent_id not in self.sessions:
                raise SessionError(f"unknown parent session {parent_id}")
            if parent_id and not parent_object_id:
                raise SessionError("a child session must name its parent object")
            self._next += 1
            self.sessions[self._next] = {"name": name, "tracking": is_tracking, "parent": parent_id,
                                         "done": None, "rolled_back": False}
            return self._next, ""

    def _open(self, sid: int) -> dict[str, Any]:
        s = self.sessions.get(sid)
        if s is None:
            raise SessionError(f"unknown session id {sid}")
        if s["done"] is not None or s["rolled_back"]:
            raise SessionError(f"session {sid} is already done")
        return s

    def session_progress(self, session_id: int, current: int, total: int) -> None:
        self._open(session_id)

    def session_done(self, session_id: int, last_processed: str) -> None:
        with self.lock:
            self._open(session_id)["done"] = last_processed

    def session_rollback(self, session_id: int) -> None:
        with self.lock:
            self._open(session_id)["rolled_back"] = True

    def send_exported(self, session_id: int, objects: Sequence[bytes], dedup: bytes = b"") -> None:
        with self.lock:
            s = self._open(session_id)
            if s["tracking"]:
                raise SessionError("tracking sessions cannot send objects")
            self.objects.setdefault(s["name"], []).extend(objects)

    def export_git_repo(self, request: GitRepoRequest) -> None:
        self.git.append(request)

    def pause(self, message: str, resume_date: str) -> None:
        self.events.append(("pause", resume_date))

    def resume(self, message: str) -> None:
        self.events.append(("resume", message))


class IntegrationContract:
    """Subclass with ``integration_name`` (and ``config``) to run the contract against an integration."""

    integration_name: ClassVar[str] = ""
    integration_type: ClassVar[IntegrationType] = IntegrationType.SOURCECODE
    config: ClassVar[dict[str, Any]] = {}
    # Calls the integration answers; the rest must answer "not supported" cleanly.
    supported: ClassVar[set[str]] = set()

    def entry(self) -> IntegrationConfig:
        return IntegrationConfig(id="contract", name=self.integration_name, type=self.integration_type,
                                 config=dict(self.config))

    @pytest.fixture
    def host(self) -> Iterator[tuple[IntegrationHost, RecordingAgent]]:
        agent = RecordingAgent()
        h = IntegrationHost.start(self.entry(), agent)
        try:
            yield h, agent
        finally:
            h.close()

    def _module(self) -> str:
        return f"integrations.{self.integration_name.replace('-', '_')}"

    def test_without_cookie_says_it_is_a_plugin(self) -> None:
        """Started by hand, the plugin prints one line saying it is a plugin and exits 1."""
        env = {k: v for k, v in os.environ.items() if k != MAGIC_COOKIE_KEY}
        proc = subprocess.run([sys.executable, "-m", self._module()], env=env, capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode == 1
        lines = (proc.stdout + proc.stderr).strip().splitlines()
        assert len(lines) == 1 and "plugin" in lines[0]

    def test_handshake_and_health(self) -> None:
        """With the cookie it prints exactly the go-plugin handshake line and answers health as SERVING."""
        env = {**os.environ, MAGIC_COOKIE_KEY: MAGIC_COOKIE_VALUE}
        proc = subprocess.Popen([sys.executable, "-m", self._module()], env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.count("|") == 4 and line.startswith("1|1|tcp|127.0.0.1:") and line.endswith("|grpc\n")
            hs = parse_handshake(line)
            with grpc.insecure_channel(hs.target) as ch:
                status = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service="plugin"),
                                                              timeout=10).status
            assert status == health_pb2.HealthCheckResponse.SERVING
        finally:
            proc.kill()
            proc.wait()

    def test_shutdown_ends_the_process(self, host: tuple[IntegrationHost, RecordingAgent]) -> None:
        """GRPCController/Shutdown makes the plugin exit 0 on its own (no kill needed)."""
        h, _ = host
        code = h.close()
        assert code == 0

    def test_unsupported_calls_answer_cleanly(self, host: tuple[IntegrationHost, RecordingAgent]) -> None:
        """Each call the integration does not offer answers NotSupported, and the process stays healthy."""
        h, _ = host
        cfg = CallConfig(integration=self.entry(), customer_id="contract")
        calls: dict[str, Callable[[], object]] = {
            "mutate": lambda: h.mutate(cfg, "CONTRACT_NO_SUCH_FN", {}),
            "webhook": lambda: h.webhook(cfg, {"X-Contract": "1"}, b"{}"),
            "onboard_calendars": lambda: h.onboard_export(cfg, OnboardObjectType.CALENDARS),
            "onboard_workconfig": lambda: h.onboard_export(cfg, OnboardObjectType.WORKCONFIG),
        }
        for name, call in calls.items():
            if name in self.supported:
                continue
            with pytest.raises(NotSupportedError):
                call()
        assert h.healthy()

    def test_sessions_are_closed_after_export(self, host: tuple[IntegrationHost, RecordingAgent]) -> None:
        """After a successful export every session the integration opened is done or rolled back."""
        if "export" not in self.supported:
            pytest.skip("integration does not export without network")
        h, agent = host
        h.export(CallConfig(integration=self.entry(), customer_id="contract"), timeout=120)
        assert agent.sessions, "export opened no session"
        left_open = [s["name"] for s in agent.sessions.values() if s["done"] is None and not s["rolled_back"]]
        assert left_open == []
        tracking_with_objects = [s["name"] for s in agent.sessions.values() if s["tracking"]
                                 and s["name"] in agent.objects]
        assert tracking_with_objects == []
