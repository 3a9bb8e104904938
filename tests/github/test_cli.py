"""The real `pinpoint-agent export` CLI on the fake org: Prefect flow -> github plugin -> sessions -> files,
with git processing of real repositories the fake points its clone urls at; and no token anywhere."""

from __future__ import annotations

import gzip
import os
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest

from pinpoint_agent import ids
from tests.export.helpers import read_export, run_cli
from tests.github.fake_github import TOKEN, FakeGitHub

GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "Alice Liddell",
    "GIT_AUTHOR_EMAIL": "alice@acme.example",
    "GIT_COMMITTER_NAME": "Alice Liddell",
    "GIT_COMMITTER_EMAIL": "alice@acme.example",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


def _git(path: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=path, env=GIT_ENV, check=True, capture_output=True, text=True
    ).stdout.strip()


def git_backed(fake: FakeGitHub, base: Path) -> None:
    """A real repository per fake repo: a commit on main, and a branch per PR whose head the fake reports."""
    for name, repo in fake.data.repos.items():
        path = base / name
        path.mkdir(parents=True)
        _git(path, "init", "-q", "-b", "main")
        _git(path, "commit", "-q", "--allow-empty", "-m", f"start {name}")
        for pr in repo.prs:
            branch = pr["head"]["ref"]
            _git(path, "checkout", "-q", "-b", branch, "main")
            (path / f"{branch}.txt").write_text(f"{branch}\n")
            _git(path, "add", "-A")
            _git(path, "commit", "-q", "-m", f"work on {branch}")
            pr["head"]["sha"] = _git(path, "rev-parse", "HEAD")
            _git(path, "checkout", "-q", "main")
        fake.data.clone_urls[name] = str(path)


def every_file_text(root: Path) -> str:
    """Every file under the root as text (gzip files decompressed), to search for secrets."""
    chunks = []
    for f in root.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            if f.suffix == ".gz":
                try:
                    data = gzip.decompress(data)
                except (OSError, EOFError):
                    pass
            chunks.append(data.decode("utf-8", "replace"))
    return "\n".join(chunks)


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_api")
def test_cli_export_end_to_end_and_no_token_anywhere(
    fake: FakeGitHub, gh_config: dict[str, Any], tmp_path: Path
) -> None:
    """`pinpoint-agent export` writes users, commit users, repos, PRs with their children and git data with
    the
    agreed ids; the token is in no log, output, state, mirror or result."""
    git_backed(fake, tmp_path / "git")
    fake.rate_limit("/repos/acme/web/pulls", "secondary", wait=1)  # logged waits must not leak either
    entries = tmp_path / "integrations.json"
    entries.write_text(
        orjson.dumps([{"id": "gh1", "name": "github", "type": 1, "config": gh_config}]).decode()
    )
    root, out = tmp_path / "root", tmp_path / "result.json"
    args = [
        "export",
        "--integrations-file",
        str(entries),
        "--pinpoint-root",
        str(root),
        "--output-file",
        str(out),
        "--agent-config-json",
        '{"customer_id": "c1"}',
    ]
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    r1 = orjson.loads(out.read_bytes())
    gh = r1["integrations"][0]
    assert gh["error"] == "" and gh["incremental"] is False
    assert [(p["name"], p["error"], p["has_git_repo"], p["git_error"]) for p in gh["projects"]] == [
        (f"acme/{n}", "", True, "") for n in ("api", "web", "docs", "legacy")
    ]
    o = read_export(root, r1["export_id"])
    for model in (
        "sourcecode.User",
        "sourcecode.CommitUser",
        "sourcecode.Repo",
        "sourcecode.PullRequest",
        "sourcecode.PullRequestCommit",
        "sourcecode.PullRequestReview",
        "sourcecode.PullRequestComment",
        "sourcecode.Commit",
        "sourcecode.Branch",
        "sourcecode.PullRequestBranch",
    ):
        assert o.get(model), f"no {model} in the export"
    repo_ids = {r["name"]: r["id"] for r in o["sourcecode.Repo"]}
    commits = o["sourcecode.Commit"]
    assert all(c["id"] == ids.commit_id("c1", c["sha"], "github", c["repo_id"]) for c in commits)
    assert {c["repo_id"] for c in commits} == set(repo_ids.values())
    pr_branches = {b["name"] for b in o["sourcecode.PullRequestBranch"]}
    assert {"feature-1", "feature-5"} <= pr_branches

    everything = "\n".join(
        [
            every_file_text(root),
            every_file_text(tmp_path / "git"),
            first.stdout,
            first.stderr,
            out.read_text(),
        ]
    )
    assert (root / "logs" / "integrations" / "github@SOURCECODE@gh1").stat().st_size > 0
    assert TOKEN not in everything
