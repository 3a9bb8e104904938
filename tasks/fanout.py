"""Fan-out of an export over Prefect workers: one child flow run per integration on a deployment of the
export flow (e.g. ``export/pool`` from ``prefect.yaml``), so the workers of its pool share the work.

Children run as subflows of the parent (the UI shows them under it) and are started together; each is an
ordinary export of one integration on the worker that picks it up, with the same parameters the parent got
(configs stay ``secret-store:`` references, resolved by the worker from the shared secret store). The parent
waits for all of them and reads each child's result artifact.
"""

from __future__ import annotations

import contextvars
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterType
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment

from tasks.results import RESULT_ARTIFACT_TYPE


def run_children(deployment: str, children: dict[str, dict[str, Any]]) -> list[tuple[FlowRun, dict[str, Any] | None]]:
    """Starts one run of ``deployment`` per parameter set (keyed by an idempotency key, so a retried parent
    does not start its children twice), waits for all, and returns each run with its result JSON (None when
    the run published none: it failed or crashed before the end)."""
    parent = contextvars.copy_context()  # the parent's flow run context: the children link to it as subflows
    with ThreadPoolExecutor(max_workers=max(1, len(children)), thread_name_prefix="fan-out") as pool:
        runs = list(pool.map(lambda item: parent.copy().run(_run, deployment, *item), children.items()))
    return [(run, _result(run.id)) for run in runs]


def _run(deployment: str, key: str, parameters: dict[str, Any]) -> FlowRun:
    run: FlowRun = run_deployment(deployment, parameters=parameters, timeout=None, as_subflow=True,
                                  poll_interval=2, idempotency_key=key)  # type: ignore[assignment]
    return run


def _result(flow_run_id: UUID) -> dict[str, Any] | None:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
            type=ArtifactFilterType(any_=[RESULT_ARTIFACT_TYPE])))
    data = found[0].data if found else None
    return data if isinstance(data, dict) else None
