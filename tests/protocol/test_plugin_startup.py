"""A plugin process defers the modules grpc and protobuf load but a plugin does not use, and still gets
them, whole, the moment it uses them. Each case runs in a fresh interpreter (start-up is per process)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from integrations.sdk import _startup
from pinpoint_agent.protocol import MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE

PROBE = """
import sys
import integrations.sdk
def state():
    return {name: type(sys.modules.get(name)).__name__ for name in
            ("asyncio", "grpc.aio", "google.protobuf.internal.python_message")}
print(state())
"""


def _run(code: str, *, plugin: bool) -> str:
    env = {k: v for k, v in os.environ.items() if k != MAGIC_COOKIE_KEY}
    if plugin:
        env[MAGIC_COOKIE_KEY] = MAGIC_COOKIE_VALUE
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_the_cookie_is_the_protocols() -> None:
    assert (_startup.MAGIC_COOKIE_KEY, _startup.MAGIC_COOKIE_VALUE) == (MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE)


def test_a_plugin_process_starts_without_them() -> None:
    first = _run(PROBE, plugin=True).splitlines()[0]
    assert first == str({name: "_Deferred" for name in _startup.DEFERRED})


def test_outside_a_plugin_nothing_is_deferred() -> None:
    first = _run(PROBE, plugin=False).splitlines()[0]
    assert "_Deferred" not in first


def test_a_deferred_module_loads_whole_on_first_use() -> None:
    out = _run(PROBE + """
import asyncio, grpc
from asyncio import events                      # a submodule, through the placeholder's __path__
async def answer():
    await asyncio.sleep(0)
    return 42
print(asyncio.run(answer()), events.get_event_loop_policy() is not None)
print(grpc.aio.insecure_channel.__module__)     # grpc's own reference to the placeholder works too
from google.protobuf.internal import python_message
print(callable(python_message.GeneratedProtocolMessageType))
print(state())
""", plugin=True).splitlines()
    assert out[1:4] == ["42 True", "grpc.aio._channel", "True"]
    assert "_Deferred" not in out[4]


def test_the_sdk_still_serves_grpc_after_deferring() -> None:
    """A plugin's server and client work with the placeholders in (the SDK's health check is answered)."""
    out = _run(PROBE + """
from concurrent import futures
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from integrations.sdk._server import _Health
server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
health_pb2_grpc.add_HealthServicer_to_server(_Health(), server)
port = server.add_insecure_port("127.0.0.1:0")
server.start()
with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="plugin"), timeout=10)
print(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))
server.stop(None)
print("asyncio" in sys.modules and type(sys.modules["asyncio"]).__name__)
""", plugin=True).splitlines()
    assert out[1] == "SERVING"
    assert out[2] == "_Deferred"  # serving and calling did not need asyncio
