"""Fixtures for the git engine tests: real repositories built with the git CLI in temporary folders."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pinpoint_agent.git import GitFetch, PullRequestHead


class GitRepo:
    """A working repository driven through the git CLI with deterministic authors and dates."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.clock = 1_600_000_000
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str, author: str = "Ann Dev <Ann@Example.com>") -> str:
        name, email = author[:-1].split(" <")
        self.clock += 60
        env = {
            **os.environ,
            "GIT_AUTHOR_NAME": name,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": "Cid Committer",
            "GIT_COMMITTER_EMAIL": "cid@example.com",
            "GIT_AUTHOR_DATE": f"{self.clock} +0200",
            "GIT_COMMITTER_DATE": f"{self.clock} -0130",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
        }
        out = subprocess.run(["git", *args], cwd=self.path, env=env, check=True, capture_output=True)
        return out.stdout.decode().strip()

    def write(self, rel: str, content: str | bytes) -> None:
        target = self.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content if isinstance(content, bytes) else content.encode())

    def commit(self, message: str, files: dict[str, str | bytes] | None = None, **kw: Any) -> str:
        for rel, content in (files or {}).items():
            self.write(rel, content)
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message, **kw)
        return self.git("rev-parse", "HEAD")

    def sha(self, rev: str) -> str:
        return self.git("rev-parse", rev)


def lines(n: int, tag: str) -> str:
    return "".join(f"{tag} line {i}\n" for i in range(n))


def build_rich(path: Path) -> GitRepo:
    """Root commit, renames, binary files, unicode and spaced names, empty commits, merges, an octopus merge,
    an unmerged branch, a fast-forward branch, and a branch that merged default into itself."""
    r = GitRepo(path)
    r.commit(
        "root",
        {
            "a.txt": lines(10, "a"),
            "dir with space/file one.txt": lines(3, "s"),
            "ünïcödé/naïve.md": lines(4, "u"),
            "bin.dat": bytes(range(256)) * 4,
        },
    )
    r.git("branch", "ff")  # never moves: a branch fully on default's first-parent chain
    r.commit("edit a", {"a.txt": lines(8, "a") + "new\n"}, author="Bob <BOB@example.com>")
    r.git("mv", "a.txt", "b.txt")
    r.commit("rename a to b", {"b.txt": lines(8, "a") + "new\nmore\n"})
    r.commit("empty one")
    r.commit("binary change", {"bin.dat": bytes(range(255, -1, -1)) * 3})
    r.git("checkout", "-q", "-b", "feature")
    r.commit("feature 1", {"feat.txt": lines(5, "f")})
    r.commit("feature 2", {"feat.txt": lines(7, "f"), "dir with space/file one.txt": lines(5, "s")})
    r.git("checkout", "-q", "main")
    r.commit("main meanwhile", {"main.txt": lines(2, "m")})
    r.git("merge", "-q", "--no-ff", "-m", "merge feature", "feature")
    for name in ("o1", "o2", "o3"):
        r.git("checkout", "-q", "-b", name, "main")
        r.commit(f"octo {name}", {f"{name}.txt": lines(3, name)})
    r.git("checkout", "-q", "main")
    r.git("merge", "-q", "--no-ff", "-m", "octopus", "o1", "o2", "o3")
    r.git("checkout", "-q", "-b", "wip")
    r.commit("wip 1", {"wip.txt": lines(2, "w")})
    r.git("checkout", "-q", "main")
    r.commit("main after octopus", {"main.txt": lines(4, "m"), "ünïcödé/naïve.md": ""})
    r.git("checkout", "-q", "wip")
    r.git("merge", "-q", "--no-ff", "-m", "merge main into wip", "main")
    r.commit("wip 2", {"wip.txt": lines(3, "w")})
    r.git("checkout", "-q", "main")
    r.git("rm", "-q", "main.txt")
    r.commit("delete main.txt")
    return r


@pytest.fixture(scope="session")
def rich_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_rich(tmp_path_factory.mktemp("rich") / "repo").path


@pytest.fixture
def rich(tmp_path: Path, rich_template: Path) -> GitRepo:
    """A private copy of the rich repository (tests may add commits to it)."""
    subprocess.run(["cp", "-a", str(rich_template), str(tmp_path / "rich")], check=True)
    r = GitRepo.__new__(GitRepo)
    r.path, r.clock = tmp_path / "rich", 1_700_000_000
    return r


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[[str], GitRepo]:
    return lambda name: GitRepo(tmp_path / name)


def fetch_for(path: Path | str, prs: tuple[PullRequestHead, ...] = (), url: str | None = None) -> GitFetch:
    return GitFetch(
        repo_id="repo1",
        unique_name="acme/widgets",
        ref_type="github",
        url=url if url is not None else str(path),
        commit_url_template="https://h/acme/widgets/commit/@@@sha@@@",
        branch_url_template="https://h/acme/widgets/tree/@@@branch@@@",
        prs=prs,
    )


class Collector:
    """An ``emit`` that keeps everything, by model."""

    def __init__(self) -> None:
        self.by_model: dict[str, list[dict[str, Any]]] = {}
        self.calls = 0

    def __call__(self, model: str, objects: list[dict[str, Any]]) -> None:
        assert len(objects) <= 1000
        self.calls += 1
        self.by_model.setdefault(model, []).extend(objects)

    def get(self, model: str) -> list[dict[str, Any]]:
        return self.by_model.get(model, [])
