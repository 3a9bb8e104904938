"""The ``export-onboard-data`` command as a Prefect flow: the users, repos, projects, work config or
calendars of one integration, for the onboarding screens."""

from __future__ import annotations

from typing import Any

from prefect import flow

from pinpoint_agent import interactive
from pinpoint_agent.config import IntegrationEntry
from pinpoint_agent.protocol import OnboardObjectType
from tasks.results import publish_result


@flow(name="export-onboard-data", flow_run_name="export-onboard-data {object_type}", log_prints=False,
      persist_result=False)
def export_onboard_data(integrations: list[IntegrationEntry], object_type: str,
                        agent_config: dict[str, Any] | str | None = None, pinpoint_root: str | None = None,
                        integrations_dir: str | None = None) -> dict[str, Any]:
    """Lists one object type of the integration; returns ``{"success", "error", "data"}``."""
    kind = OnboardObjectType.parse(object_type)
    target = interactive.target_from_params("export-onboard-data", integrations, agent_config, pinpoint_root,
                                            integrations_dir)
    return publish_result("export-onboard-data", interactive.export_onboard_data(target, kind))
