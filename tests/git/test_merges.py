"""Merge commits' file stats through the pair cache and the synthetic trees (``_merges``): equal to git's
first-parent numstat on every merge, whatever the entries are."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from pinpoint_agent.git import COMMIT, process_repo

from .conftest import Collector, GitRepo, fetch_for, lines
from .test_commits import numstat_oracle


def _gitlink(r: GitRepo, path: str, sha: str) -> None:
    r.git("update-index", "--add", "--cacheinfo", f"160000,{sha},{path}")


def build(path: Path) -> GitRepo:
    """Merges whose first-parent diffs hold pairs no other commit diffed (a topic that changed a file
    twice, main changed it too), the same topic merged into two branches, added and deleted files, a mode
    change, a symlink retargeted, a file turned into a symlink, a submodule (gitlink) moved, a binary
    file, a file the topic changed once (a pair its own commit already diffed), and a merge whose first-parent
    diff is empty."""
    r = GitRepo(path)
    base = r.commit(
        "root",
        {"a.txt": lines(50, "a"), "b.txt": lines(20, "b"), "run.sh": "echo hi\n", "bin.dat": bytes(300),
         "gone.txt": lines(5, "g"), "to-link.txt": lines(3, "t")},
    )
    os.symlink("a.txt", r.path / "link")
    _gitlink(r, "sub", base)
    r.commit("links")
    r.git("branch", "stable")
    r.git("checkout", "-q", "-b", "topic")
    r.commit("topic 1", {"a.txt": lines(10, "a") + "x\n" + lines(50, "a")[60:], "once.txt": lines(4, "o")})
    r.commit("topic 2", {"a.txt": lines(12, "a") + "y\n", "bin.dat": bytes(range(200))})
    (r.path / "run.sh").chmod(0o755)
    (r.path / "link").unlink()
    os.symlink("b.txt", r.path / "link")
    (r.path / "to-link.txt").unlink()
    os.symlink("a.txt", r.path / "to-link.txt")
    r.git("rm", "-q", "gone.txt")
    _gitlink(r, "sub", r.sha("HEAD~1"))
    r.commit("topic 3", {"new.txt": lines(7, "n")})
    r.git("checkout", "-q", "main")
    r.commit("main edits b", {"b.txt": lines(25, "b")})
    r.git("merge", "-q", "--no-ff", "-m", "merge topic into main", "topic")
    r.git("checkout", "-q", "stable")
    r.git("merge", "-q", "--no-ff", "-m", "merge topic into stable", "topic")
    r.git("checkout", "-q", "-b", "side", "main")
    r.commit("side work", {"side.txt": lines(2, "s")})
    r.git("checkout", "-q", "main")
    r.git("merge", "-q", "-s", "ours", "-m", "merge side keeping ours (an empty diff)", "side")
    return r


def _check(r: GitRepo) -> int:
    """Compares every commit with git and returns how many merges were compared."""
    oracle = numstat_oracle(r.path)
    out = Collector()
    process_repo(fetch_for(r.path), r.path, customer_id="c", checkpoint=None, emit=out)
    commits = {c["sha"]: c for c in out.get(COMMIT)}
    assert set(commits) == set(oracle)
    for sha, files in oracle.items():
        got = {f["path"]: (f["additions"], f["deletions"], f["binary"]) for f in commits[sha]["files"]}
        assert got == files, commits[sha]["message"]
        assert commits[sha]["additions"] == sum(a for a, _, _ in files.values())
    return sum(1 for c in commits.values() if c["message"].startswith("merge "))


def test_merge_stats_equal_git_for_every_kind_of_entry(tmp_path: Path) -> None:
    """Both merges (through the cache and synthetic trees) equal git log --numstat --diff-merges=first-parent,
    entry by entry, including modes, symlinks, a typechange, a gitlink, binary, added and deleted files."""
    r = build(tmp_path / "r")
    assert _check(r) == 3


def test_attributes_turn_the_pair_cache_off_and_stay_exact(tmp_path: Path) -> None:
    """With a .gitattributes that makes *.txt binary, file stats still equal git's (the path-blind synthetic
    trees are not used: a pair's numstat then depends on its path)."""
    r = build(tmp_path / "r")
    r.commit("attributes", {".gitattributes": "*.txt binary\n"})
    assert _check(r) == 3
    out = Collector()
    process_repo(fetch_for(r.path), r.path, customer_id="c", checkpoint=None, emit=out)
    merge = next(c for c in out.get(COMMIT) if c["message"] == "merge topic into main")
    assert {f["path"]: f["binary"] for f in merge["files"]}["a.txt"] is True


def test_emit_failure_in_the_merge_phase_leaves_no_process(tmp_path: Path, no_leaked_processes: None) -> None:
    """An emit that fails on the first batch of merges propagates unchanged, and the raw pass and pair
    diffs are reaped (no git child left, no temporary object directory left)."""
    r = build(tmp_path / "r")
    before = set(Path(tempfile.gettempdir()).glob("pinpoint-pairs-*"))

    def emit(model: str, objects: list[dict[str, object]]) -> None:
        if any(str(o.get("message", "")).startswith("merge ") for o in objects):
            raise RuntimeError("sink full")

    with pytest.raises(RuntimeError, match="sink full"):
        process_repo(fetch_for(r.path), r.path, customer_id="c", checkpoint=None, emit=emit)
    assert set(Path(tempfile.gettempdir()).glob("pinpoint-pairs-*")) == before
