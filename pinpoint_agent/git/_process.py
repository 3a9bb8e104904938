"""``process_repo``: one repository → ``sourcecode.Commit``, ``Branch``, ``PullRequestBranch``,
``CommitUser``."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

import pygit2

from ..ids import branch_id
from ._branches import BranchFacts, branch_facts
from ._cmd import base_env
from ._commits import CommitContext
from ._errors import EmptyRepo, translating
from ._hash import fast_commit_id, fast_hashcode
from ._model import Emit, GitFetch, RepoResult
from ._refs import checkpoint_key, is_unchanged, new_checkpoint, read_heads
from ._stream import stream_commits

__all__ = ["BATCH", "COMMIT", "BRANCH", "PULL_REQUEST_BRANCH", "COMMIT_USER", "process_repo"]

log = logging.getLogger(__name__)

COMMIT = "sourcecode.Commit"
BRANCH = "sourcecode.Branch"
PULL_REQUEST_BRANCH = "sourcecode.PullRequestBranch"
COMMIT_USER = "sourcecode.CommitUser"
BATCH = 1000  # most objects per emit call


class _Emitter:
    """Counts what goes out and cuts it into batches of at most :data:`BATCH`."""

    def __init__(self, emit: Emit) -> None:
        self.emit = emit
        self.counts: dict[str, int] = {}

    def __call__(self, model: str, objects: list[dict[str, Any]]) -> None:
        for i in range(0, len(objects), BATCH):
            self.emit(model, objects[i : i + BATCH])
        self.counts[model] = self.counts.get(model, 0) + len(objects)


def process_repo(
    fetch: GitFetch,
    repo_path: Path,
    *,
    customer_id: str,
    checkpoint: dict[str, Any] | None,
    emit: Emit,
    file_stats: bool = True,
    renames: bool = False,
    workers: int = 2,
) -> RepoResult:
    """Emits the repository's commits (new since ``checkpoint``), branches, PR branches and commit users.

    ``checkpoint=None`` processes the whole history. ``renames`` turns on git's rename detection (``-M``) for
    the file stats: a renamed file is one entry with ``renamed_from`` set instead of a delete and an add.
    Store the returned ``RepoResult.checkpoint`` only once everything emitted is durable. Raises
    :class:`EmptyRepo` for a repository without branches, else a :class:`GitError` subclass.
    """
    with translating(repo=fetch.unique_name, url=fetch.url):
        repo = pygit2.Repository(str(repo_path))
        heads = read_heads(repo)
        if not heads.branches:
            raise EmptyRepo("the repository has no branches", repo=fetch.unique_name, url=fetch.url)
        key = checkpoint_key(fetch, customer_id, file_stats, renames=renames)
        if is_unchanged(checkpoint, key, heads, fetch):
            assert checkpoint is not None
            return RepoResult(checkpoint=checkpoint, skipped=True, incremental=True)
        incremental = checkpoint is not None and checkpoint.get("key") == key
        old = [s for s in (checkpoint or {}).get("tips", []) if incremental and _present(repo, s)]
        prs = [pr for pr in fetch.prs if _present(repo, pr.last_commit_sha)]
        for pr in fetch.prs:
            if pr not in prs:
                log.warning(
                    "%s: head %s of pull request %s is not in the repository",
                    fetch.unique_name,
                    pr.last_commit_sha,
                    pr.id,
                )
        tips = list(dict.fromkeys([*heads.branches.values(), *(pr.last_commit_sha for pr in prs)]))
        env = base_env()
        out = _Emitter(emit)
        ctx = CommitContext(
            customer_id,
            fetch.ref_type,
            fetch.repo_id,
            fetch.unique_name,
            fetch.commit_url_template,
            file_stats,
            renames and file_stats,
        )
        users: set[tuple[str, str]] = set()
        names = [n for n in sorted(heads.branches) if n != heads.default]
        default_sha = heads.branches[heads.default]
        # The branch facts' graph pass needs no commit of the stream: it runs beside it (~1 core-second per
        # 10k commits that would otherwise come after the stream, on one core). Leaving the block waits for it.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="git-branch-facts") as side:
            pending = side.submit(
                branch_facts,
                repo_path,
                env,
                default_sha,
                [heads.branches[n] for n in names] + [pr.last_commit_sha for pr in prs],
            )
            # closing(): on any error (emit's included) the git workers are reaped now, not when collected
            batches = stream_commits(repo_path, ctx, tips, old, env=env, workers=workers, users=users)
            with closing(batches):
                for batch in batches:
                    out(COMMIT, batch)
            root, facts = pending.result()
        out(
            COMMIT_USER,
            [
                {"customer_id": customer_id, "email": email, "name": name, "source_id": ""}
                for email, name in sorted(users)
            ],
        )
        default_facts = BranchFacts(first_commit_sha=root)
        branches = [_branch(fetch, customer_id, heads.default, default_facts, default=True)]
        branches += [_branch(fetch, customer_id, n, f) for n, f in zip(names, facts, strict=False)]
        out(BRANCH, branches)
        pr_branches = []
        for pr, f in zip(prs, facts[len(names) :], strict=True):
            obj = _branch(fetch, customer_id, pr.branch_name, f, ref_id=pr.ref_id)
            obj["branch_name"] = pr.branch_name
            obj["pull_request_id"] = pr.id
            obj["hashcode"] = fast_hashcode(obj)
            pr_branches.append(obj)
        out(PULL_REQUEST_BRANCH, pr_branches)
        return RepoResult(
            checkpoint=new_checkpoint(key, heads, fetch, tips), counts=out.counts, incremental=incremental
        )


def _present(repo: pygit2.Repository, sha: str) -> bool:
    """True when ``sha`` names an object of ``repo`` (a malformed sha is simply absent)."""
    try:
        return bool(sha) and sha in repo
    except ValueError:
        return False


def _branch(
    fetch: GitFetch,
    customer_id: str,
    name: str,
    f: BranchFacts,
    *,
    default: bool = False,
    ref_id: str | None = None,
) -> dict[str, Any]:
    def cid(sha: str) -> str:
        return fast_commit_id(customer_id, sha, fetch.ref_type, fetch.repo_id)

    first_id = cid(f.first_commit_sha)
    obj: dict[str, Any] = {
        "ahead_default_count": f.ahead_default_count,
        "behind_default_count": f.behind_default_count,
        "branched_from_commit_ids": [cid(s) for s in f.branched_from_commit_shas],
        "branched_from_commit_shas": f.branched_from_commit_shas,
        "commit_ids": [cid(s) for s in f.commit_shas],
        "commit_shas": f.commit_shas,
        "customer_id": customer_id,
        "default": default,
        "first_commit_id": first_id,
        "first_commit_sha": f.first_commit_sha,
        "id": branch_id(fetch.ref_type, fetch.repo_id, customer_id, name, first_id),
        "merge_commit_id": cid(f.merge_commit_sha) if f.merge_commit_sha else "",
        "merge_commit_sha": f.merge_commit_sha,
        "merged": f.merged,
        "name": name,
        "ref_id": ref_id if ref_id is not None else name,
        "ref_type": fetch.ref_type,
        "repo_id": fetch.repo_id,
        "url": fetch.branch_url_template.replace("@@@branch@@@", name),
    }
    obj["hashcode"] = fast_hashcode(obj)
    return obj
