"""Running the real CLI and reading its output."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import orjson
import psutil

AGENT = [sys.executable, "-m", "pinpoint_agent.cli"]


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AGENT, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)


def read_export(root: Path, export_id: str | None = None) -> dict[str, list[dict]]:
    """Objects per model of one export (or of every export under the root)."""
    out: dict[str, list[dict]] = {}
    base = root / "exports" / export_id if export_id else root / "exports"
    for f in sorted(base.rglob("*.json.gz")):
        model = f.parent.name
        out.setdefault(model, []).extend(orjson.loads(line) for line in gzip.decompress(f.read_bytes()).splitlines())
    return out


def plugins_of(pid: int) -> list[psutil.Process]:
    """The mock plugin processes the agent process ``pid`` started (its children)."""
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []
    found = []
    for p in children:
        try:
            if "integrations.mock" in " ".join(p.cmdline()):
                found.append(p)
        except psutil.Error:
            continue
    return found
