"""``serve(MyIntegration)``: the plugin side of go-plugin's handshake, health, shutdown and logging."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc
import orjson
from grpc_health.v1 import health_pb2, health_pb2_grpc

from integrations.sdk._agent import AgentClient
from integrations.sdk._base import Context, Integration
from integrations.sdk._log import bind, configure_logging, get_logger
from pinpoint_agent.errors import PinpointError
from pinpoint_agent.protocol import (
    MAGIC_COOKIE_KEY,
    MAGIC_COOKIE_VALUE,
    CallConfig,
    Handshake,
    OnboardObjectType,
    OnboardResult,
    error_to_proto,
)
from pinpoint_agent.protocol._gen import pinpoint_pb2 as pb
from pinpoint_agent.protocol._gen import pinpoint_pb2_grpc, plugin_pb2, plugin_pb2_grpc
from pinpoint_agent.protocol.broker import PluginBroker
from pinpoint_agent.protocol.handshake import GRPC_OPTIONS

NOT_A_PROGRAM = (
    "This program is a pinpoint-agent integration plugin: the agent starts it "
    "(e.g. `pinpoint-agent export`); it is not meant to be run directly."
)


class _Servicer(pinpoint_pb2_grpc.IntegrationServicer):
    def __init__(self, integration: Integration, broker: PluginBroker) -> None:
        self.integration = integration
        self.broker = broker
        self.agent: AgentClient | None = None
        self._agent_lock = threading.Lock()  # calls of a warm plugin run in parallel
        self.log = get_logger()

    def _context(self, config: pb.CallConfig) -> Context:
        call = CallConfig.from_proto(config)
        if self.agent is None and config.agent_service_id:
            # The SDK keeps one connection for the process (dialed in Init); the host offers the Agent service
            # afresh with every call, for plugins that dial per call, and so a late first dial still works.
            with self._agent_lock:
                if self.agent is None:
                    self.agent = AgentClient(self.broker.dial(config.agent_service_id))
        return Context(call.integration, call.customer_id, call.reprocess_historical, self.agent, self.log)

    def _run(self, what: str, fn: Callable[[], Any], make: Callable[..., Any]) -> Any:
        try:
            result = fn()
            if self.agent is not None:
                self.agent.flush()  # a call never returns before what it queued (batches, SessionDone) went out
            return result
        except Exception as exc:  # noqa: BLE001 (every failure goes back to the agent, typed)
            if isinstance(exc, PinpointError):
                self.log.warning(f"{what} failed", error=str(exc))
            else:  # a bug in the integration: keep the traceback in its log
                self.log.exception(f"{what} failed")
            if self.agent is not None:  # what was queued before the failure goes out before the answer
                with contextlib.suppress(Exception):
                    self.agent.flush()
            return make(error=error_to_proto(exc))

    def Init(self, request: pb.InitRequest, context: grpc.ServicerContext) -> pb.InitResponse:  # noqa: N802
        def init() -> pb.InitResponse:
            if request.agent_service_id:
                if self.agent is not None:
                    self.agent.close()
                self.agent = AgentClient(self.broker.dial(request.agent_service_id))
            bind(plugin=request.display_name or self.integration.name)
            return pb.InitResponse(name=self.integration.name)

        result: pb.InitResponse = self._run("init", init, pb.InitResponse)
        return result

    def Export(self, request: pb.ExportRequest, context: grpc.ServicerContext) -> pb.ExportResponse:  # noqa: N802
        def export() -> pb.ExportResponse:
            ctx = self._context(request.config)
            self.log.info("export started", historical=ctx.reprocess_historical or None)
            result = self.integration.export(ctx)
            ctx.require_agent().flush()
            self.log.info("export finished", projects=len(result.projects))
            return result.to_proto()

        result: pb.ExportResponse = self._run("export", export, pb.ExportResponse)
        return result

    def ValidateConfig(  # noqa: N802
        self, request: pb.ValidateConfigRequest, context: grpc.ServicerContext
    ) -> pb.ValidateConfigResponse:
        result: pb.ValidateConfigResponse = self._run(
            "validate-config", lambda: self.integration.validate_config(self._context(request.config)).to_proto(),
            pb.ValidateConfigResponse)
        return result

    def OnboardExport(  # noqa: N802
        self, request: pb.OnboardExportRequest, context: grpc.ServicerContext
    ) -> pb.OnboardExportResponse:
        def onboard() -> pb.OnboardExportResponse:
            data = self.integration.onboard_export(self._context(request.config),
                                                   OnboardObjectType(request.object_type))
            return OnboardResult(data=data).to_proto()

        result: pb.OnboardExportResponse = self._run("onboard-export", onboard, pb.OnboardExportResponse)
        return result

    def Mutate(self, request: pb.MutateRequest, context: grpc.ServicerContext) -> pb.MutateResponse:  # noqa: N802
        def mutate() -> pb.MutateResponse:
            data = orjson.loads(request.data_json) if request.data_json else None
            return self.integration.mutate(self._context(request.config), request.fn, data).to_proto()

        result: pb.MutateResponse = self._run("mutate", mutate, pb.MutateResponse)
        return result

    def Webhook(self, request: pb.WebhookRequest, context: grpc.ServicerContext) -> pb.WebhookResponse:  # noqa: N802
        def webhook() -> pb.WebhookResponse:
            headers = orjson.loads(request.headers_json) if request.headers_json else {}
            return self.integration.webhook(self._context(request.config), headers, request.body).to_proto()

        result: pb.WebhookResponse = self._run("webhook", webhook, pb.WebhookResponse)
        return result


class _Health(health_pb2_grpc.HealthServicer):  # type: ignore[misc]
    """``grpc.health.v1`` with one service, ``plugin``, always SERVING while the server runs.

    Written here rather than using grpc_health's servicer, whose import costs ~30 ms of cold start."""

    def Check(  # noqa: N802
        self, request: health_pb2.HealthCheckRequest, context: grpc.ServicerContext
    ) -> health_pb2.HealthCheckResponse:
        if request.service not in ("", "plugin"):
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


class _Controller(plugin_pb2_grpc.GRPCControllerServicer):
    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop

    def Shutdown(self, request: plugin_pb2.Empty, context: grpc.ServicerContext) -> plugin_pb2.Empty:  # noqa: N802
        self.stop.set()
        return plugin_pb2.Empty()


def _watch_stdin(stop: threading.Event) -> None:
    """The host keeps our stdin open; EOF means it is gone, so stop rather than linger as an orphan."""
    try:
        while os.read(0, 4096):
            pass
    except OSError:
        pass
    stop.set()


def serve(integration: type[Integration] | Integration) -> None:
    """Runs an integration as a plugin process until the agent asks it to stop."""
    if os.environ.get(MAGIC_COOKIE_KEY) != MAGIC_COOKIE_VALUE:
        print(NOT_A_PROGRAM, file=sys.stderr)
        sys.exit(1)
    configure_logging()
    instance = integration() if isinstance(integration, type) else integration
    stop = threading.Event()
    broker = PluginBroker()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32), options=GRPC_OPTIONS)
    servicer = _Servicer(instance, broker)
    pinpoint_pb2_grpc.add_IntegrationServicer_to_server(servicer, server)
    plugin_pb2_grpc.add_GRPCControllerServicer_to_server(_Controller(stop), server)
    plugin_pb2_grpc.add_GRPCBrokerServicer_to_server(broker, server)
    health_pb2_grpc.add_HealthServicer_to_server(_Health(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()

    sys.stdout.write(Handshake("tcp", f"127.0.0.1:{port}").line() + "\n")
    sys.stdout.flush()
    # stdout carries the handshake and nothing else: whatever the integration prints goes to stderr.
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    # While the agent connects and checks health, load grpc's client side (a first channel costs ~7 ms
    # here, most of it importing grpc._channel), which Init needs to dial the agent back.
    grpc.insecure_channel("127.0.0.1:1").close()

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threading.Thread(target=_watch_stdin, args=(stop,), name="stdin-watch", daemon=True).start()
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    server.stop(grace=1).wait()
    if servicer.agent is not None:
        servicer.agent.close()
    sys.stderr.flush()
    # A call still running (a hung export) must not keep the process alive after shutdown.
    os._exit(0)
