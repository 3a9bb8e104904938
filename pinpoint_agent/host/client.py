"""``IntegrationHost``: a running integration the agent can call, and the calls themselves.

    with IntegrationHost.start(entry, callbacks, root=root) as host:
        result = host.export(call_config, timeout=…, idle_timeout=…, cancel=event)

Starting does the handshake, the gRPC health check (service ``plugin``), starts reading go-plugin's stdio
stream where the plugin offers one, offers the Agent callback service through the go-plugin broker and calls
``Init``. The Agent service is offered afresh (a new broker id in ``CallConfig.agent_service_id``) before
every later call too: in go-plugin an offer serves one dial within 5 s, so a Go plugin that dials per call,
late, or on a warm process reaches the agent as it would under a go-plugin host. Each call waits on a future
while watching the process, the cancel event, the deadline and the time since the last callback; on any
failure the process is stopped and the error names the integration. gRPC errors are translated here and
nowhere else (``UNIMPLEMENTED`` is "not supported", as the SDK answers for what an integration lacks).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent import futures
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import grpc
import orjson
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pinpoint_agent.errors import (
    FatalError,
    NotSupportedError,
    PinpointError,
    PluginError,
    PluginStartError,
    PluginTimeout,
)
from pinpoint_agent.host.callbacks import AgentServicer, Callbacks
from pinpoint_agent.host.process import START_TIMEOUT, PluginProcess, resolve_command
from pinpoint_agent.host.stdio import StdioReader
from pinpoint_agent.protocol import (
    CallConfig,
    ExportResult,
    IntegrationConfig,
    MutateResult,
    OnboardObjectType,
    OnboardResult,
    ValidateResult,
    WebhookResult,
    error_from_proto,
)
from pinpoint_agent.protocol._gen import pinpoint_pb2 as pb
from pinpoint_agent.protocol._gen import pinpoint_pb2_grpc, plugin_pb2, plugin_pb2_grpc
from pinpoint_agent.protocol.broker import HostBroker
from pinpoint_agent.protocol.handshake import GRPC_OPTIONS

R = TypeVar("R")
POLL = 0.05


class Cancelled(PinpointError):
    """The call was cancelled by the agent (Ctrl-C, a cancelled flow run, the service stopping)."""


class IntegrationHost:
    def __init__(self, entry: IntegrationConfig, process: PluginProcess, callbacks: Callbacks,
                 server: _CallbackServer) -> None:
        self.entry = entry
        self.key = entry.display_key
        self.process = process
        self.callbacks = callbacks
        self.servicer = server.servicer
        self._server = server
        self._channel: grpc.Channel | None = None
        self._broker: HostBroker | None = None
        self._stdio: StdioReader | None = None
        self._callbacks_lock = threading.Lock()  # calls with callbacks of their own run one at a time
        self._closed = False

    @classmethod
    def start(cls, entry: IntegrationConfig, callbacks: Callbacks | None = None, *, root: Path | None = None,
              integrations_dir: Path | None = None, argv: list[str] | None = None,
              start_timeout: float = START_TIMEOUT, env: dict[str, str] | None = None) -> IntegrationHost:
        """Starts the plugin process and connects to it; the process is reaped if anything fails."""
        command = argv or resolve_command(entry.name, integrations_dir)
        log_file = root / "logs" / "integrations" / entry.display_key if root is not None else None
        callbacks = callbacks or Callbacks()
        # The Agent service listens before the plugin starts: its set-up is off the start's critical path.
        server = _CallbackServer(AgentServicer(callbacks, entry.display_key))
        try:
            process = PluginProcess(entry.display_key, command, log_file=log_file, start_timeout=start_timeout,
                                    env=env)
        except BaseException:
            server.stop()
            raise
        host = cls(entry, process, callbacks, server)
        try:
            host._connect(start_timeout)
        except BaseException:
            host.close()
            raise
        return host

    def _connect(self, timeout: float) -> None:
        channel = grpc.insecure_channel(self.process.handshake.target, options=GRPC_OPTIONS)
        self._channel = channel
        # Offered first: the address travels on the broker stream while the health check runs, so the
        # plugin has it when Init asks it to dial (offered after the check, Init waited 4-9 ms for it).
        self._broker = HostBroker(channel)
        service_id = self._offer()
        try:
            status = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="plugin"), timeout=timeout, wait_for_ready=True).status
        except grpc.RpcError as exc:
            if self.process.exited() is not None:
                raise self.process.crash_error("start-up") from exc
            raise PluginStartError(self.key, f"health check failed: {_rpc_text(exc)}") from exc
        if status != health_pb2.HealthCheckResponse.SERVING:
            name = health_pb2.HealthCheckResponse.ServingStatus.Name(status)
            raise PluginStartError(self.key, f"health check says {name}")
        # go-plugin >= 1.3 plugins send stdout/stderr through GRPCStdio and block when nobody reads it.
        self._stdio = StdioReader(channel, self.process)
        self._stub = pinpoint_pb2_grpc.IntegrationStub(channel)
        try:
            resp = self._call("init", self._stub.Init, pb.InitRequest(agent_service_id=service_id,
                                                                      display_name=self.key), timeout=timeout)
        except NotSupportedError:
            return  # a plugin without Init (UNIMPLEMENTED) dials the offer every call carries
        self._raise_wire_error(resp.error)

    # -- calls --------------------------------------------------------------------------------------
    def _offer(self) -> int:
        """A fresh broker id for the Agent service, its ConnInfo already on the way to the plugin."""
        assert self._broker is not None
        return self._broker.offer("tcp", self._server.address)

    def _config(self, config: CallConfig) -> pb.CallConfig:
        msg = config.to_proto()
        msg.agent_service_id = self._offer()
        return msg

    def _call(self, what: str, method: Any, request: Any, *, timeout: float | None = None,
              idle_timeout: float | None = None, cancel: threading.Event | None = None,
              unsupported: str | None = None) -> Any:
        future = method.future(request)
        started = time.monotonic()
        self.servicer.last_activity = started
        while True:
            try:
                return future.result(timeout=POLL)
            except grpc.FutureTimeoutError:
                pass
            except grpc.FutureCancelledError as exc:
                raise Cancelled(f"integration {self.key}: {what} cancelled") from exc
            except grpc.RpcError as exc:
                if self.process.exited() is not None or exc.code() in (grpc.StatusCode.UNAVAILABLE,
                                                                      grpc.StatusCode.CANCELLED):
                    if self.process.exited() is not None or _wait_exit(self.process, 1.0):
                        raise self.process.crash_error(what) from exc
                if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                    raise NotSupportedError(f"{self.entry.name} does not support {unsupported or what}") from exc
                raise PluginError(self.key, f"{what} failed: {_rpc_text(exc)}") from exc
            now = time.monotonic()
            if cancel is not None and cancel.is_set():
                future.cancel()
                raise Cancelled(f"integration {self.key}: {what} cancelled")
            if self.process.exited() is not None:
                future.cancel()
                raise self.process.crash_error(what)
            if timeout is not None and now - started > timeout:
                future.cancel()
                raise PluginTimeout(self.key, f"{what} did not finish within {timeout:g}s; stopped it")
            if idle_timeout is not None and now - self.servicer.last_activity > idle_timeout:
                future.cancel()
                raise PluginTimeout(self.key, f"{what}: no progress (no callback) for {idle_timeout:g}s; "
                                              "stopped it")

    def _raise_wire_error(self, err: pb.Error) -> None:
        exc = error_from_proto(err)
        if exc is not None:
            if isinstance(exc, FatalError):
                raise PluginError(self.key, str(exc))
            raise exc

    def export(self, config: CallConfig, *, timeout: float | None = None, idle_timeout: float | None = None,
               cancel: threading.Event | None = None, callbacks: Callbacks | None = None) -> ExportResult:
        """``callbacks``: answer this export's callbacks with these instead of the host's own (a warm
        plugin serving one export after another, each with its own sessions). The callback service is one per
        host, so such exports run one at a time, and other calls made meanwhile are answered by them too."""
        if callbacks is not None:
            with self._callbacks_lock:
                saved, self.servicer.callbacks = self.servicer.callbacks, callbacks
                try:
                    return self.export(config, timeout=timeout, idle_timeout=idle_timeout, cancel=cancel)
                finally:
                    self.servicer.callbacks = saved
        resp = self._call("export", self._stub.Export, pb.ExportRequest(config=self._config(config)),
                          timeout=timeout, idle_timeout=idle_timeout, cancel=cancel)
        self._raise_wire_error(resp.error)
        return ExportResult.from_proto(resp)

    def validate_config(self, config: CallConfig, *, timeout: float | None = None) -> ValidateResult:
        resp = self._call("validate-config", self._stub.ValidateConfig,
                          pb.ValidateConfigRequest(config=self._config(config)), timeout=timeout)
        self._raise_wire_error(resp.error)
        return ValidateResult.from_proto(resp)

    def onboard_export(self, config: CallConfig, object_type: OnboardObjectType, *,
                       timeout: float | None = None) -> OnboardResult:
        resp = self._call("onboard-export", self._stub.OnboardExport,
                          pb.OnboardExportRequest(config=self._config(config), object_type=int(object_type)),  # type: ignore[arg-type]
                          timeout=timeout, unsupported=f"onboarding {object_type.name.lower()}")
        self._raise_wire_error(resp.error)
        return OnboardResult.from_proto(resp)

    def mutate(self, config: CallConfig, fn: str, data: Any, *, timeout: float | None = None) -> MutateResult:
        resp = self._call("mutate", self._stub.Mutate, pb.MutateRequest(
            config=self._config(config), fn=fn, data_json=orjson.dumps(data)), timeout=timeout,
            unsupported=f"mutation {fn}")
        self._raise_wire_error(resp.error)
        return MutateResult.from_proto(resp)

    def webhook(self, config: CallConfig, headers: dict[str, str], body: bytes, *,
                timeout: float | None = None) -> WebhookResult:
        resp = self._call("webhook", self._stub.Webhook, pb.WebhookRequest(
            config=self._config(config), headers_json=orjson.dumps(headers), body=body), timeout=timeout,
            unsupported="webhooks")
        self._raise_wire_error(resp.error)
        return WebhookResult.from_proto(resp)

    def healthy(self, timeout: float = 2.0) -> bool:
        """True when the process lives and answers the health check."""
        if self._closed or self.process.exited() is not None or self._channel is None:
            return False
        try:
            status = health_pb2_grpc.HealthStub(self._channel).Check(
                health_pb2.HealthCheckRequest(service="plugin"), timeout=timeout).status
        except grpc.RpcError:
            return False
        return bool(status == health_pb2.HealthCheckResponse.SERVING)

    # -- stop ---------------------------------------------------------------------------------------
    def close(self) -> int | None:
        """Asks the plugin to shut down, then reaps it (SIGTERM/SIGKILL after a grace period)."""
        if self._closed:
            return self.process.exited()
        self._closed = True
        if self._channel is not None and self.process.exited() is None:
            try:
                plugin_pb2_grpc.GRPCControllerStub(self._channel).Shutdown(plugin_pb2.Empty(), timeout=2)
            except grpc.RpcError:
                pass  # go-plugin stops before answering; UNAVAILABLE is success here
        if self._broker is not None:
            self._broker.close()
        if self._stdio is not None:
            self._stdio.close()  # before the log file closes: the plugin's last lines may be in flight
        code = self.process.stop()
        if self._channel is not None:
            self._channel.close()
        self._server.stop()
        return code

    def __enter__(self) -> IntegrationHost:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class _CallbackServer:
    """The Agent callback service for one plugin, on a loopback port of its own."""

    def __init__(self, servicer: AgentServicer) -> None:
        self.servicer = servicer
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="agent-cb"),
                                   options=GRPC_OPTIONS)
        pinpoint_pb2_grpc.add_AgentServicer_to_server(servicer, self._server)
        self.address = f"127.0.0.1:{self._server.add_insecure_port('127.0.0.1:0')}"
        self._server.start()

    def stop(self) -> None:
        self._server.stop(grace=None)


def _wait_exit(process: PluginProcess, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.exited() is not None:
            return True
        time.sleep(0.02)
    return False


def _rpc_text(exc: BaseException) -> str:
    if isinstance(exc, grpc.RpcError):
        code: Callable[[], Any] | None = getattr(exc, "code", None)
        details: Callable[[], Any] | None = getattr(exc, "details", None)
        if code and details:
            return f"{code().name}: {details()}"
    return str(exc) or type(exc).__name__
