"""Commits: per-commit and per-file stats against git's own ``log --numstat``, and the emitted fields."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pinpoint_agent.git import COMMIT, COMMIT_USER, process_repo
from pinpoint_agent.ids import commit_id, git_user_ref_id, hashcode

from .conftest import Collector, GitRepo, fetch_for


def numstat_oracle(path: Path) -> dict[str, dict[str, tuple[int, int, bool]]]:
    """sha → {path: (additions, deletions, binary)} from ``git log --numstat --no-renames`` (merges: first
    parent)."""
    out = subprocess.run(
        [
            "git",
            "-c",
            "core.quotepath=off",
            "log",
            "--branches",
            "--numstat",
            "--no-renames",
            "--diff-merges=first-parent",
            "--format=COMMIT %H",
        ],
        cwd=path,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, dict[str, tuple[int, int, bool]]] = {}
    current: dict[str, tuple[int, int, bool]] = {}
    for line in out.splitlines():
        if line.startswith("COMMIT "):
            current = result.setdefault(line[7:], {})
        elif line:
            added, deleted, name = line.split("\t", 2)
            binary = added == "-"
            current[name] = (0 if binary else int(added), 0 if binary else int(deleted), binary)
    return result


def run(path: Path, **kw: object) -> Collector:
    out = Collector()
    process_repo(fetch_for(path), path, customer_id="cust1", checkpoint=None, emit=out, **kw)  # type: ignore[arg-type]
    return out


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_file_stats_equal_git_numstat(rich: GitRepo, workers: int) -> None:
    """Every commit's per-file and total additions/deletions equal git log --numstat (first parent for
    merges)."""
    oracle = numstat_oracle(rich.path)
    commits = {c["sha"]: c for c in run(rich.path, workers=workers).get(COMMIT)}
    assert set(commits) == set(oracle)
    for sha, files in oracle.items():
        c = commits[sha]
        got = {f["path"]: (f["additions"], f["deletions"], f["binary"]) for f in c["files"]}
        assert got == files, c["message"]
        assert c["additions"] == sum(a for a, _, _ in files.values())
        assert c["deletions"] == sum(d for _, d, _ in files.values())
        assert c["files_changed"] == len(files)


def test_merges_use_first_parent_diff_and_root_diffs_against_empty_tree(rich: GitRepo) -> None:
    """A merge and an octopus merge carry their first-parent diff; the root commit lists every file as
    added."""
    commits = {c["message"]: c for c in run(rich.path).get(COMMIT)}
    octopus = rich.sha(":/^octopus")
    expected = subprocess.run(
        ["git", "diff", "--numstat", f"{octopus}^1", octopus],
        cwd=rich.path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert sorted(f["path"] for f in commits["octopus"]["files"]) == sorted(
        ln.split("\t")[2] for ln in expected.splitlines()
    )
    assert {f["path"] for f in commits["merge feature"]["files"]} == {
        "feat.txt",
        "dir with space/file one.txt",
    }
    root = commits["root"]
    assert {f["status"] for f in root["files"]} == {"added"}
    assert {f["path"] for f in root["files"]} == {
        "a.txt",
        "dir with space/file one.txt",
        "ünïcödé/naïve.md",
        "bin.dat",
    }


def test_statuses_binary_rename_and_empty_commit(rich: GitRepo) -> None:
    """Renames show as removed + added (no rename detection), binaries are flagged, empty commits have no
    files."""
    commits = {c["message"]: c for c in run(rich.path).get(COMMIT)}
    renamed = {f["path"]: f["status"] for f in commits["rename a to b"]["files"]}
    assert renamed == {"a.txt": "removed", "b.txt": "added"}
    (binary,) = commits["binary change"]["files"]
    assert binary == {
        "path": "bin.dat",
        "status": "modified",
        "additions": 0,
        "deletions": 0,
        "binary": True,
        "renamed_from": "",
    }
    assert commits["empty one"]["files"] == [] and commits["empty one"]["files_changed"] == 0
    assert {f["status"] for f in commits["delete main.txt"]["files"]} == {"removed"}


def test_commit_fields(rich: GitRepo) -> None:
    """Ids, urls, identifier, user refs (lower-cased email), committer date and hashcode follow the
    datamodel."""
    commits = {c["message"]: c for c in run(rich.path).get(COMMIT)}
    c = commits["edit a"]
    sha = rich.sha(":/^edit a")
    when = int(rich.git("log", "-1", "--format=%ct", sha))
    assert c["id"] == commit_id("cust1", sha, "github", "repo1")
    assert c["ref_id"] == c["sha"] == sha
    assert c["url"] == f"https://h/acme/widgets/commit/{sha}"
    assert c["identifier"] == f"acme/widgets#{sha[:7]}"
    assert c["author_ref_id"] == git_user_ref_id("cust1", "bob@example.com")
    assert c["committer_ref_id"] == git_user_ref_id("cust1", "cid@example.com")
    assert c["created_date"] == {
        "epoch": when * 1000,
        "offset": -90,
        "rfc3339": rich.git("log", "-1", "--format=%cI", sha),
    }
    assert c["message"] == "edit a"
    assert (c["customer_id"], c["ref_type"], c["repo_id"]) == ("cust1", "github", "repo1")
    for obj in commits.values():
        assert obj["hashcode"] == hashcode(obj)
        assert obj["id"] == commit_id("cust1", obj["sha"], "github", "repo1")


def test_commit_users_are_distinct_lower_cased(rich: GitRepo) -> None:
    """Each distinct (email, name) of authors and committers is emitted once, email lower-cased."""
    users = run(rich.path).get(COMMIT_USER)
    assert users == [
        {"customer_id": "cust1", "email": "ann@example.com", "name": "Ann Dev", "source_id": ""},
        {"customer_id": "cust1", "email": "bob@example.com", "name": "Bob", "source_id": ""},
        {"customer_id": "cust1", "email": "cid@example.com", "name": "Cid Committer", "source_id": ""},
    ]


def test_without_file_stats_commits_have_no_stats(rich: GitRepo) -> None:
    """file_stats=False emits the same commits, with their metadata and without stats fields."""
    with_stats = {c["sha"]: c for c in run(rich.path).get(COMMIT)}
    without = {c["sha"]: c for c in run(rich.path, file_stats=False).get(COMMIT)}
    assert set(with_stats) == set(without)
    for sha, c in without.items():
        assert not {"files", "additions", "deletions", "files_changed"} & set(c)
        assert {k: v for k, v in with_stats[sha].items() if k in c and k != "hashcode"} == {
            k: v for k, v in c.items() if k != "hashcode"
        }
        assert c["hashcode"] == hashcode(c)


def test_many_commits_split_across_workers_match_single_worker(make_repo: object) -> None:
    """With more commits than one chunk, two workers emit exactly the commits and stats one worker emits."""
    r = make_repo("big")  # type: ignore[operator]
    stream = ["blob\nmark :1\ndata 2\nx\n"]
    for i in range(700):
        body = "".join(f"line {j} {i if j % 7 == i % 7 else 0}\n" for j in range(20))
        stream.append(
            f"commit refs/heads/main\ncommitter A <a@b> {1_600_000_000 + i} +0000\ndata 3\nc{i % 10}\n"
            f"M 100644 inline f{i % 13}.txt\ndata {len(body)}\n{body}\n"
        )
    subprocess.run(["git", "fast-import", "--quiet"], cwd=r.path, input="".join(stream).encode(), check=True)
    one = sorted((c["sha"], c["additions"], c["deletions"]) for c in run(r.path, workers=1).get(COMMIT))
    two = sorted((c["sha"], c["additions"], c["deletions"]) for c in run(r.path, workers=2).get(COMMIT))
    assert len(one) == 700 and one == two
