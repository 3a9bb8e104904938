"""go-plugin's stdio stream, read from the host side.

Since go-plugin 1.3 a Go plugin's ``os.Stdout`` and ``os.Stderr`` are pipes that go-plugin drains into the
``plugin.GRPCStdio/StreamStdio`` server stream, chunk by chunk (1 KiB), through unbuffered channels: until a
host reads the stream, the plugin's next write to a full pipe blocks it. The host calls ``StreamStdio`` once,
right after the health check, and copies the lines into the integration's log like stderr lines. Plugins
without the service (go-plugin 1.0-1.2, the Python SDK) answer ``UNIMPLEMENTED`` and the reader ends.
"""

from __future__ import annotations

import threading
from typing import Protocol

import grpc

from pinpoint_agent.protocol._gen import plugin_pb2, plugin_pb2_grpc

MAX_LINE = 64 * 1024  # a longer line without a newline is logged in pieces


class LineSink(Protocol):
    def take_line(self, line: str, stream: str = "stderr") -> None: ...


class StdioReader:
    def __init__(self, channel: grpc.Channel, sink: LineSink) -> None:
        self._sink = sink
        self._call = plugin_pb2_grpc.GRPCStdioStub(channel).StreamStdio(plugin_pb2.Empty())
        self.offered: bool | None = None  # None until the plugin answers or the stream ends
        self._thread = threading.Thread(target=self._run, name="plugin-stdio", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        pending = {plugin_pb2.StdioData.STDOUT: b"", plugin_pb2.StdioData.STDERR: b""}
        try:
            for chunk in self._call:
                self.offered = True
                channel = chunk.channel if chunk.channel in pending else plugin_pb2.StdioData.STDERR
                pending[channel] = self._emit(pending[channel] + chunk.data, channel)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                self.offered = False
        for channel, rest in pending.items():
            if rest:
                self._line(rest, channel)

    def _emit(self, data: bytes, channel: int) -> bytes:
        *lines, rest = data.split(b"\n")
        for line in lines:
            self._line(line, channel)
        while len(rest) > MAX_LINE:
            self._line(rest[:MAX_LINE], channel)
            rest = rest[MAX_LINE:]
        return rest

    def _line(self, raw: bytes, channel: int) -> None:
        stream = "stdout" if channel == plugin_pb2.StdioData.STDOUT else "stderr"
        self._sink.take_line(raw.decode(errors="replace").rstrip("\r"), stream)

    def close(self, drain: float = 1.0) -> None:
        """Ends the stream after the plugin was asked to stop: a plugin serving it gets up to ``drain``
        seconds to send its last lines (its stream ends when it exits), then the call is cancelled."""
        if self.offered:
            self._thread.join(drain)
        self._call.cancel()
        self._thread.join(2.0)
