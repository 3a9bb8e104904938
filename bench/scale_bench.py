"""Scale benchmark, state part: one export of N mock objects (default 1M) through the whole path (CLI → flow →
plugin → callbacks → dedup → files → state) with the state in SQLite (the embedded default) and in PostgreSQL
(a server this bench starts, durable: fsync on, default settings), in the same run; and, with ``--baseline
REF``, the SQLite export of that git ref (e.g. ``main``) in the same run, so the embedded default is compared
with the code before the state store interface.

    .venv/bin/python bench/scale_bench.py [--objects 1000000] [--baseline main] [--runs 1]

Every export runs in its own process (PINPOINT_AGENT_RESIDENT=0: the baseline and this code never share a
resident runner). Printed: export seconds (the integration's duration in the result), wall seconds, objects/s,
and each ratio against this code's SQLite export.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

from bench.export_bench import whole_path  # noqa: E402
from pinpoint_agent.prefect_server import ensure_api, stop_local  # noqa: E402
from pinpoint_agent.testing.postgres import PostgresServer, find_binaries  # noqa: E402


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
    args = ap.parse_args()
    if find_binaries() is None:
        raise SystemExit("PostgreSQL server binaries not installed (apt-get install postgresql)")
    os.environ["PINPOINT_AGENT_RESIDENT"] = "0"
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
        finally:
            pg.stop()
            stop_local(home)


if __name__ == "__main__":
    main()
