"""The per-repo git task: mirror, then commits/branches/users through the integration's sessions."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from pinpoint_agent.exporter import ExportJob, GitJob, GitOutcome


@task(name="git-repo", task_run_name="git {job.request.unique_name}", cache_policy=NO_CACHE)
def git_repo(export: ExportJob, job: GitJob) -> GitOutcome:
    """Processes one repo; a failure is reported for that repo and the others go on."""
    # Imported here: the git engine (pygit2, ~80 ms) loads only when an export has a repo to process.
    from pinpoint_agent.gitexport import process_git_job

    return process_git_job(export, job)
