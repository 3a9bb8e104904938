"""The `git` integration through the real CLI: git processing runs inside the export, incrementally."""

from __future__ import annotations

import subprocess

import orjson
import pytest

from pinpoint_agent.ids import values
from tests.export.helpers import read_export, run_cli


def git(repo, *args):
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "Ann", "GIT_AUTHOR_EMAIL": "Ann@Example.com",
                        "GIT_COMMITTER_NAME": "Ann", "GIT_COMMITTER_EMAIL": "Ann@Example.com",
                        "PATH": "/usr/bin:/bin", "HOME": str(repo)})


@pytest.fixture
def repo(tmp_path):
    r = tmp_path / "proj"
    r.mkdir()
    git(r, "init", "-q", "-b", "main")
    for i in range(3):
        (r / f"f{i}.txt").write_text("line\n" * (i + 1))
        git(r, "add", ".")
        git(r, "commit", "-q", "-m", f"commit {i}")
    return r


@pytest.mark.usefixtures("prefect_api")
def test_git_integration_exports_commits_incrementally(tmp_path, repo):
    """First export: all commits, the branch and the git user; rerun: no commit; one new commit: exactly one."""
    root, out = tmp_path / "root", tmp_path / "r.json"
    ints = orjson.dumps([{"id": "g", "name": "git", "type": 1, "config": {"repos": [str(repo)]}}]).decode()
    args = ["export", "--integrations-json", ints, "--pinpoint-root", str(root), "--output-file", str(out),
            "--agent-config-json", '{"customer_id": "c1"}']

    def export_once():
        proc = run_cli(*args)
        assert proc.returncode == 0, proc.stderr
        result = orjson.loads(out.read_bytes())
        assert result["integrations"][0]["error"] == ""
        project = result["integrations"][0]["projects"][0]
        assert project["has_git_repo"] and project["git_error"] == ""
        return read_export(root, result["export_id"])

    first = export_once()
    commits = first["sourcecode.Commit"]
    assert len(commits) == 3
    assert {c["author_ref_id"] for c in commits} == {values("c1", "ann@example.com")}
    users = first["sourcecode.CommitUser"]
    assert [(u["id"], u["associated_ref_id"]) for u in users] == [(values("User", "c1", "ann@example.com", "git"), "")]
    assert [b["name"] for b in first["sourcecode.Branch"]] == ["main"]

    assert "sourcecode.Commit" not in export_once()

    (repo / "new.txt").write_text("a\nb\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "one more")
    third = export_once()
    assert [c["message"].strip() for c in third["sourcecode.Commit"]] == ["one more"]
    assert third["sourcecode.Commit"][0]["additions"] == 2


@pytest.mark.usefixtures("prefect_api")
def test_git_renames_setting_reaches_the_commit_files(tmp_path, repo):
    """Through the real CLI, a renamed file is one `renamed` entry with `renamed_from` by default, and a
    removed plus an added file with `{"git_renames": false}` in the agent config."""
    git(repo, "mv", "f2.txt", "moved.txt")
    git(repo, "commit", "-q", "-m", "rename f2")
    ints = orjson.dumps([{"id": "g", "name": "git", "type": 1, "config": {"repos": [str(repo)]}}]).decode()

    def files(agent_config, name):
        root, out = tmp_path / name, tmp_path / f"{name}.json"
        proc = run_cli("export", "--integrations-json", ints, "--pinpoint-root", str(root), "--output-file",
                       str(out), "--agent-config-json", agent_config)
        assert proc.returncode == 0, proc.stderr
        result = orjson.loads(out.read_bytes())
        commits = read_export(root, result["export_id"])["sourcecode.Commit"]
        return next(c for c in commits if c["message"].strip() == "rename f2")["files"]

    on = files('{"customer_id": "c1"}', "on")
    assert [(f["path"], f["status"], f["renamed"], f["renamed_from"]) for f in on] == [
        ("moved.txt", "renamed", True, "f2.txt")]
    off = files('{"customer_id": "c1", "git_renames": false}', "off")
    assert sorted((f["path"], f["status"]) for f in off) == [("f2.txt", "removed"), ("moved.txt", "added")]
