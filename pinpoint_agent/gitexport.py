"""Git processing of one queued repo, wired to the integration's sessions and the state store.

Objects go into model sessions under the integration's tracking root ``git`` (object = the repo), so
they follow the same dedup and durability rules as the integration's own; the repo's checkpoint is
stored after all of them are done, so a crash re-exports, never skips.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import structlog

from pinpoint_agent.exporter import ExportJob, GitJob, GitOutcome
from pinpoint_agent.git import EmptyRepo, GitError, GitFetch, PullRequestHead, process_repo, update_mirror
from pinpoint_agent.log import mask, register_secret
from pinpoint_agent.protocol import GitRepoRequest

log = structlog.get_logger(__name__)


def to_fetch(request: GitRepoRequest, default_ref_type: str) -> GitFetch:
    return GitFetch(
        repo_id=request.repo_id, unique_name=request.unique_name, ref_type=request.ref_type or default_ref_type,
        url=request.url, commit_url_template=request.commit_url_template,
        branch_url_template=request.branch_url_template,
        prs=tuple(PullRequestHead(p.id, p.ref_id, p.url, p.branch_name, p.last_commit_sha) for p in request.prs))


def process_git_job(export: ExportJob, job: GitJob) -> GitOutcome:
    """Mirrors and processes one repo; its failure is returned in the outcome, never raised."""
    request, manager = job.request, job.manager
    outcome = GitOutcome(job.integration.display_key, request.repo_id, request.unique_name)
    register_secret(request.credentials)
    fetch = to_fetch(request, job.integration.name)
    bound = log.bind(integration=outcome.integration_key, repo=request.unique_name)
    started = time.monotonic_ns()
    sessions: dict[str, int] = {}
    with export.git_slots:
        try:
            root = manager.internal_root("git")

            def emit(model: str, objects: list[dict[str, Any]]) -> None:
                sid = sessions.get(model)
                if sid is None:
                    sid, _ = manager.start_internal(False, model, root, request.repo_id)
                    sessions[model] = sid
                manager.send_exported(sid, [orjson.dumps(o) for o in objects])

            key = f"{manager.root}/git/{request.repo_id}"
            stored = manager.checkpoint(key)
            path = update_mirror(fetch, export.root.repos_cache, credentials=request.credentials or None)
            result = process_repo(fetch, path, customer_id=export.agent.customer_id,
                                  checkpoint=orjson.loads(stored) if stored else None, emit=emit,
                                  file_stats=export.agent.git_file_stats, renames=export.agent.git_renames)
            for sid in sessions.values():
                manager.session_done(sid, "")
            manager.commit_checkpoint(key, orjson.dumps(result.checkpoint).decode())
            outcome.skipped, outcome.counts = result.skipped, dict(result.counts)
        except EmptyRepo:
            outcome.error = "empty_repo"
        except GitError as exc:
            outcome.error = mask(str(exc))
        except Exception as exc:  # noqa: BLE001 (one repo's failure is reported for that repo)
            bound.error("git processing failed", exc_info=True)
            outcome.error = mask(f"{type(exc).__name__}: {exc}")
        finally:
            if outcome.error:
                for sid in sessions.values():
                    try:
                        manager.session_rollback(sid)
                    except Exception:  # noqa: BLE001 (already closed)
                        pass
    outcome.duration_ns = time.monotonic_ns() - started
    if outcome.error:
        bound.warning("git processing failed", error=outcome.error)
    else:
        bound.info("git processed", skipped=outcome.skipped, objects=outcome.counts,
                   seconds=round(outcome.duration_ns / 1e9, 3))
    return outcome
