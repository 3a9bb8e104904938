"""What a caller gives the git layer (:class:`GitFetch`) and what it gets back (:class:`RepoResult`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Emit", "GitFetch", "PullRequestHead", "RepoResult"]

#: ``emit(model, objects)``: receives batches (at most ``BATCH`` objects) of plain JSON-able dicts.
Emit = Callable[[str, list[dict[str, Any]]], None]


@dataclass(frozen=True)
class PullRequestHead:
    """A pull request as an integration sends it in ``ExportGitRepo.prs``."""

    id: str
    ref_id: str
    url: str
    branch_name: str
    last_commit_sha: str


@dataclass(frozen=True)
class GitFetch:
    """One repository to export (``ExportGitRepo``); every field but ``ref_type`` is required upstream."""

    repo_id: str
    unique_name: str
    ref_type: str
    url: str
    commit_url_template: str
    branch_url_template: str
    prs: tuple[PullRequestHead, ...] = ()


@dataclass
class RepoResult:
    """Outcome of :func:`process_repo`.

    ``checkpoint`` is JSON-able; store it once everything emitted is durable and pass it back next time.
    ``counts`` maps model name → number of objects emitted. ``skipped`` is true when no head moved.
    """

    checkpoint: dict[str, Any]
    counts: dict[str, int] = field(default_factory=dict)
    skipped: bool = False
    incremental: bool = False
