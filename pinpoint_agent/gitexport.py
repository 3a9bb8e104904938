"""Git processing of one queued repo, wired to the integration's sessions and the state store."""

from __future__ import annotations

from pinpoint_agent.exporter import ExportJob, GitJob, GitOutcome


def process_git_job(export: ExportJob, job: GitJob) -> GitOutcome:
    raise NotImplementedError("git processing lands with the git engine")
