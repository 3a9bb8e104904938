"""Git processing engine: mirror a repository, then export its commits, branches, PR branches and users.

Plain Python (no Prefect, no gRPC). Typical use by a per-repo task::

    path = update_mirror(fetch, root / "cache" / "repos", credentials=token)
    result = process_repo(fetch, path, customer_id=cid, checkpoint=stored, emit=session.send)
    # once everything emitted is durable: store result.checkpoint

Emitted models: ``sourcecode.Commit``, ``sourcecode.CommitUser``, ``sourcecode.Branch``,
``sourcecode.PullRequestBranch`` (plain dicts, batches of at most 1000). Errors: see ``_errors``.
"""

from ._errors import AccessDenied, EmptyRepo, FatalGitError, GitError, TransientGitError
from ._mirror import mirror_path, update_mirror
from ._model import Emit, GitFetch, PullRequestHead, RepoResult
from ._process import BRANCH, COMMIT, COMMIT_USER, PULL_REQUEST_BRANCH, process_repo

__all__ = [
    "BRANCH",
    "COMMIT",
    "COMMIT_USER",
    "PULL_REQUEST_BRANCH",
    "AccessDenied",
    "Emit",
    "EmptyRepo",
    "FatalGitError",
    "GitError",
    "GitFetch",
    "PullRequestHead",
    "RepoResult",
    "TransientGitError",
    "mirror_path",
    "process_repo",
    "update_mirror",
]
