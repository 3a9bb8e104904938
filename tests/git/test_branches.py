"""Branches and PR branches: merged state, merge commit, commits off default, ahead/behind against git."""

from __future__ import annotations

from pathlib import Path

from pinpoint_agent.git import BRANCH, PULL_REQUEST_BRANCH, PullRequestHead, process_repo
from pinpoint_agent.ids import branch_id, commit_id, hashcode

from .conftest import Collector, GitRepo, fetch_for


def branches(path: Path, prs: tuple[PullRequestHead, ...] = ()) -> Collector:
    out = Collector()
    process_repo(fetch_for(path, prs), path, customer_id="cust1", checkpoint=None, emit=out)
    return out


def count(repo: GitRepo, spec: str) -> int:
    return int(repo.git("rev-list", "--count", spec))


def test_ahead_behind_equal_rev_list_count(rich: GitRepo) -> None:
    """ahead/behind of every branch equal git rev-list --count against the default branch."""
    emitted = {b["name"]: b for b in branches(rich.path).get(BRANCH)}
    assert set(emitted) == {"main", "feature", "o1", "o2", "o3", "wip", "ff"}
    for name, b in emitted.items():
        assert b["ahead_default_count"] == count(rich, f"main..{name}"), name
        assert b["behind_default_count"] == count(rich, f"{name}..main"), name
        assert b["hashcode"] == hashcode(b)


def test_merged_branch_has_merge_commit_and_its_commits(rich: GitRepo) -> None:
    """A branch merged with a merge commit names that commit and lists its own commits oldest first."""
    b = {b["name"]: b for b in branches(rich.path).get(BRANCH)}
    feature = b["feature"]
    assert feature["merged"] is True
    assert feature["merge_commit_sha"] == rich.sha(":/^merge feature")
    assert feature["merge_commit_id"] == commit_id("cust1", feature["merge_commit_sha"], "github", "repo1")
    assert feature["commit_shas"] == [rich.sha(":/^feature 1"), rich.sha(":/^feature 2")]
    assert feature["first_commit_sha"] == rich.sha(":/^feature 1")
    assert feature["branched_from_commit_shas"] == [rich.sha(":/^binary change")]
    assert feature["id"] == branch_id(
        "github", "repo1", "cust1", "feature", commit_id("cust1", rich.sha(":/^feature 1"), "github", "repo1")
    )
    assert feature["url"] == "https://h/acme/widgets/tree/feature"
    for name in ("o1", "o2", "o3"):
        assert b[name]["merged"] and b[name]["merge_commit_sha"] == rich.sha(":/^octopus")
        assert b[name]["commit_shas"] == [rich.sha(f":/^octo {name}")]


def test_fast_forward_branch_is_merged_without_merge_commit(rich: GitRepo) -> None:
    """A branch on default's first-parent chain is merged, with no merge commit and no commits of its own."""
    ff = {b["name"]: b for b in branches(rich.path).get(BRANCH)}["ff"]
    assert (ff["merged"], ff["merge_commit_sha"], ff["commit_shas"]) == (True, "", [])
    assert ff["first_commit_sha"] == rich.sha("ff")


def test_unmerged_branch_lists_commits_not_on_default(rich: GitRepo) -> None:
    """An unmerged branch that merged default into itself lists exactly git rev-list --reverse main..wip."""
    wip = {b["name"]: b for b in branches(rich.path).get(BRANCH)}["wip"]
    assert wip["merged"] is False and wip["merge_commit_sha"] == ""
    assert wip["commit_shas"] == rich.git("rev-list", "--reverse", "--topo-order", "main..wip").split()
    assert wip["first_commit_sha"] == rich.sha(":/^wip 1")
    assert wip["branched_from_commit_shas"] == [rich.sha(":/^octopus")]


def test_default_branch(rich: GitRepo) -> None:
    """The default branch is flagged, has no commits off itself, and starts at the root commit."""
    main = {b["name"]: b for b in branches(rich.path).get(BRANCH)}["main"]
    assert main["default"] is True and main["merged"] is False
    assert (main["ahead_default_count"], main["behind_default_count"], main["commit_shas"]) == (0, 0, [])
    assert main["first_commit_sha"] == rich.sha(":/^root")


def test_pull_request_branches(rich: GitRepo) -> None:
    """A PR head yields a PullRequestBranch with the PR id and branch facts; a PR head missing from git is
    skipped."""
    prs = (
        PullRequestHead("pr1", "101", "https://h/pr/101", "wip", rich.sha("wip")),
        PullRequestHead("pr2", "102", "https://h/pr/102", "gone", "0" * 40),
        PullRequestHead("pr3", "103", "https://h/pr/103", "junk", "not-a-sha"),
    )
    (pr,) = branches(rich.path, prs).get(PULL_REQUEST_BRANCH)
    assert (pr["pull_request_id"], pr["branch_name"], pr["ref_id"], pr["name"]) == (
        "pr1",
        "wip",
        "101",
        "wip",
    )
    assert pr["commit_shas"] == rich.git("rev-list", "--reverse", "--topo-order", "main..wip").split()
    assert pr["ahead_default_count"] == count(rich, "main..wip")
    assert pr["behind_default_count"] == count(rich, "wip..main")
    assert pr["hashcode"] == hashcode(pr)
