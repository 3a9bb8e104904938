"""The ``validate-config`` command as a Prefect flow: tests one integration's connection (and clones the
repo it names)."""

from __future__ import annotations

from typing import Any

from prefect import flow

from pinpoint_agent import interactive
from pinpoint_agent.config import IntegrationEntry
from tasks.results import publish_result


@flow(name="validate-config", log_prints=False, persist_result=False)
def validate_config(integrations: list[IntegrationEntry], agent_config: dict[str, Any] | str | None = None,
                    pinpoint_root: str | None = None, integrations_dir: str | None = None) -> dict[str, Any]:
    """Asks the integration to check its config; returns ``{"errors", "success", "server_version"}``."""
    target = interactive.target_from_params("validate-config", integrations, agent_config, pinpoint_root,
                                            integrations_dir)
    return publish_result("validate-config", interactive.validate_config(target))
