"""The ``mutate`` command as a Prefect flow: write one change back to the source system."""

from __future__ import annotations

from typing import Any

import orjson
from prefect import flow

from pinpoint_agent import interactive


@flow(name="mutate", log_prints=False)
def mutate(integrations: list[dict[str, Any]], mutation: dict[str, Any],
           agent_config: dict[str, Any] | None = None, pinpoint_root: str | None = None,
           integrations_dir: str | None = None) -> dict[str, Any]:
    """Runs ``mutation`` (``{"fn", "data"}``); returns ``{"mutated_objects", "webapp_response", "success",
    "error", "error_code"}``."""
    change = interactive.parse_mutation(orjson.dumps(mutation).decode())
    target = interactive.target_from_params("mutate", integrations, agent_config, pinpoint_root,
                                            integrations_dir)
    return interactive.mutate(target, change)
