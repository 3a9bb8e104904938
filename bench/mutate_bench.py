"""Mutate latency: through the running service (warm plugin) vs the one-shot CLI, in one run.

    .venv/bin/python bench/mutate_bench.py [--runs 40] [--cli-runs 5] [--poll 0.02]

Service: ``pinpoint-agent run`` with a temp root; each sample is what a backend sees, end to end:
``POST /api/deployments/{id}/create_flow_run`` → the run's state polled every ``--poll`` seconds until
COMPLETED → the result artifact read (``POST /api/artifacts/filter``). A second pass polls only the
artifact: the time until the result is readable (it is written just before the run turns Completed). A
third waits on Prefect's event stream for the run's final-state event, then reads the artifact.
CLI: ``pinpoint-agent mutate …`` as a fresh process per sample (imports, plugin start, its own flow run);
it reuses the same running Prefect server, as the CLI does when one is up. Upstream: the mock integration
(no network, answers at once). Uses PREFECT_API_URL, else starts a local server under the temp root.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
AGENT = [sys.executable, "-m", "pinpoint_agent.cli"]
INTEGRATIONS = [{"id": "bench", "name": "mock", "type": 1, "config": {}}]


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def request(http: httpx.Client, method: str, url: str, **kwargs: object) -> httpx.Response:
    for attempt in range(30):  # 503: a busy SQLite server ("database is locked"); a backend retries
        r = http.request(method, url, **kwargs)  # type: ignore[arg-type]
        if r.status_code not in (429, 503):
            r.raise_for_status()
            return r
        time.sleep(min(0.02 * 2 ** attempt, 1.0))
    r.raise_for_status()
    return r


def through_service(http: httpx.Client, deployment: str, n: int,
                    wait_result: Callable[[str], dict[str, Any] | None]) -> list[float]:
    """Seconds from ``create_flow_run`` until ``wait_result(run id)`` has the result, per mutation."""
    times = []
    for i in range(n):
        params = {"integrations": INTEGRATIONS,
                  "mutation": {"fn": "PR_SET_TITLE", "data": {"ref_id": "1", "title": f"title {i}"}}}
        t0 = time.perf_counter()
        run = request(http, "POST", f"/deployments/{deployment}/create_flow_run",
                      json={"parameters": params, "idempotency_key": uuid.uuid4().hex}).json()
        result = wait_result(run["id"])
        assert result and result["success"], result
        times.append(time.perf_counter() - t0)
        time.sleep(0.1)
    return times


def state_then_result(http: httpx.Client, poll: float) -> Callable[[str], dict[str, Any] | None]:
    """Polls the run's state until it is final, then reads the result."""
    def wait(run_id: str) -> dict[str, Any] | None:
        while True:
            state = request(http, "GET", f"/flow_runs/{run_id}").json()["state"]["type"]
            if state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
                assert state == "COMPLETED", state
                return poll_artifact(http, run_id)
            time.sleep(poll)
    return wait


def result_only(http: httpx.Client, poll: float) -> Callable[[str], dict[str, Any] | None]:
    """Polls the result artifact alone."""
    def wait(run_id: str) -> dict[str, Any] | None:
        while not (result := poll_artifact(http, run_id)):
            time.sleep(poll)
        return result
    return wait


class CompletedEvents:
    """A backend that does not poll: Prefect's event stream (``/api/events/out``) pushes each run's final
    state event; the backend then reads the result artifact."""

    FINAL = ("prefect.flow-run.Completed", "prefect.flow-run.Failed", "prefect.flow-run.Crashed",
             "prefect.flow-run.Cancelled")

    def __init__(self) -> None:
        self.seen: dict[str, str] = {}
        self.cond = threading.Condition()
        self.ready = threading.Event()
        threading.Thread(target=lambda: asyncio.run(self._listen()), daemon=True).start()
        assert self.ready.wait(30), "no event stream"

    async def _listen(self) -> None:
        from prefect.events.clients import get_events_subscriber
        from prefect.events.filters import EventFilter, EventNameFilter

        async with get_events_subscriber(filter=EventFilter(event=EventNameFilter(name=list(self.FINAL)))) as events:
            self.ready.set()
            async for event in events:
                with self.cond:
                    self.seen[event.resource.id.rpartition(".")[2]] = event.event
                    self.cond.notify_all()

    def wait(self, run_id: str, timeout: float = 30) -> str:
        with self.cond:
            assert self.cond.wait_for(lambda: run_id in self.seen, timeout), f"no final event for {run_id}"
            return self.seen[run_id]


def event_then_result(http: httpx.Client, events: CompletedEvents) -> Callable[[str], dict[str, Any] | None]:
    """Waits for the run's final-state event, then reads the result."""
    def wait(run_id: str) -> dict[str, Any] | None:
        assert events.wait(run_id) == "prefect.flow-run.Completed"
        return poll_artifact(http, run_id)
    return wait


def poll_artifact(http: httpx.Client, run_id: str) -> dict[str, object] | None:
    found = request(http, "POST", "/artifacts/filter", json={"artifacts": {
        "flow_run_id": {"any_": [run_id]}, "type": {"any_": ["result"]}}}).json()
    return found[0]["data"] if found else None


def one_shot_cli(root: Path, n: int) -> list[float]:
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        proc = subprocess.run([*AGENT, "mutate", "--pinpoint-root", str(root), "--integrations-json",
                               orjson.dumps(INTEGRATIONS).decode(), "--mutation",
                               orjson.dumps({"fn": "PR_SET_TITLE", "data": {"ref_id": "1", "title": str(i)}}).decode()],
                              capture_output=True, text=True, cwd=ROOT, stdin=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
        assert proc.returncode == 0 and orjson.loads(proc.stdout)["success"], proc.stderr[-2000:]
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=40, help="mutations through the service")
    ap.add_argument("--cli-runs", type=int, default=5, help="one-shot CLI mutations")
    ap.add_argument("--poll", type=float, default=0.025, help="seconds between the backend's polls")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="mutate-bench-"))
    root = base / "root"
    from pinpoint_agent.prefect_server import ensure_api, stop_local

    started_server = not os.environ.get("PREFECT_API_URL")
    api = ensure_api(base / "prefect")
    name = f"bench-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "PREFECT_API_URL": api, "PINPOINT_DEPLOYMENT_NAME": name}
    service = subprocess.Popen([*AGENT, "run", "--pinpoint-root", str(root)], env=env, cwd=ROOT,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        log = root / "logs" / "run"
        deadline = time.monotonic() + 120
        while not (log.exists() and "serving deployments" in log.read_text()):
            assert service.poll() is None and time.monotonic() < deadline, "the service did not start"
            time.sleep(0.1)
        with httpx.Client(base_url=api, timeout=30) as http:
            deployment = request(http, "GET", f"/deployments/name/mutate/{name}").json()["id"]
            through_service(http, deployment, 3, state_then_result(http, args.poll))  # warm-up: starts the plugin
            total = through_service(http, deployment, args.runs, state_then_result(http, args.poll))
            readable = through_service(http, deployment, args.runs, result_only(http, args.poll))
            pushed = through_service(http, deployment, args.runs, event_then_result(http, CompletedEvents()))
        cli = one_shot_cli(root, args.cli_runs)
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(60)
        if started_server:
            stop_local(base / "prefect")
    ms = lambda v: f"{v * 1000:7.0f} ms"  # noqa: E731
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; state poll every {args.poll:g}s")
    print(f"service, create_flow_run -> COMPLETED + result read ({args.runs} runs): "
          f"p50 {ms(statistics.median(total))}  p99 {ms(pct(total, 99))}")
    print(f"service, create_flow_run -> result artifact readable ({args.runs} runs):  "
          f"p50 {ms(statistics.median(readable))}  p99 {ms(pct(readable, 99))}")
    print(f"service, create_flow_run -> Completed event pushed + result read ({args.runs} runs): "
          f"p50 {ms(statistics.median(pushed))}  p99 {ms(pct(pushed, 99))}")
    print(f"one-shot CLI mutate ({args.cli_runs} runs):                               "
          f"p50 {ms(statistics.median(cli))}  p99 {ms(pct(cli, 99))}")
    print(f"ratio CLI / service (p50): {statistics.median(cli) / statistics.median(total):.1f}x")


if __name__ == "__main__":
    main()
