"""The ``webhook`` command as a Prefect flow: one webhook delivery turned into model objects."""

from __future__ import annotations

from typing import Any

import orjson
from prefect import flow

from pinpoint_agent import interactive


@flow(name="webhook", log_prints=False)
def webhook(integrations: list[dict[str, Any]], data: dict[str, Any],
            agent_config: dict[str, Any] | None = None, pinpoint_root: str | None = None,
            integrations_dir: str | None = None) -> dict[str, Any]:
    """Hands ``data`` (``{"headers", "body"}``) to the integration; returns ``{"mutated_objects", "success",
    "error"}``."""
    delivery = interactive.parse_webhook(orjson.dumps(data).decode())
    target = interactive.target_from_params("webhook", integrations, agent_config, pinpoint_root,
                                            integrations_dir)
    return interactive.webhook(target, delivery)
