"""The ``mutate`` command as a Prefect flow: write one change back to the source system."""

from __future__ import annotations

from typing import Any

from prefect import flow

from pinpoint_agent import interactive
from pinpoint_agent.config import IntegrationEntry, Mutation
from tasks.results import publish_result


@flow(name="mutate", log_prints=False, persist_result=False)
def mutate(integrations: list[IntegrationEntry], mutation: Mutation, agent_config: dict[str, Any] | str | None = None,
           pinpoint_root: str | None = None, integrations_dir: str | None = None) -> dict[str, Any]:
    """Runs ``mutation`` (``{"fn", "data"}``); returns ``{"mutated_objects", "webapp_response", "success",
    "error", "error_code"}``."""
    target = interactive.target_from_params("mutate", integrations, agent_config, pinpoint_root, integrations_dir)
    return publish_result("mutate", interactive.mutate(target, mutation))
