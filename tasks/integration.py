"""The per-integration export task."""

from __future__ import annotations

import threading

from prefect import task
from prefect.cache_policies import NO_CACHE

from pinpoint_agent.exporter import ExportJob, IntegrationOutcome, run_integration
from pinpoint_agent.protocol import IntegrationConfig
from pinpoint_agent.sessions import SessionInfo, SessionManager
from tasks.progress import ProgressArtifact


@task(name="export-integration", task_run_name="export {entry.display_key}", cache_policy=NO_CACHE)
def export_integration(job: ExportJob, entry: IntegrationConfig, manager: SessionManager,
                       cancel: threading.Event | None = None) -> IntegrationOutcome:
    """Runs one integration's export in its own plugin process; failures come back in the outcome."""
    artifact = ProgressArtifact(entry.display_key, manager)
    previous = manager.on_progress

    def on_progress(session: SessionInfo) -> None:
        artifact.changed()
        if previous is not None:
            previous(session)

    manager.on_progress = on_progress
    try:
        return run_integration(job, entry, manager, cancel=cancel)
    finally:
        artifact.close()
