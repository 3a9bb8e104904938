"""The ``webhook`` command as a Prefect flow: one webhook delivery turned into model objects."""

from __future__ import annotations

from typing import Any

from prefect import flow

from pinpoint_agent import interactive
from pinpoint_agent.config import Delivery, IntegrationEntry
from pinpoint_agent.secrets import resolve_delivery
from tasks.results import publish_result


@flow(name="webhook", log_prints=False, persist_result=False)
def webhook(integrations: list[IntegrationEntry], data: Delivery | str,
            agent_config: dict[str, Any] | str | None = None, pinpoint_root: str | None = None,
            integrations_dir: str | None = None) -> dict[str, Any]:
    """Hands ``data`` (``{"headers", "body"}``, or a secret-store reference to it) to the integration; returns
    ``{"mutated_objects", "success", "error"}``."""
    target = interactive.target_from_params("webhook", integrations, agent_config, pinpoint_root, integrations_dir)
    return publish_result("webhook", interactive.webhook(target, resolve_delivery(data, target.root)))
