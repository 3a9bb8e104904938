"""Rename detection (``renames=True``, the agent's ``git_renames``): file stats equal git's own ``-M``
output on every commit, and the rename fields are filled."""

from __future__ import annotations

import subprocess
from pathlib import Path

from pinpoint_agent.git import COMMIT, process_repo

from .conftest import Collector, GitRepo, fetch_for, lines


def rename_oracle(path: Path) -> dict[str, dict[str, tuple[int, int, str]]]:
    """sha → {path: (additions, deletions, renamed from)} from ``git log -M --numstat -z`` (merges: first
    parent; binary files count 0)."""
    out = subprocess.run(
        ["git", "log", "--branches", "-M", "--numstat", "-z", "--diff-merges=first-parent", "--format=%x01%H"],
        cwd=path,
        check=True,
        capture_output=True,
    ).stdout
    result: dict[str, dict[str, tuple[int, int, str]]] = {}
    current: dict[str, tuple[int, int, str]] = {}
    tokens = iter(out.split(b"\0"))
    for tok in tokens:
        tok = tok.lstrip(b"\n")
        if tok.startswith(b"\x01"):
            current = result.setdefault(tok[1:].decode(), {})
        elif tok:
            added, deleted, name = tok.split(b"\t", 2)
            old = b""
            if not name:
                old, name = next(tokens), next(tokens)
            a = 0 if added == b"-" else int(added)
            d = 0 if deleted == b"-" else int(deleted)
            current[name.decode()] = (a, d, old.decode())
    return result


def build(path: Path) -> GitRepo:
    r = GitRepo(path)
    r.commit("root", {"src/a.py": lines(40, "a"), "b.txt": lines(30, "b"), "doc/c.md": lines(20, "c")})
    (r.path / "src/core").mkdir(parents=True)
    (r.path / "docs").mkdir()
    r.git("mv", "src/a.py", "src/core/a_renamed.py")
    r.commit("pure rename")
    r.git("mv", "b.txt", "docs/b.rst")
    r.commit("rename with edits", {"docs/b.rst": lines(28, "b") + "edited\n"})
    r.git("checkout", "-q", "-b", "topic")
    r.git("mv", "doc/c.md", "doc/ç space.md")
    r.commit("rename on a topic")
    r.git("checkout", "-q", "main")
    r.commit("main meanwhile", {"other.txt": lines(3, "o")})
    r.git("merge", "-q", "--no-ff", "-m", "merge topic", "topic")
    r.git("rm", "-q", "other.txt")
    r.commit("a real delete and add", {"fresh.txt": lines(2, "z")})
    return r


def test_renames_equal_git_and_fill_the_rename_fields(tmp_path: Path) -> None:
    """With renames on, every commit's files equal git log -M --numstat (paths, counts, sources), renamed
    files say so in status/renamed/renamed_from/renamed_to, and other files carry empty rename fields."""
    repo = build(tmp_path / "r")
    oracle = rename_oracle(repo.path)
    out = Collector()
    process_repo(fetch_for(repo.path), repo.path, customer_id="c", checkpoint=None, emit=out, renames=True)
    commits = {c["sha"]: c for c in out.get(COMMIT)}
    assert set(commits) == set(oracle)
    renamed = 0
    for sha, files in oracle.items():
        got = {f["path"]: (f["additions"], f["deletions"], f["renamed_from"]) for f in commits[sha]["files"]}
        assert got == files, commits[sha]["message"]
        for f in commits[sha]["files"]:
            assert f["renamed"] == bool(f["renamed_from"])
            assert f["renamed_to"] == (f["path"] if f["renamed"] else "")
            assert (f["status"] == "renamed") == f["renamed"]
            renamed += f["renamed"]
    assert renamed == 4  # three renames, and the merge shows the topic's rename against its first parent
    by_msg = {c["message"]: c for c in commits.values()}
    assert by_msg["pure rename"]["files"][0]["renamed_from"] == "src/a.py"
    assert by_msg["pure rename"]["additions"] == by_msg["pure rename"]["deletions"] == 0
    assert {f["status"] for f in by_msg["a real delete and add"]["files"]} == {"added", "removed"}


def test_renames_off_by_default_and_key_differs(tmp_path: Path) -> None:
    """By default a rename is a removed and an added file with no rename fields beyond an empty
    renamed_from; switching renames on makes the stored checkpoint untrusted (a historical run again)."""
    repo = build(tmp_path / "r")
    off = Collector()
    result = process_repo(fetch_for(repo.path), repo.path, customer_id="c", checkpoint=None, emit=off)
    pure = next(c for c in off.get(COMMIT) if c["message"] == "pure rename")
    assert sorted(f["status"] for f in pure["files"]) == ["added", "removed"]
    plain = {"additions", "binary", "deletions", "path", "renamed_from", "status"}
    assert all(set(f) == plain for f in pure["files"])
    on = Collector()
    again = process_repo(
        fetch_for(repo.path), repo.path, customer_id="c", checkpoint=result.checkpoint, emit=on, renames=True
    )
    assert not again.incremental and len(on.get(COMMIT)) == len(off.get(COMMIT))
