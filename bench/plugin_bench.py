"""Plugin runtime benchmark: cold start, warm unary latency and SendExported throughput, mock vs host.

    .venv/bin/python bench/plugin_bench.py [--objects 200000] [--cold-runs 20] [--warm-calls 2000]

Cold start = spawning the mock until its first answer (handshake, health check, broker, Init and one
ValidateConfig call). Floors printed beside it, each the time from spawning the same interpreter until it
has run the code and says so on stdout (teardown excluded, as for the cold start): nothing; grpc plus the
protobuf runtime with a generated module (``grpc_health.v1.health_pb2``: what any Python gRPC plugin loads
before it can answer go-plugin's health check; ``google.protobuf.message`` alone does not load the
runtime; imported plainly, as a program that does nothing about start-up would); the SDK, imported as in
a plugin process (the magic cookie set: it defers ``asyncio``, ``grpc.aio`` and protobuf's Python message
builder, which grpc and protobuf import and a plugin does not use, so it can be ready before that floor).
Throughput = objects from the mock's export into a counting Agent on the host.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

from pinpoint_agent.host import Callbacks, IntegrationHost
from pinpoint_agent.protocol import MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE, CallConfig, IntegrationConfig, IntegrationType


class Counting(Callbacks):
    def __init__(self) -> None:
        self.objects = 0
        self.bytes = 0
        self.lock = threading.Lock()
        self.next = 0

    def session_start(self, is_tracking, name, parent_id, parent_object_id, parent_object_name):  # type: ignore[no-untyped-def]
        with self.lock:
            self.next += 1
            return self.next, ""

    def session_progress(self, session_id: int, current: int, total: int) -> None:
        pass

    def session_done(self, session_id: int, last_processed: str) -> None:
        pass

    def send_exported(self, session_id: int, objects: Sequence[bytes], dedup: bytes = b"") -> None:
        self.objects += len(objects)
        self.bytes += sum(len(o) for o in objects)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", type=int, default=200_000)
    ap.add_argument("--cold-runs", type=int, default=20)
    ap.add_argument("--warm-calls", type=int, default=2000)
    args = ap.parse_args()
    entry = IntegrationConfig(id="b", name="mock", type=IntegrationType.SOURCECODE, config={})
    cfg = CallConfig(integration=entry, customer_id="bench")

    def until_ready(code: str, env: dict[str, str] | None = None) -> float:
        t = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", f"{code}\nprint(flush=True)\nimport sys; sys.stdin.read()"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        assert proc.stdout is not None and proc.stdin is not None
        proc.stdout.readline()
        elapsed = time.perf_counter() - t
        proc.stdin.close()
        proc.wait()
        return elapsed

    # The SDK imported as in a plugin process (the cookie set: it defers what a plugin does not use).
    plugin_env = {**os.environ, MAGIC_COOKIE_KEY: MAGIC_COOKIE_VALUE}
    floor_runs, grpc_runs, import_runs, cold = [], [], [], []
    for _ in range(args.cold_runs):
        floor_runs.append(until_ready("pass"))
        grpc_runs.append(until_ready("import grpc\nfrom grpc_health.v1 import health_pb2, health_pb2_grpc"))
        import_runs.append(until_ready("import integrations.sdk", plugin_env))
        t = time.perf_counter()
        host = IntegrationHost.start(entry, Counting())
        host.validate_config(cfg)
        cold.append(time.perf_counter() - t)
        host.close()

    host = IntegrationHost.start(entry, Counting())
    for _ in range(100):
        host.validate_config(cfg)
    warm = []
    for _ in range(args.warm_calls):
        t = time.perf_counter()
        host.validate_config(cfg)
        warm.append(time.perf_counter() - t)
    host.close()

    def throughput(cheap: bool) -> tuple[Counting, float]:
        repos = 20
        counting = Counting()
        export_entry = IntegrationConfig(id="b", name="mock", type=IntegrationType.SOURCECODE, config={
            "repos": repos, "prs_per_repo": args.objects // repos, "users": 0, "cheap_objects": cheap})
        with IntegrationHost.start(export_entry, counting) as host:
            t = time.perf_counter()
            host.export(CallConfig(integration=export_entry, customer_id="bench"))
            return counting, time.perf_counter() - t

    counting, elapsed = throughput(cheap=False)
    cheap_counting, cheap_elapsed = throughput(cheap=True)

    med = statistics.median
    print(f"{'measure':44} {'value':>12}   goal")
    print(f"{'interpreter ready (floor), median':44} {med(floor_runs) * 1000:10.1f} ms")
    print(f"{'grpc + protobuf runtime ready (floor), median':44} {med(grpc_runs) * 1000:10.1f} ms")
    print(f"{'integrations.sdk imported (as a plugin), median':44} {med(import_runs) * 1000:10.1f} ms")
    print(f"{'cold start to first answer, median of ' + str(args.cold_runs):44} {med(cold) * 1000:10.1f} ms   "
          f"<= 200 ms   ({med(cold) / med(grpc_runs):.2f}x the grpc + protobuf floor)")
    print(f"{'warm unary call p50':44} {pct(warm, 50) * 1000:10.3f} ms   <= 2 ms")
    print(f"{'warm unary call p99':44} {pct(warm, 99) * 1000:10.3f} ms")
    for label, c, e in (("mock objects", counting, elapsed), ("cheap objects", cheap_counting, cheap_elapsed)):
        print(f"{'SendExported objects/s, ' + label + ' (' + str(c.objects) + ')':44} {c.objects / e:12,.0f}   "
              f">= 100,000   ({c.bytes / e / 1e6:.1f} MB/s, {e:.2f} s)")
    print("(mock objects: the mock builds datamodel-faithful objects, hashed id and hashcode, 2.6-4.5 us each "
          "here, on the plugin's core; cheap objects: same size, built in ~1.5 us, so the figure is mostly the "
          "SDK + gRPC + agent)")


if __name__ == "__main__":
    main()
