"""The base class an integration implements, and the context each call receives."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from integrations.sdk._agent import AgentClient
from integrations.sdk._log import Logger, get_logger
from pinpoint_agent.errors import NotSupportedError
from pinpoint_agent.protocol import (
    ExportResult,
    IntegrationConfig,
    MutateResult,
    OnboardObjectType,
    ValidateResult,
    WebhookResult,
)


@dataclass
class Context:
    """One call's inputs: the integration entry, its config, the customer and the agent client."""

    integration: IntegrationConfig
    customer_id: str
    reprocess_historical: bool
    agent: AgentClient | None
    log: Logger = field(default_factory=get_logger)

    @property
    def config(self) -> dict[str, Any]:
        return self.integration.config

    def require_agent(self) -> AgentClient:
        if self.agent is None:
            raise NotSupportedError("the agent offered no callback service (Init was not called)")
        return self.agent


class Integration:
    """Subclass and override what the integration offers; the rest answers "not supported".

    ``export`` sends objects through ``ctx.agent`` sessions and returns the per-project results.
    """

    name: ClassVar[str] = "integration"

    def export(self, ctx: Context) -> ExportResult:
        raise NotSupportedError(f"{self.name} does not support export")

    def validate_config(self, ctx: Context) -> ValidateResult:
        raise NotSupportedError(f"{self.name} does not support validate-config")

    def onboard_export(self, ctx: Context, object_type: OnboardObjectType) -> Any:
        """Returns the data (JSON-able) for the object type."""
        raise NotSupportedError(f"{self.name} does not support onboarding {object_type.name.lower()}")

    def mutate(self, ctx: Context, fn: str, data: Any) -> MutateResult:
        raise NotSupportedError(f"{self.name} does not support mutation {fn}")

    def webhook(self, ctx: Context, headers: dict[str, str], body: bytes) -> WebhookResult:
        raise NotSupportedError(f"{self.name} does not support webhooks")
