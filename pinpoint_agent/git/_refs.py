"""Branch heads of a repository and the checkpoint that remembers which heads were processed.

Checkpoint (JSON)::

    {"version": 1,
     "key": "<hash of what the output depends on besides the heads: ids, templates, file_stats>",
     "default": "main",                                   # the default branch name
     "heads": {"main": "<sha>", "feature/x": "<sha>"},    # refs/heads/*, short names
     "prs": {"<pr id>": ["<ref_id>", "<branch_name>", "<last_commit_sha>", "<url>"]},
     "tips": ["<sha>", ...]}                              # commits walked: heads and PR heads present then

A run is skipped when the repository's heads, default branch, PRs and key equal the checkpoint's. Otherwise
only commits reachable from the new tips and not from the checkpoint's ``tips`` (those still present) are
emitted, and every branch and PR branch is recomputed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pygit2

from ..ids import values
from ._model import GitFetch

__all__ = ["CHECKPOINT_VERSION", "Heads", "checkpoint_key", "is_unchanged", "new_checkpoint", "read_heads"]

CHECKPOINT_VERSION = 1
_PREFIX = "refs/heads/"


@dataclass(frozen=True)
class Heads:
    """The default branch name and every branch head (short name → sha)."""

    default: str
    branches: dict[str, str]


def read_heads(repo: pygit2.Repository) -> Heads:
    """Branch heads via libgit2 (no child process: an unchanged repo is skipped in a few milliseconds)."""
    branches: dict[str, str] = {}
    for ref in repo.references.iterator():
        if ref.name.startswith(_PREFIX):
            target = ref.resolve().target
            branches[ref.name[len(_PREFIX) :]] = str(target)
    default = ""
    head = repo.references.get("HEAD")
    if head is not None and head.type == pygit2.enums.ReferenceType.SYMBOLIC:
        name = str(head.target)
        if name.startswith(_PREFIX) and name[len(_PREFIX) :] in branches:
            default = name[len(_PREFIX) :]
    if not default:
        default = next((b for b in ("main", "master") if b in branches), min(branches, default=""))
    return Heads(default, branches)


def checkpoint_key(fetch: GitFetch, customer_id: str, file_stats: bool, *, renames: bool = False) -> str:
    """Hash of the inputs besides heads that shape the output; when it changes, the run starts over."""
    extra = ("renames",) if renames and file_stats else ()  # keeps the keys of checkpoints made before it
    return values(
        CHECKPOINT_VERSION,
        customer_id,
        fetch.ref_type,
        fetch.repo_id,
        fetch.unique_name,
        fetch.commit_url_template,
        fetch.branch_url_template,
        file_stats,
        *extra,
    )


def _prs(fetch: GitFetch) -> dict[str, list[str]]:
    return {pr.id: [pr.ref_id, pr.branch_name, pr.last_commit_sha, pr.url] for pr in fetch.prs}


def is_unchanged(checkpoint: dict[str, Any] | None, key: str, heads: Heads, fetch: GitFetch) -> bool:
    """True when nothing the output depends on moved since ``checkpoint`` was made."""
    return (
        checkpoint is not None
        and checkpoint.get("version") == CHECKPOINT_VERSION
        and checkpoint.get("key") == key
        and checkpoint.get("default") == heads.default
        and checkpoint.get("heads") == heads.branches
        and checkpoint.get("prs") == _prs(fetch)
    )


def new_checkpoint(key: str, heads: Heads, fetch: GitFetch, tips: list[str]) -> dict[str, Any]:
    """The checkpoint describing this run (see the module docstring)."""
    return {
        "version": CHECKPOINT_VERSION,
        "key": key,
        "default": heads.default,
        "heads": dict(heads.branches),
        "prs": _prs(fetch),
        "tips": sorted(set(tips)),
    }
