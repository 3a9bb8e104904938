"""Scale benchmark, two parts in one run (``--part state|workers|all``).

Workers part: one export of 8 integrations fanned out (``fan_out_deployment: export/fan-out``) over Prefect
process workers started by this bench, each with its own root, on one worker and then on two, with the state (and
the secret store) in one PostgreSQL database, as on many machines; the export is triggered the way a backend does
(REST ``create_flow_run`` on ``export/pool``) and timed until its run is Completed; the Prefect server is one
this bench starts on a PostgreSQL database. Two kinds of integration:

- ``cpu``: 8 mock integrations of ``--per-integration`` pull requests each: all work is this machine's CPU
  (the child's flow-run process start, the plugin making objects, dedup, gzip, state).
- ``upstream``: 8 GitHub integrations (``integrations/github``, the real plugin) exporting the organization of
  the repo's fake GitHub (``tests/github/fake_github.py``, served by this bench) with ``--latency`` seconds
  before each answer: most of a child's time is waiting on its upstream, as real integrations wait on rate
  limits and latency. The token reaches the workers as a ``secret-store:`` reference (the shared store).

The 8 entries have distinct names, so distinct state keys and claims (``mock-0@SOURCECODE`` …): with one shared
``mock@SOURCECODE`` the children would refuse each other under PostgreSQL state. The names resolve through the
agent's lookup of external plugins (``--integrations-dir``: ``<dir>/bin/mock-3`` is a two-line script running
``python -m integrations.mock``), as a customer's second GitHub organization would. Each measurement starts
from a new database and new roots (historical exports). Children that land on one worker queue on its root (one
export per root at a time), so one worker runs the 8 one after another and two run two at a time. The two
workers share this machine's cores: the ratio says what a second worker buys here, not on a second machine.
Beside them, the floor: the same export not fanned out, its 8 integrations side by side in one run on one worker.

State part: one export of N mock objects (default 1M) through the whole path (CLI → flow →
plugin → callbacks → dedup → files → state) with the state in SQLite (the embedded default) and in PostgreSQL
(a server this bench starts, durable: fsync on, default settings), in the same run; and, with ``--baseline
REF``, the SQLite export of that git ref (e.g. ``main``) in the same run, so the embedded default is compared
with the code before the state store interface.

    .venv/bin/python bench/scale_bench.py [--objects 1000000] [--baseline main] [--runs 1]
    .venv/bin/python bench/scale_bench.py --part workers [--per-integration 100000] [--latency 0.05] [--gh-prs 20]

Every export runs in its own process (the CLI's way). Printed: export seconds (the integration's duration in
the result), wall seconds, objects/s, and each ratio against this code's SQLite export.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

from bench.export_bench import whole_path  # noqa: E402
from pinpoint_agent.backend import SecretBox, SecretStore  # noqa: E402
from pinpoint_agent.prefect_server import attach, ensure_api, stop_local  # noqa: E402
from pinpoint_agent.secrets import LOCAL_KEY_FILE, local_key  # noqa: E402
from pinpoint_agent.testing.postgres import PostgresServer, find_binaries  # noqa: E402
from tests.github.fake_data import T0  # noqa: E402
from tests.github.fake_github import TOKEN, FakeGitHub  # noqa: E402

INTEGRATIONS = 8
TOKEN_SECRET = "bench.github.api_key"
PREFECT_DB = "PREFECT_API_DATABASE_CONNECTION_URL"


def _request(http: httpx.Client, method: str, url: str, **kwargs: Any) -> httpx.Response:
    for attempt in range(30):  # 503: a busy SQLite Prefect server; a backend retries
        r = http.request(method, url, **kwargs)
        if r.status_code not in (429, 503):
            r.raise_for_status()
            return r
        time.sleep(min(0.05 * 2 ** attempt, 1.0))
    r.raise_for_status()
    return r


def plugin_names(folder: Path, package: str) -> list[str]:
    """``<folder>/bin/<package>-<i>``: scripts that run the built-in ``integrations.<package>`` under 8 names."""
    (folder / "bin").mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(INTEGRATIONS):
        script = folder / "bin" / f"{package}-{i}"
        script.write_text(f'#!/bin/sh\nPYTHONPATH="{HERE}${{PYTHONPATH:+:$PYTHONPATH}}" '
                          f'exec "{sys.executable}" -m integrations.{package} "$@"\n')
        script.chmod(0o755)
        names.append(script.name)
    return names


class Workers:
    """The pool, its deployments and the workers' shared secret key (one per bench run)."""

    def __init__(self, base: Path, api: str, pg: PostgresServer, limit: int) -> None:
        self.base, self.api, self.pg, self.limit = base, api, pg, limit
        self.env = {**os.environ, "PREFECT_API_URL": api, "PWD": str(HERE), "PREFECT_HOME": str(base / "prefect-cli"),
                    "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "1"}
        self.env.pop("PINPOINT_STATE_URL", None)
        self.prefect = [sys.executable, "-m", "prefect"]
        subprocess.run([*self.prefect, "work-pool", "create", "pinpoint-agent", "--type", "process", "--overwrite"],
                       cwd=HERE, env=self.env, check=True, capture_output=True)
        subprocess.run([*self.prefect, "--no-prompt", "deploy", "--all"], cwd=HERE, env=self.env, check=True,
                       capture_output=True)
        self.key_root = base / "key"
        self.key = local_key(self.key_root)  # every worker root gets this key: one secret store for all
        self.runs = 0

    def export(self, n: int, entries: list[dict[str, Any]], integrations_dir: Path, secrets: dict[str, str], *,
               fan_out: bool = True) -> tuple[float, dict[str, Any], str]:
        """The export of ``entries`` on ``n`` new workers (new roots, new database), fanned out or in one run:
        seconds, result and how many exports each worker ran (e.g. ``5+3``)."""
        self.runs += 1
        url = self.pg.new_database()
        store = SecretStore(self.key_root, SecretBox(self.key), state_url=url)
        for name, value in secrets.items():
            store.put(name, value)
        roots = [self.base / f"run-{self.runs}-worker-{i}" for i in range(n)]
        for root in roots:
            root.mkdir(parents=True)
            shutil.copy2(self.key_root / LOCAL_KEY_FILE, root / LOCAL_KEY_FILE)
        workers = [subprocess.Popen(
            [*self.prefect, "worker", "start", "--pool", "pinpoint-agent", "--limit", str(self.limit)],
            cwd=HERE, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, env={**self.env, "PINPOINT_ROOT": str(root), "PINPOINT_STATE_URL": url})
            for root in roots]
        try:
            with httpx.Client(base_url=self.api, timeout=30) as http:
                deployment = _request(http, "GET", "/deployments/name/export/pool").json()["id"]
                started = time.monotonic()
                run = _request(http, "POST", f"/deployments/{deployment}/create_flow_run", json={"parameters": {
                    "integrations": entries, "integrations_dir": str(integrations_dir),
                    "agent_config": {"skip_git": True, **({"fan_out_deployment": "export/fan-out"} if fan_out else {})},
                }}).json()
                while True:
                    state = _request(http, "GET", f"/flow_runs/{run['id']}").json()["state"]["type"]
                    if state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
                        break
                    time.sleep(0.5)
                seconds = time.monotonic() - started
                if state != "COMPLETED":
                    raise SystemExit(f"the fanned-out export on {n} worker(s) ended {state}")
                result = _request(http, "POST", "/artifacts/filter", json={"artifacts": {
                    "flow_run_id": {"any_": [run["id"]]}, "type": {"any_": ["result"]}}}).json()[0]["data"]
        finally:
            for w in workers:
                os.killpg(w.pid, signal.SIGTERM)
            for w in workers:
                w.wait(60)
        errors = [i["error"] for i in result["integrations"] if i["error"]]
        if errors:
            raise SystemExit(f"the fanned-out export on {n} worker(s) failed: {errors[0]}")
        split = "+".join(str(len(list((r / "exports").glob("*"))) if (r / "exports").exists() else 0) for r in roots)
        return seconds, result, split


def prefect_on(pg: PostgresServer, home: Path) -> str:
    """A Prefect server of its own on a PostgreSQL database of ``pg`` (as the README asks for many machines):
    measured here, on its SQLite database the 8 children's runs were created up to 35 s apart (the server busy
    with the 8 starting flow-run processes), on PostgreSQL within a second."""
    os.environ[PREFECT_DB] = pg.new_database().replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        return attach(home)
    finally:
        os.environ.pop(PREFECT_DB, None)


def fan_out(base: Path, per_integration: int, latency: float, gh_prs: int, limit: int) -> None:
    """Both kinds of 8-integration export on one worker, then on two; prints all four and the ratios."""
    pg = PostgresServer.start(durable=True)
    home = base / "prefect-workers"
    try:
        workers = Workers(base, prefect_on(pg, home), pg, limit)
        plugins = base / "integrations"
        repos = 10
        cpu = [{"id": f"m{i}", "name": name, "type": 1,
                "config": {"repos": repos, "prs_per_repo": per_integration // repos, "users": 0}}
               for i, name in enumerate(plugin_names(plugins, "mock"))]
        with FakeGitHub(latency=latency, limit=10**9) as fake:
            for repo in ("api", "web", "docs"):
                for n in range(gh_prs):
                    fake.data.add_pr(repo, created=T0 + timedelta(hours=n))
            prs = sum(len(r.prs) for r in fake.data.repos.values())
            upstream = [{"id": f"g{i}", "name": name, "type": 1, "config": {
                "url": fake.url, "organization": "acme", "api_key": f"secret-store:{TOKEN_SECRET}"}}
                for i, name in enumerate(plugin_names(plugins, "github"))]
            rows = []
            requests = 0
            for kind, entries, expected in (("cpu", cpu, per_integration), ("upstream", upstream, prs)):
                times: dict[int, float] = {}
                splits: dict[int, str] = {}
                for n in (1, 2, 0):  # 0: not fanned out, the 8 integrations side by side in one run on one worker
                    fake.reset_counts()
                    times[n], result, splits[n] = workers.export(max(n, 1), entries, plugins, {TOKEN_SECRET: TOKEN},
                                                      fan_out=n > 0)
                    written = [i["objects"].get("sourcecode.PullRequest", 0) for i in result["integrations"]]
                    if written != [expected] * INTEGRATIONS:
                        raise SystemExit(f"{kind} on {n} worker(s): pull requests per integration {written}")
                    if kind == "upstream" and n == 1:
                        requests = len(fake.requests)
                rows.append((kind, times, splits, expected))
    finally:
        stop_local(home)
        pg.stop()
    print(f"{'kind':>9} {'export':>11} {'workers':>7} {'exports/worker':>14} {'integrations':>12} {'PRs each':>9} "
          f"{'wall s':>7} {'ratio 2/1':>9}")
    for kind, times, splits, expected in rows:
        for n in (1, 2, 0):
            ratio = f"{times[2] / times[1]:.2f}" if n == 2 else ""
            how = "one run" if n == 0 else "fanned out"
            print(f"{kind:>9} {how:>11} {max(n, 1):>7} {splits[n]:>14} {INTEGRATIONS:>12} {expected:>9,} "
                  f"{times[n]:>7.2f} {ratio:>9}")
    print(f"upstream: the fake GitHub answers after {latency * 1000:.0f} ms; {requests // INTEGRATIONS} requests "
          f"per integration, one at a time (concurrency 1): a floor of {requests // INTEGRATIONS * latency:.1f} s "
          f"of waiting per integration, {requests * latency:.1f} s for all 8 in a row")
    print(f"workers started with --limit {limit}; ratio: two workers / one, both on this machine's {os.cpu_count()} "
          "cores; wall from create_flow_run to the "
          "parent run Completed, the children's process starts included. 'one run': the same export not fanned out "
          "(its 8 integrations side by side in one flow run, as on one machine), the floor beside")


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
    ap.add_argument("--per-integration", type=int, default=100_000,
                    help="pull requests per mock integration (workers part, cpu)")
    ap.add_argument("--latency", type=float, default=0.05,
                    help="seconds the fake GitHub waits before each answer (workers part, upstream)")
    ap.add_argument("--worker-limit", type=int, default=INTEGRATIONS + 1,
                    help="flow runs a worker takes at once (prefect worker start --limit; workers part)")
    ap.add_argument("--gh-prs", type=int, default=20,
                    help="pull requests added to each of the fake's three repos (workers part, upstream)")
    args = ap.parse_args()
    if find_binaries() is None:
        raise SystemExit("PostgreSQL server binaries not installed (apt-get install postgresql)")
    if args.part == "workers":
        with tempfile.TemporaryDirectory(prefix="scale-bench-") as tmp:
            fan_out(Path(tmp), args.per_integration, args.latency, args.gh_prs, args.worker_limit)
        return
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
                fan_out(base, args.per_integration, args.latency, args.gh_prs, args.worker_limit)
        finally:
            pg.stop()
            stop_local(home)


if __name__ == "__main__":
    main()
