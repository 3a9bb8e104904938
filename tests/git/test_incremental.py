"""Checkpoints: an unchanged rerun is skipped cheaply, a moved head emits only the new commits."""

from __future__ import annotations

import json
import time
from typing import Any

from pinpoint_agent.git import BRANCH, COMMIT, PULL_REQUEST_BRANCH, PullRequestHead, process_repo

from .conftest import Collector, GitRepo, fetch_for


def run(repo: GitRepo, checkpoint: dict[str, Any] | None, **kw: Any) -> tuple[Collector, Any]:
    out = Collector()
    result = process_repo(
        fetch_for(repo.path, kw.pop("prs", ())),
        repo.path,
        customer_id="cust1",
        checkpoint=checkpoint,
        emit=out,
        **kw,
    )
    return out, result


def test_unchanged_rerun_is_skipped_and_emits_nothing(rich: GitRepo) -> None:
    """A second run with the returned (JSON round-tripped) checkpoint emits nothing, is skipped, and is
    fast."""
    first, result = run(rich, None)
    assert result.counts[COMMIT] == len(first.get(COMMIT)) > 0 and not result.skipped
    checkpoint = json.loads(json.dumps(result.checkpoint))
    start = time.perf_counter()
    second, again = run(rich, checkpoint)
    elapsed = time.perf_counter() - start
    assert again.skipped and second.calls == 0 and again.counts == {}
    assert again.checkpoint == checkpoint
    assert elapsed < 0.25, f"unchanged rerun took {elapsed * 1000:.0f} ms"


def test_one_new_commit_emits_exactly_that_commit(rich: GitRepo) -> None:
    """After one commit on main, the rerun emits exactly that commit and recomputes every branch."""
    _, result = run(rich, None)
    sha = rich.commit("one more", {"new.txt": "hello\n"})
    out, again = run(rich, result.checkpoint)
    assert [c["sha"] for c in out.get(COMMIT)] == [sha]
    assert again.incremental and not again.skipped
    assert {b["name"] for b in out.get(BRANCH)} == {"main", "feature", "o1", "o2", "o3", "wip", "ff"}
    main = {b["name"]: b for b in out.get(BRANCH)}["main"]
    assert main["behind_default_count"] == 0
    third, _ = run(rich, again.checkpoint)
    assert third.calls == 0


def test_commits_of_a_new_pr_head_are_emitted_once(rich: GitRepo) -> None:
    """A PR head outside every branch adds its commits; the next run with the same PR is skipped."""
    _, result = run(rich, None)
    rich.git("checkout", "-q", "-b", "pr-work", "main")
    sha = rich.commit("pr commit", {"pr.txt": "x\n"})
    rich.git("checkout", "-q", "main")
    rich.git("branch", "-D", "pr-work")  # like a fork's branch: only the PR head knows it
    prs = (PullRequestHead("pr9", "9", "https://h/pr/9", "pr-work", sha),)
    out, again = run(rich, result.checkpoint, prs=prs)
    assert [c["sha"] for c in out.get(COMMIT)] == [sha]
    assert [p["commit_shas"] for p in out.get(PULL_REQUEST_BRANCH)] == [[sha]]
    _, third = run(rich, again.checkpoint, prs=prs)
    assert third.skipped


def test_force_pushed_branch_emits_no_old_commits(rich: GitRepo) -> None:
    """Moving a branch back (a force push) emits no commits but recomputes that branch."""
    _, result = run(rich, None)
    rich.git("branch", "-f", "wip", "wip~1")
    out, again = run(rich, result.checkpoint)
    assert out.get(COMMIT) == [] and not again.skipped
    wip = {b["name"]: b for b in out.get(BRANCH)}["wip"]
    assert wip["commit_shas"][-1] == rich.sha("wip")


def test_changed_settings_start_over(rich: GitRepo) -> None:
    """A checkpoint made with other settings (file_stats off) is not trusted: the run is historical again."""
    _, result = run(rich, None, file_stats=False)
    out, again = run(rich, result.checkpoint)
    assert len(out.get(COMMIT)) == result.counts[COMMIT] and not again.incremental
