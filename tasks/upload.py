"""The upload task: hand a finished export to the backend (upload url, zip in 5 MiB parts, result report).

Each part already has its own retries inside ``upload_export``; the decorator retries the whole delivery
when the backend stayed unavailable (``RetriableError``), never after a refusal (4xx, size mismatch).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from prefect import Task, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun

from pinpoint_agent.backend import BackendTarget, UploadResult, deliver_export
from pinpoint_agent.errors import RetriableError
from pinpoint_agent.exporter import ExportJob


def only_retriable(_task: Task[Any, Any], _run: TaskRun, state: State[Any]) -> bool:
    """Retry the delivery only when the backend was unavailable (network, 5xx, 429)."""
    return isinstance(state.result(raise_on_failure=False), RetriableError)


def export_log(job: ExportJob) -> Path | None:
    """This export's command log (``<root>/logs/export``) when this run wrote it, for the zip's export.log."""
    path = job.root.command_log("export")
    try:
        return path if path.stat().st_mtime >= job.started_at.timestamp() - 1 else None
    except OSError:
        return None


@task(name="upload-export", task_run_name="upload {job.export_id}", cache_policy=NO_CACHE,
      retries=2, retry_delay_seconds=[15, 60], retry_condition_fn=only_retriable)
def upload_export(job: ExportJob, target: BackendTarget, client: httpx.Client,
                  result: dict[str, Any]) -> UploadResult:
    """Uploads the export's files and reports the result; raises when the backend did not get all of it."""
    return deliver_export(client, target, root=job.root.path, export_id=job.export_id, result=result,
                          started_at=job.started_at, log_file=export_log(job))
