"""The result JSON of a command as an artifact of its flow run: a backend that sees the run Completed reads
the result from the API (the agent's files are out of its reach)::

    POST /api/artifacts/filter {"artifacts": {"flow_run_id": {"any_": ["<id>"]}, "type": {"any_": ["result"]}}}
    -> [{"data": <the result JSON>, ...}]
"""

from __future__ import annotations

from typing import Any

import orjson
from prefect.client.schemas.actions import ArtifactCreate
from prefect.context import FlowRunContext

RESULT_ARTIFACT_TYPE = "result"


def publish_result(command: str, result: dict[str, Any]) -> dict[str, Any]:
    """Publishes ``result`` on the current flow run (before the run turns Completed) and returns it."""
    ctx = FlowRunContext.get()
    if ctx is not None and ctx.flow_run is not None:  # the run's own client: no new connection per artifact
        ctx.client.create_artifact(ArtifactCreate(
            key=f"{command}-result", type=RESULT_ARTIFACT_TYPE, data=orjson.loads(orjson.dumps(result)),
            description=f"The result JSON of {command}", flow_run_id=ctx.flow_run.id))
    return result
