"""Export benchmark: N mock objects through the whole path (CLI → Prefect flow → plugin → callbacks →
dedup → gzip files) against an in-process floor (the same objects generated, JSON-encoded and gzipped
to one file in one process), measured in the same run. Peak RSS is sampled for the agent and the plugin.

    .venv/bin/python bench/export_bench.py [--objects 1000000] [--also 250000]

The agent runs as a command would after a first one: in a resident runner's worker (``pinpoint_agent/
resident.py``); with ``PINPOINT_AGENT_RESIDENT=0`` every export runs in its own process (Prefect imported
each time).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import orjson
import psutil

from integrations.mock.integration import _pull_request, _repo
from pinpoint_agent import resident
from pinpoint_agent.output import COMPRESS_LEVEL
from pinpoint_agent.prefect_server import ensure_api, stop_local

REPOS = 100


def floor(n: int, out: Path) -> float:
    """Same objects, encoded and gzipped into one file, in this process."""
    per_repo = n // REPOS
    t = time.perf_counter()
    z = zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, 31)
    with open(out, "wb") as f:
        for r in range(REPOS):
            repo = _repo("bench", r)
            batch = [orjson.dumps(_pull_request("bench", repo, i)) for i in range(per_repo)]
            f.write(z.compress(b"\n".join(batch) + b"\n"))
        f.write(z.flush())
        f.flush()
        os.fsync(f.fileno())
    return time.perf_counter() - t


def whole_path(n: int, root: Path) -> tuple[float, float, int, int, int]:
    """Returns (wall seconds, export seconds, agent peak RSS, plugin peak RSS, objects written)."""
    ints = orjson.dumps([{"id": "b", "name": "mock", "type": 1,
                          "config": {"repos": REPOS, "prs_per_repo": n // REPOS, "users": 0}}]).decode()
    out = root.with_name(root.name + "-result.json")
    cmd = [sys.executable, "-m", "pinpoint_agent.cli", "export", "--integrations-json", ints, "--pinpoint-root",
           str(root), "--output-file", str(out), "--agent-config-json", '{"customer_id": "bench"}']
    marker = f"{os.getpid()}-{root.name}"
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "PINPOINT_BENCH_RUN": marker})
    agent_peak = plugin_peak = 0
    # The agent is the plugin's parent: this process's child, or a resident runner's worker.
    agent, plugin = psutil.Process(proc.pid), None
    while proc.poll() is None:
        try:
            plugin = plugin or _plugin_of(marker)
            if plugin is not None and agent.pid == proc.pid:
                agent = plugin.parent() or agent
            agent_peak = max(agent_peak, agent.memory_info().rss)
            if plugin is not None:
                plugin_peak = max(plugin_peak, plugin.memory_info().rss)
        except psutil.Error:
            pass
        time.sleep(0.05)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"export failed with exit code {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
    result = orjson.loads(out.read_bytes())
    integ = result["integrations"][0]
    if integ["error"]:
        raise SystemExit(f"export failed: {integ['error']}")
    return wall, integ["duration"] / 1e9, agent_peak, plugin_peak, integ["objects"]["sourcecode.PullRequest"]


def _plugin_of(marker: str) -> psutil.Process | None:
    for p in psutil.process_iter(["cmdline"]):
        try:
            if "integrations.mock" in " ".join(p.info["cmdline"] or ()) and \
                    p.environ().get("PINPOINT_BENCH_RUN") == marker:
                return p
        except psutil.Error:
            continue
    return None


def warm_runner(base: Path) -> bool:
    """One small export, which leaves a resident runner for the ones measured (as any first command does);
    returns whether one is serving (never with PINPOINT_AGENT_RESIDENT=0: every export in its own process)."""
    if os.environ.get(resident.SWITCH) == "0":
        return False
    ints = '[{"id":"w","name":"mock","type":1,"config":{"repos":1,"prs_per_repo":1,"users":1}}]'
    subprocess.run([sys.executable, "-m", "pinpoint_agent.cli", "export", "--integrations-json", ints,
                    "--pinpoint-root", str(base / "root-warm")], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    path = resident.socket_path(dict(os.environ))
    deadline = time.monotonic() + 60
    while path is not None and not path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    return path is not None and path.exists()


def startup(base: Path, runs: int = 3) -> None:
    """How long a one-shot export of almost nothing takes with the root's Prefect server already running,
    beside `python -c "import prefect"` (the part no Prefect command can avoid)."""
    def timed(cmd: list[str]) -> float:
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - t

    ints = '[{"id":"s","name":"mock","type":1,"config":{"repos":1,"prs_per_repo":1,"users":1}}]'
    export = [sys.executable, "-m", "pinpoint_agent.cli", "export", "--integrations-json", ints,
              "--pinpoint-root", str(base / "root-startup")]
    timed(export)  # first run creates the root
    switch = os.environ.get(resident.SWITCH)
    in_runner = "" if switch == "0" else \
        f"{sorted(timed(export) for _ in range(runs))[runs // 2]:.2f} s in the resident runner, "
    os.environ[resident.SWITCH] = "0"
    try:
        own = sorted(timed(export) for _ in range(runs))[runs // 2]
    finally:
        if switch is None:
            del os.environ[resident.SWITCH]
    floor_s = sorted(timed([sys.executable, "-c", "import prefect.flows"]) for _ in range(runs))[runs // 2]
    print(f"one-shot export of 3 objects (server running): {in_runner}{own:.2f} s in its own process "
          f"({resident.SWITCH}=0); `import prefect.flows` alone: {floor_s:.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", type=int, default=1_000_000)
    ap.add_argument("--also", type=int, default=250_000, help="a smaller run to show RSS is flat (0: skip)")
    ap.add_argument("--floor-runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="export-bench-") as tmp:
        base = Path(tmp)
        home = base / "prefect"
        os.environ.pop("PREFECT_API_URL", None)
        ensure_api(home)  # the server's start is not part of the measurement
        runner = warm_runner(base)  # nor the resident runner's
        print(f"agent: {'a resident runner worker' if runner else 'its own process (no resident runner)'}")
        try:
            print(f"{'objects':>9} {'floor s':>8} {'(fastest)':>9} {'export s':>9} {'wall s':>7} "
                  f"{'obj/s (export)':>15} {'ratio':>6} {'ratio wall':>10} {'agent RSS':>10} {'plugin RSS':>10}")
            for n in [x for x in (args.also, args.objects) if x]:
                # This VM's speed drifts by up to 40 % within minutes: the floor runs before and after the
                # export (its median is the reference, its fastest run is printed beside it).
                out = base / f"floor-{n}.json.gz"
                floors = [floor(n, out) for _ in range((args.floor_runs + 1) // 2)]
                wall, export_s, agent_rss, plugin_rss, written = whole_path(n, base / f"root-{n}")
                floors = sorted(floors + [floor(n, out) for _ in range(args.floor_runs // 2)])
                f = floors[len(floors) // 2]
                assert written == n, (written, n)
                print(f"{n:>9,} {f:>8.2f} {floors[0]:>9.2f} {export_s:>9.2f} {wall:>7.2f} {n / export_s:>15,.0f} "
                      f"{export_s / f:>6.2f} {wall / f:>10.2f} {agent_rss / 2**20:>8.0f}MB "
                      f"{plugin_rss / 2**20:>8.0f}MB")
            print("goals: ratio <= 1.5 x floor (median of the floor runs), >= 50,000 objects/s, "
                  "peak RSS < 300 MB and flat as N grows")
            startup(base)
        finally:
            stop_local(home)


if __name__ == "__main__":
    main()
