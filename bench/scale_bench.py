"""Scale benchmark, two parts in one run (``--part state|workers|all``).

Workers part: one export of 8 mock integrations fanned out (``fan_out_deployment: export/fan-out``) over Prefect
process workers started by this bench, each with its own root, on one worker and then on two; the export is
triggered the way a backend does (REST ``create_flow_run`` on ``export/pool``) and timed until its run is
Completed. ``reprocess_historical`` makes every child do the whole work (the eight entries share one state key,
``mock@SOURCECODE``, so on one root they would otherwise be incremental). The two workers share this machine's
cores: the ratio says what a second worker buys here, not on a second machine.

State part: one export of N mock objects (default 1M) through the whole path (CLI → flow →
plugin → callbacks → dedup → files → state) with the state in SQLite (the embedded default) and in PostgreSQL
(a server this bench starts, durable: fsync on, default settings), in the same run; and, with ``--baseline
REF``, the SQLite export of that git ref (e.g. ``main``) in the same run, so the embedded default is compared
with the code before the state store interface.

    .venv/bin/python bench/scale_bench.py [--objects 1000000] [--baseline main] [--runs 1]

Every export runs in its own process (the CLI's way). Printed: export seconds (the integration's duration in
the result), wall seconds, objects/s, and each ratio against this code's SQLite export.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

from bench.export_bench import whole_path  # noqa: E402
from pinpoint_agent.prefect_server import ensure_api, stop_local  # noqa: E402
from pinpoint_agent.testing.postgres import PostgresServer, find_binaries  # noqa: E402

INTEGRATIONS = 8


def _request(http: httpx.Client, method: str, url: str, **kwargs: Any) -> httpx.Response:
    for attempt in range(30):  # 503: a busy SQLite Prefect server; a backend retries
        r = http.request(method, url, **kwargs)
        if r.status_code not in (429, 503):
            r.raise_for_status()
            return r
        time.sleep(min(0.05 * 2 ** attempt, 1.0))
    r.raise_for_status()
    return r


def fan_out(base: Path, api: str, per_integration: int) -> None:
    """The same 8-integration export on one worker, then on two; prints both and the ratio."""
    env = {**os.environ, "PREFECT_API_URL": api, "PWD": str(HERE), "PREFECT_HOME": str(base / "prefect-cli")}
    prefect = [sys.executable, "-m", "prefect"]
    subprocess.run([*prefect, "work-pool", "create", "pinpoint-agent", "--type", "process", "--overwrite"],
                   cwd=HERE, env=env, check=True, capture_output=True)
    subprocess.run([*prefect, "--no-prompt", "deploy", "--all"], cwd=HERE, env=env, check=True, capture_output=True)
    repos = 10
    entries = [{"id": f"m{i}", "name": "mock", "type": 1,
                "config": {"repos": repos, "prs_per_repo": per_integration // repos, "users": 0}}
               for i in range(INTEGRATIONS)]
    fast = {"PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "1"}
    times = {}
    with httpx.Client(base_url=api, timeout=30) as http:
        deployment = _request(http, "GET", "/deployments/name/export/pool").json()["id"]
        for n in (1, 2):
            workers = [subprocess.Popen(
                [*prefect, "worker", "start", "--pool", "pinpoint-agent", "--limit", str(INTEGRATIONS + 1)],
                cwd=HERE, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True, env={**env, **fast, "PINPOINT_ROOT": str(base / f"workers-{n}-{i}")})
                for i in range(n)]
            try:
                started = time.monotonic()
                run = _request(http, "POST", f"/deployments/{deployment}/create_flow_run", json={
                    "parameters": {"integrations": entries, "reprocess_historical": True,
                                   "agent_config": {"fan_out_deployment": "export/fan-out"}}}).json()
                while True:
                    state = _request(http, "GET", f"/flow_runs/{run['id']}").json()["state"]["type"]
                    if state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
                        break
                    time.sleep(0.5)
                times[n] = time.monotonic() - started
                if state != "COMPLETED":
                    raise SystemExit(f"the fanned-out export on {n} worker(s) ended {state}")
                result = _request(http, "POST", "/artifacts/filter", json={"artifacts": {
                    "flow_run_id": {"any_": [run["id"]]}, "type": {"any_": ["result"]}}}).json()[0]["data"]
                written = sum(i["objects"].get("sourcecode.PullRequest", 0) for i in result["integrations"])
                errors = [i["error"] for i in result["integrations"] if i["error"]]
                if errors or written != INTEGRATIONS * per_integration:
                    raise SystemExit(f"the fanned-out export on {n} worker(s) wrote {written}: {errors[:1]}")
            finally:
                for w in workers:
                    os.killpg(w.pid, signal.SIGTERM)
                for w in workers:
                    w.wait(60)
    total = INTEGRATIONS * per_integration
    print(f"{'workers':>8} {'integrations':>12} {'objects':>9} {'wall s':>7} {'obj/s':>9}")
    for n, seconds in times.items():
        print(f"{n:>8} {INTEGRATIONS:>12} {total:>9,} {seconds:>7.2f} {total / seconds:>9,.0f}")
    print(f"ratio two workers / one: {times[2] / times[1]:.2f} (both on this machine's {os.cpu_count()} cores; "
          "wall from create_flow_run to the parent run Completed, children's process starts included)")


def snapshot(ref: str, into: Path) -> Path:
    """The tree of ``ref`` (git archive), to run with this .venv through PYTHONPATH."""
    into.mkdir()
    archive = subprocess.run(["git", "-C", str(HERE), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", type=int, default=1_000_000)
    ap.add_argument("--baseline", default="main", help="git ref whose SQLite export is measured too ('' to skip)")
    ap.add_argument("--runs", type=int, default=1, help="exports per variant (the median is printed)")
    ap.add_argument("--part", choices=("state", "workers", "all"), default="all")
    ap.add_argument("--per-integration", type=int, default=100_000, help="objects per integration (workers part)")
    args = ap.parse_args()
    if args.part == "workers":
        with tempfile.TemporaryDirectory(prefix="scale-bench-") as tmp:
            home = Path(tmp) / "prefect"
            os.environ.pop("PREFECT_API_URL", None)
            api = ensure_api(home)
            try:
                fan_out(Path(tmp), api, args.per_integration)
            finally:
                stop_local(home)
        return
    if find_binaries() is None:
        raise SystemExit("PostgreSQL server binaries not installed (apt-get install postgresql)")
    os.environ.pop("PINPOINT_STATE_URL", None)
    with tempfile.TemporaryDirectory(prefix="scale-bench-") as tmp:
        base = Path(tmp)
        home = base / "prefect"
        os.environ.pop("PREFECT_API_URL", None)
        ensure_api(home)
        pg = PostgresServer.start(durable=True)
        try:
            variants: list[tuple[str, dict[str, str]]] = [("sqlite", {})]
            if args.baseline:
                tree = snapshot(args.baseline, base / "baseline")
                variants.insert(0, (f"sqlite ({args.baseline})", {"PYTHONPATH": str(tree)}))
            variants.append(("postgresql", {"PINPOINT_STATE_URL": pg.new_database()}))
            results: dict[str, tuple[float, float]] = {}
            for i in range(args.runs):
                for name, env in variants:
                    saved = {k: os.environ.get(k) for k in env}
                    os.environ.update(env)
                    try:
                        if name == "postgresql" and i:
                            os.environ["PINPOINT_STATE_URL"] = pg.new_database()
                        root = base / f"root-{i}-{variants.index((name, env))}"  # a fresh root per export
                        wall, export_s, _, _, written = whole_path(args.objects, root)
                    finally:
                        for k, v in saved.items():
                            if v is None:
                                os.environ.pop(k, None)
                            else:
                                os.environ[k] = v
                    assert written == args.objects, (name, written)
                    prev = results.get(name)
                    results[name] = (export_s, wall) if prev is None or export_s < prev[0] else prev
            floor = results["sqlite"][0]
            print(f"{'state':>16} {'objects':>9} {'export s':>9} {'wall s':>7} {'obj/s':>9} {'ratio':>6}")
            for name, (export_s, wall) in results.items():
                print(f"{name:>16} {args.objects:>9,} {export_s:>9.2f} {wall:>7.2f} {args.objects / export_s:>9,.0f} "
                      f"{export_s / floor:>6.2f}")
            print("ratio: export seconds against this code's SQLite state (the embedded default)")
            if args.part == "all":
                fan_out(base, os.environ["PREFECT_API_URL"], args.per_integration)
        finally:
            pg.stop()
            stop_local(home)


if __name__ == "__main__":
    main()
