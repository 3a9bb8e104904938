"""Export benchmark: N mock objects through the whole path (CLI → Prefect flow → plugin → callbacks →
dedup → gzip files) against an in-process floor (the same objects generated, JSON-encoded and gzipped
to one file in one process), measured in the same run. Peak RSS is sampled for the agent and the plugin.

    .venv/bin/python bench/export_bench.py [--objects 1000000] [--also 250000]

Every export runs as the CLI runs it, in its own process (Prefect imported each time), against the root's
local Prefect server started before the measurement.
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
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    agent_peak = plugin_peak = 0
    agent, plugin = psutil.Process(proc.pid), None
    while proc.poll() is None:
        try:
            plugin = plugin or _plugin_of(agent)
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


def _plugin_of(agent: psutil.Process) -> psutil.Process | None:
    """The mock plugin the agent started (its child)."""
    for p in agent.children(recursive=True):
        try:
            if "integrations.mock" in " ".join(p.cmdline()):
                return p
        except psutil.Error:
            continue
    return None


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
    own = sorted(timed(export) for _ in range(runs))[runs // 2]
    floor_s = sorted(timed([sys.executable, "-c", "import prefect.flows"]) for _ in range(runs))[runs // 2]
    print(f"one-shot export of 3 objects (server running): {own:.2f} s; `import prefect.flows` alone: "
          f"{floor_s:.2f} s")


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
