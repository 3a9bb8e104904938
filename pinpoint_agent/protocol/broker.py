"""go-plugin's GRPCBroker, both ends.

The plugin serves ``plugin.GRPCBroker/StartStream``; the host opens that stream and sends
``ConnInfo{service_id, network, address}`` for each service it offers (here: the Agent callback service,
offered afresh before every call that may call back). The plugin side keeps go-plugin's rules, so the
project's own plugins and tests meet what a Go plugin meets: a ConnInfo is taken by one ``dial`` only and is
dropped 5 s after it arrived; ``dial(service_id)`` waits up to 5 s for it and connects without TLS.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator

import grpc

from pinpoint_agent.errors import FatalError
from pinpoint_agent.protocol._gen import plugin_pb2, plugin_pb2_grpc
from pinpoint_agent.protocol.handshake import GRPC_OPTIONS, Handshake

DIAL_TIMEOUT = 5.0


class PluginBroker(plugin_pb2_grpc.GRPCBrokerServicer):
    """Plugin side: records what the host offers and dials it on request."""

    def __init__(self, *, hold: float = DIAL_TIMEOUT) -> None:
        self.hold = hold  # how long an offer waits for its dial (go-plugin: 5 s)
        self._offers: dict[int, tuple[plugin_pb2.ConnInfo, float]] = {}
        self._cond = threading.Condition()

    def StartStream(  # noqa: N802 (gRPC method name)
        self, request_iterator: Iterator[plugin_pb2.ConnInfo], context: grpc.ServicerContext
    ) -> Iterator[plugin_pb2.ConnInfo]:
        for info in request_iterator:
            with self._cond:
                self._prune()  # a plugin that keeps one connection never dials the later offers
                self._offers[info.service_id] = (info, time.monotonic())
                self._cond.notify_all()
        return iter(())

    def _prune(self) -> None:
        now = time.monotonic()
        for sid in [s for s, (_, at) in self._offers.items() if now - at > self.hold]:
            del self._offers[sid]  # go-plugin forgets an offer nobody dialed within 5 s

    def _take(self, service_id: int) -> plugin_pb2.ConnInfo | None:
        self._prune()
        offer = self._offers.pop(service_id, None)
        return offer[0] if offer is not None else None

    def dial(self, service_id: int, timeout: float = DIAL_TIMEOUT) -> grpc.Channel:
        """Connects to the host service offered as ``service_id``; each offer serves one dial."""
        found: list[plugin_pb2.ConnInfo] = []
        with self._cond:
            def take() -> bool:
                info = self._take(service_id)
                if info is not None:
                    found.append(info)
                return bool(found)

            if not self._cond.wait_for(take, timeout):
                raise FatalError(f"timeout waiting for connection info for broker service {service_id}")
        info = found[0]
        target = Handshake(info.network, info.address).target
        return grpc.insecure_channel(target, options=GRPC_OPTIONS)


class HostBroker:
    """Host side: keeps the StartStream call open and sends ConnInfo for offered services."""

    def __init__(self, channel: grpc.Channel) -> None:
        self._outbox: queue.Queue[plugin_pb2.ConnInfo | None] = queue.Queue()
        self._next_id = 0
        self._lock = threading.Lock()
        stub = plugin_pb2_grpc.GRPCBrokerStub(channel)
        self._responses = stub.StartStream(iter(self._outbox.get, None))
        self._reader = threading.Thread(target=self._drain, name="broker-reader", daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        # The plugin may offer services back; this host uses none of them, but the stream must be read.
        try:
            for _ in self._responses:
                pass
        except grpc.RpcError:
            pass  # the plugin went away; the host notices through the main channel

    def offer(self, network: str, address: str) -> int:
        """Tells the plugin where a host service listens; returns the broker id to pass in the API."""
        with self._lock:
            self._next_id += 1
            service_id = self._next_id
        self._outbox.put(plugin_pb2.ConnInfo(service_id=service_id, network=network, address=address))
        return service_id

    def close(self) -> None:
        self._outbox.put(None)
        self._responses.cancel()
