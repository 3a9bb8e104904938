"""Running the real CLI and reading its output."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import orjson
import psutil

from integrations.mock.integration import _pull_request, _repo
from pinpoint_agent.state import StateStore

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


def assert_nothing_lost(roots: list[Path], state: StateStore, repos: int, per_repo: int,
                        customer_id: str = "c9") -> list[dict]:
    """The crash tests' union check: the complete files under ``roots`` (a killed run's and its rerun's) hold
    every pull request of the mock's ``repos`` x ``per_repo``, the rerun's root (the last) holds no temporary
    file (a killed run's root is cleaned by its own next export), every repo's token is the last page's and
    nothing is left staged in ``state``. Returns the union."""
    union = [pr for root in roots for pr in read_export(root).get("sourcecode.PullRequest", [])]
    expected = {_pull_request(customer_id, _repo(customer_id, r), n)["id"] for r in range(repos)
                for n in range(per_repo)}
    assert {pr["id"] for pr in union} == expected
    assert not list((roots[-1] / "exports").rglob("*.temp.gz"))
    tokens = state.tokens("mock@SOURCECODE/")
    pr_tokens = [k for k in tokens if k.endswith("/sourcecode.PullRequest")]
    assert len(pr_tokens) == repos and all(tokens[k] == "run:1" for k in pr_tokens)
    with state._tx() as db:
        for table in ("staged_tokens", "staged_hashes", "staged_checkpoints"):
            assert db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0, table
    return union
