"""The real `pinpoint-agent export` CLI on the fake group: Prefect flow -> gitlab plugin -> sessions -> files,
with git processing of real repositories the fake points its clone urls at (merge request heads kept only
under refs/merge-requests/<iid>/head, as GitLab does once a source branch is deleted); a second export is
incremental; and the token is nowhere."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest

from pinpoint_agent import ids
from tests.export.helpers import read_export, run_cli
from tests.github.test_cli import every_file_text
from tests.gitlab.fake_gitlab import ADMIN_TOKEN, FakeGitLab

GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "Bob Builder",
    "GIT_AUTHOR_EMAIL": "bob@acme.example",
    "GIT_COMMITTER_NAME": "Bob Builder",
    "GIT_COMMITTER_EMAIL": "bob@acme.example",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


def _git(path: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=path, env=GIT_ENV, check=True, capture_output=True, text=True
    ).stdout.strip()


def git_backed(fake: FakeGitLab, base: Path) -> None:
    """A real repository per fake project: a commit on main; per merge request a branch with a commit whose
    sha the fake reports, also kept as refs/merge-requests/<iid>/head; merged MRs' source branches deleted."""
    for p in fake.data.projects.values():
        path = base / p.path
        path.mkdir(parents=True)
        _git(path, "init", "-q", "-b", "main")
        _git(path, "commit", "-q", "--allow-empty", "-m", f"start {p.path}")
        for mr in p.mrs:
            branch = mr["source_branch"]
            _git(path, "checkout", "-q", "-b", branch, "main")
            (path / f"{branch}.txt").write_text(f"{branch}\n")
            _git(path, "add", "-A")
            _git(path, "commit", "-q", "-m", f"work on {branch}")
            mr["sha"] = _git(path, "rev-parse", "HEAD")
            _git(path, "update-ref", f"refs/merge-requests/{mr['iid']}/head", mr["sha"])
            _git(path, "checkout", "-q", "main")
            if mr["state"] == "merged":
                _git(path, "branch", "-q", "-D", branch)
        fake.data.clone_urls[p.path] = str(path)


def _export(tmp_path: Path, config: dict[str, Any], root: Path, name: str) -> tuple[dict[str, Any], str]:
    entries = tmp_path / "integrations.json"
    entries.write_text(orjson.dumps([{"id": "gl1", "name": "gitlab", "type": 1, "config": config}]).decode())
    out = tmp_path / f"{name}.json"
    proc = run_cli(
        "export",
        "--integrations-file",
        str(entries),
        "--pinpoint-root",
        str(root),
        "--output-file",
        str(out),
        "--agent-config-json",
        '{"customer_id": "c1"}',
    )
    assert proc.returncode == 0, proc.stderr
    return orjson.loads(out.read_bytes()), proc.stdout + proc.stderr


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_api")
def test_cli_export_with_git_then_incremental_and_no_token_anywhere(fake: FakeGitLab, tmp_path: Path) -> None:
    """`pinpoint-agent export` writes users, git users from admin emails, repos, merge requests with their
    children and git data (commits, branches, MR branches from refs/merge-requests heads) with the agreed ids;
    a second export after one new commit and one new note is incremental and writes only those; the token is
    in no log, output, state, mirror or result."""
    git_backed(fake, tmp_path / "git")
    fake.rate_limit("/projects/12/merge_requests", wait=1)  # logged waits must not leak either
    config = {"url": fake.url, "access_token": ADMIN_TOKEN, "groups": ["acme"], "per_page": 2}
    root = tmp_path / "root"
    r1, logs1 = _export(tmp_path, config, root, "first")
    gl = r1["integrations"][0]
    assert gl["error"] == "" and gl["incremental"] is False
    assert [(p["name"], p["error"], p["has_git_repo"], p["git_error"]) for p in gl["projects"]] == [
        (n, "", True, "") for n in ("acme/api", "acme/web", "acme/platform/infra")
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
    plugin_log = (root / "logs" / "integrations" / "gitlab@SOURCECODE@gl1").read_text()  # last run only
    assert "rate limited, waiting" in plugin_log
    repo_ids = {r["name"]: r["id"] for r in o["sourcecode.Repo"]}
    commits = o["sourcecode.Commit"]
    assert all(c["id"] == ids.commit_id("c1", c["sha"], "gitlab", c["repo_id"]) for c in commits)
    assert {c["repo_id"] for c in commits} == set(repo_ids.values())
    api_prs = {b["name"] for b in o["sourcecode.PullRequestBranch"] if b["repo_id"] == repo_ids["acme/api"]}
    assert {"feature-1", "feature-4"} <= api_prs  # merged: their source branches exist only as MR heads
    assert "feature-1" not in {b["name"] for b in o["sourcecode.Branch"] if b["repo_id"] == repo_ids["acme/api"]}

    api_git = tmp_path / "git" / "acme/api"
    (api_git / "late.txt").write_text("late\n")
    _git(api_git, "add", "-A")
    _git(api_git, "commit", "-q", "-m", "a late commit on main")
    fake.data.add_mr_note(13, 1, 1, "ship it")
    r2, logs2 = _export(tmp_path, config, root, "second")
    assert r2["integrations"][0]["incremental"] is True and r2["integrations"][0]["error"] == ""
    o2 = read_export(root, r2["export_id"])
    assert [c["message"].strip() for c in o2.get("sourcecode.Commit", [])] == ["a late commit on main"]
    assert [p["identifier"] for p in o2["sourcecode.PullRequest"]] == ["acme/platform/infra!1"]
    assert [c["body"] for c in o2["sourcecode.PullRequestComment"]] == ["ship it"]
    assert not o2.get("sourcecode.Repo") and not o2.get("sourcecode.User")

    everything = "\n".join(
        [
            every_file_text(root),
            every_file_text(tmp_path / "git"),
            logs1,
            logs2,
            plugin_log,
            orjson.dumps([r1, r2]).decode(),
        ]
    )
    assert (root / "logs" / "integrations" / "gitlab@SOURCECODE@gl1").stat().st_size > 0
    assert ADMIN_TOKEN not in everything


def _command(tmp_path: Path, root: Path, config: dict[str, Any], *args: str) -> dict[str, Any]:
    entries = tmp_path / "one.json"
    entries.write_text(orjson.dumps([{"id": "gl1", "name": "gitlab", "type": 1, "config": config}]).decode())
    out = tmp_path / "out.json"
    proc = run_cli(
        *args,
        "--integrations-file",
        str(entries),
        "--pinpoint-root",
        str(root),
        "--output-file",
        str(out),
        "--agent-config-json",
        '{"customer_id": "c1"}',
    )
    assert proc.returncode == 0, proc.stderr
    assert ADMIN_TOKEN not in proc.stdout + proc.stderr
    result: dict[str, Any] = orjson.loads(out.read_bytes())
    return result


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_api")
def test_cli_validate_onboard_mutate_and_webhook(fake: FakeGitLab, tmp_path: Path) -> None:
    """The interactive commands through the real CLI: validate-config (with the test clone of the first
    project's repository), export-onboard-data users, mutate and webhook, each with the original agent's result
    shape; a wrong X-Gitlab-Token is an error inside the result, not a crash."""
    git_backed(fake, tmp_path / "git")
    root = tmp_path / "root"
    config = {"url": fake.url, "access_token": ADMIN_TOKEN, "groups": ["acme"], "webhook_secret": "s3cret"}
    assert _command(tmp_path, root, config, "validate-config") == {
        "errors": [],
        "success": True,
        "server_version": "16.11.2-ee",
    }
    users = _command(tmp_path, root, config, "export-onboard-data", "--object-type", "users")
    assert users["success"] and {u["email"] for u in users["data"]} >= {"alice@acme.example"}
    mutated = _command(
        tmp_path,
        root,
        config,
        "mutate",
        "--mutation",
        '{"fn": "ISSUE_SET_TITLE", "data": {"identifier": "acme/api#1", "title": "From the CLI"}}',
    )
    assert mutated["success"] and mutated["mutated_objects"]["work.Issue"][0]["title"] == "From the CLI"
    hook = {
        "headers": {"X-Gitlab-Event": "Merge Request Hook", "X-Gitlab-Token": "s3cret"},
        "body": {"object_kind": "merge_request", "project": {"id": 12}, "object_attributes": {"iid": 2}},
    }
    ok = _command(tmp_path, root, config, "webhook", "--data", orjson.dumps(hook).decode())
    assert ok["success"] and ok["mutated_objects"]["sourcecode.PullRequest"][0]["identifier"] == "acme/web!2"
    hook["headers"]["X-Gitlab-Token"] = "wrong"  # type: ignore[index]
    bad = _command(tmp_path, root, config, "webhook", "--data", orjson.dumps(hook).decode())
    assert not bad["success"] and "X-Gitlab-Token does not match" in bad["error"]
