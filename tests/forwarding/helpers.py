"""Running the real CLI export and reading what the fake backend received."""

from __future__ import annotations

import gzip
import io
import os
import sqlite3
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from pinpoint_agent.testing.fake_backend import FakeBackend

MOCK = [{"id": "m1", "name": "mock", "type": 1, "config": {"repos": 2, "prs_per_repo": 50}}]
AGENT = [sys.executable, "-m", "pinpoint_agent.cli"]


def run_cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AGENT, *args], capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ), stdin=subprocess.DEVNULL)


@dataclass
class Export:
    proc: subprocess.CompletedProcess[str]
    result: dict[str, Any]

    @property
    def export_id(self) -> str:
        return str(self.result["export_id"])

    @property
    def upload(self) -> dict[str, Any]:
        return dict(self.result["upload"])


def export(root: Path, out: Path, agent: dict[str, Any] | None = None) -> Export:
    """One `pinpoint-agent export` of the mock integration; fails the test on a non-zero exit."""
    args = ["export", "--integrations-json", orjson.dumps(MOCK).decode(), "--pinpoint-root", str(root),
            "--output-file", str(out), "--log-format", "json"]
    if agent is not None:
        args += ["--agent-config-json", orjson.dumps(agent).decode()]
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    return Export(proc, orjson.loads(out.read_bytes()))


def uploaded(backend: FakeBackend, name: str) -> dict[str, list[dict[str, Any]]]:
    """Objects per model in the zip the backend assembled from upload ``name``'s parts."""
    out: dict[str, list[dict[str, Any]]] = {}
    with zipfile.ZipFile(io.BytesIO(backend.assembled(name))) as archive:
        for entry in archive.namelist():
            if entry.endswith(".json.gz"):
                lines = gzip.decompress(archive.read(entry)).splitlines()
                out.setdefault(entry.split("/")[0], []).extend(orjson.loads(line) for line in lines)
    return out


def zip_names(backend: FakeBackend, name: str) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(backend.assembled(name))) as archive:
        return archive.namelist()


def tokens(root: Path) -> dict[str, str]:
    """The current (committed) last-processed tokens in the root's state store."""
    db = sqlite3.connect(root / "state" / "state.db")
    try:
        return {str(k): str(t) for k, t in db.execute("SELECT key, token FROM tokens")}
    finally:
        db.close()


def pr_refs(objects: dict[str, list[dict[str, Any]]]) -> list[str]:
    return sorted(pr["ref_id"] for pr in objects.get("sourcecode.PullRequest", []))


def every_file_bytes(*roots: Path) -> list[tuple[Path, bytes]]:
    return [(f, f.read_bytes()) for r in roots for f in r.rglob("*") if f.is_file()]
