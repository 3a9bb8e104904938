"""A plugin that behaves like a Go plugin built on hashicorp/go-plugin, for host tests without a Go toolchain.

- It dials the Agent service per call (the call's ``agent_service_id``, else the one Init gave), through a
  broker with go-plugin's rules (an offer serves one dial and is dropped 5 s after it arrived), and closes
  the connection when the call ends.
- It serves ``plugin.GRPCStdio`` like go-plugin >= 1.3: what it writes to "stdout"/"stderr" goes through an
  unbuffered hand-off, so a write blocks until the host reads the stream.
- It logs hclog lines (JSON and text) to stderr, and can die like a Go panic.
- It implements Export only: every other Integration call answers gRPC UNIMPLEMENTED, as a Go plugin
  embedding the generated Unimplemented server does.

Export's behaviour comes from the integration config: ``objects`` (how many to send), ``stdio_lines``
(1 KiB lines through the stdio stream), ``log_lines`` (written to stderr as they are), ``panic`` (true).
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from concurrent import futures

import grpc
import orjson
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pinpoint_agent.protocol._gen import pinpoint_pb2 as pb
from pinpoint_agent.protocol._gen import pinpoint_pb2_grpc, plugin_pb2, plugin_pb2_grpc
from pinpoint_agent.protocol.handshake import Handshake

HOLD = 5.0  # go-plugin: an offer waits 5 s for its dial; a dial waits 5 s for its offer


class GoBroker(plugin_pb2_grpc.GRPCBrokerServicer):
    """go-plugin's GRPCBroker rules, kept here on their own so the test cannot follow the code under test."""

    def __init__(self) -> None:
        self.offers: dict[int, tuple[plugin_pb2.ConnInfo, float]] = {}
        self.cond = threading.Condition()

    def StartStream(self, request_iterator, context):  # noqa: N802
        for info in request_iterator:
            with self.cond:
                self.offers[info.service_id] = (info, time.monotonic())
                self.cond.notify_all()
        return iter(())

    def dial(self, service_id: int) -> grpc.Channel:
        deadline = time.monotonic() + HOLD
        with self.cond:
            while True:
                offer = self.offers.pop(service_id, None)
                if offer is not None and time.monotonic() - offer[1] <= HOLD:
                    info = offer[0]
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"timeout waiting for connection info (broker id {service_id})")
                self.cond.wait(left)
        return grpc.insecure_channel(Handshake(info.network, info.address).target)


class Stdio(getattr(plugin_pb2_grpc, "GRPCStdioServicer", object)):  # type: ignore[misc]
    """go-plugin >= 1.3's stdio service: chunks wait in an unbuffered hand-off until the host reads them."""

    def __init__(self) -> None:
        self.chunks: queue.Queue = queue.Queue(maxsize=1)

    def write(self, channel: int, data: bytes) -> None:
        self.chunks.put(plugin_pb2.StdioData(channel=channel, data=data))  # blocks while nobody reads
        self.chunks.join()

    def StreamStdio(self, request, context):  # noqa: N802
        while context.is_active():
            try:
                chunk = self.chunks.get(timeout=0.1)
            except queue.Empty:
                continue
            yield chunk
            self.chunks.task_done()


class Integration(pinpoint_pb2_grpc.IntegrationServicer):
    def __init__(self, broker: GoBroker, stdio: Stdio) -> None:
        self.broker, self.stdio = broker, stdio
        self.init_id = 0

    def Init(self, request, context):  # noqa: N802
        if os.environ.get("GOPLUGIN_LIKE_NO_INIT"):
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "method Init not implemented")
        self.init_id = request.agent_service_id  # remembered, dialed later (go-plugin allows 5 s)
        return pb.InitResponse(name="goplugin-like")

    def Export(self, request, context):  # noqa: N802
        config = orjson.loads(request.config.integration.config_json or b"{}")
        for line in config.get("log_lines", []):
            sys.stderr.write(line + "\n")
        sys.stderr.flush()
        if config.get("panic"):
            sys.stderr.write("panic: runtime error: index out of range [3] with length 3\n\n")
            sys.stderr.write("goroutine 21 [running]:\n")
            for i in range(200):
                sys.stderr.write(f"main.frame{i}(...)\n\t/src/main.go:{i}\n")
            sys.stderr.flush()
            os._exit(2)
        for i in range(config.get("stdio_lines", 0)):
            self.stdio.write(1 if i % 2 else 2,  # StdioData.STDOUT, STDERR
                             f"stdio line {i} ".encode() + b"x" * 1000 + b"\n")
        sid = getattr(request.config, "agent_service_id", 0) or self.init_id
        channel = self.broker.dial(sid)
        try:
            agent = pinpoint_pb2_grpc.AgentStub(channel)
            s = agent.SessionStart(pb.SessionStartRequest(name="sourcecode.Repo"))
            since = int(s.last_processed or 0)
            count = int(config.get("objects", 3))
            objects = [orjson.dumps({"id": f"r{i}", "ref_id": str(i), "name": f"repo{i}"})
                       for i in range(since, count)]
            if objects:
                agent.SendExported(pb.SendExportedRequest(session_id=s.session_id, objects=objects))
            agent.SessionDone(pb.SessionDoneRequest(session_id=s.session_id, last_processed=str(count)))
        finally:
            channel.close()
        return pb.ExportResponse(projects=[pb.ExportProject(id="p1", name=f"since {since}")])


class Health(health_pb2_grpc.HealthServicer):
    def Check(self, request, context):  # noqa: N802
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


class Controller(plugin_pb2_grpc.GRPCControllerServicer):
    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop

    def Shutdown(self, request, context):  # noqa: N802
        self.stop.set()
        return plugin_pb2.Empty()


def main() -> None:
    stop = threading.Event()
    broker, stdio = GoBroker(), Stdio()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    pinpoint_pb2_grpc.add_IntegrationServicer_to_server(Integration(broker, stdio), server)
    plugin_pb2_grpc.add_GRPCBrokerServicer_to_server(broker, server)
    plugin_pb2_grpc.add_GRPCControllerServicer_to_server(Controller(stop), server)
    if hasattr(plugin_pb2_grpc, "add_GRPCStdioServicer_to_server"):
        plugin_pb2_grpc.add_GRPCStdioServicer_to_server(stdio, server)
    health_pb2_grpc.add_HealthServicer_to_server(Health(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"1|1|tcp|127.0.0.1:{port}|grpc", flush=True)
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    stop.wait()
    server.stop(grace=0.5).wait()
    os._exit(0)


if __name__ == "__main__":
    main()
