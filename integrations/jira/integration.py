"""``JiraIntegration``: the SDK surface. Each call parses the config, builds the client and delegates."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from integrations.jira import calls
from integrations.jira.auth import TokenProvider, make_auth
from integrations.jira.client import JiraClient, make_http
from integrations.jira.config import JiraConfig, parse_config
from integrations.jira.export import Exporter
from integrations.jira.ratelimit import Limiter
from integrations.sdk import (
    AgentClient,
    Context,
    ExportResult,
    Integration,
    Logger,
    MutateResult,
    OnboardObjectType,
    ValidateResult,
    WebhookResult,
)
from pinpoint_agent.errors import PinpointError


class AgentWaits:
    """Forwards rate-limit waits to the agent as pause/resume events; a failing callback only gets logged."""

    def __init__(self, agent: AgentClient, log: Logger) -> None:
        self.agent, self.log = agent, log

    def paused(self, message: str, until: datetime) -> None:
        try:
            self.agent.pause(message, until)
        except PinpointError as exc:
            self.log.warning("could not tell the agent about the pause", error=str(exc))

    def resumed(self, message: str) -> None:
        try:
            self.agent.resume(message)
        except PinpointError as exc:
            self.log.warning("could not tell the agent about the resume", error=str(exc))


class JiraIntegration(Integration):
    """Serves ``jira`` (Cloud or Data Center by host), ``jira-cloud`` and ``jira-hosted``."""

    name = "jira"

    @contextmanager
    def _client(self, ctx: Context, *, retries: int = 4) -> Iterator[tuple[JiraConfig, JiraClient]]:
        cfg = parse_config(ctx.config, integration_name=ctx.integration.name, oauth=ctx.integration.use_oauth)
        provider: TokenProvider | None = ctx.require_agent().oauth_access_token if cfg.oauth else None
        listener = AgentWaits(ctx.agent, ctx.log) if ctx.agent is not None else None
        limiter = Limiter(max_in_flight=cfg.max_requests_in_flight, listener=listener, log=ctx.log)
        with make_http(cfg) as http:
            yield cfg, JiraClient(http, cfg.api_url, make_auth(cfg, provider), limiter=limiter, log=ctx.log,
                                  retries=retries)

    def export(self, ctx: Context) -> ExportResult:
        with self._client(ctx) as (cfg, client):
            result = Exporter(ctx, cfg, client).run()
            ctx.log.info("jira export finished", flavor=cfg.kind.value, requests=client.requests,
                         rate_limit_waits=len(client.limiter.waits), peak_in_flight=client.limiter.peak_in_flight)
            return result

    def validate_config(self, ctx: Context) -> ValidateResult:
        with self._client(ctx, retries=1) as (cfg, client):
            return calls.validate(cfg, client)

    def onboard_export(self, ctx: Context, object_type: OnboardObjectType) -> Any:
        """``users``, ``projects`` and ``workconfig`` (statuses, priorities, issue types, resolutions)."""
        if object_type not in (OnboardObjectType.USERS, OnboardObjectType.PROJECTS, OnboardObjectType.WORKCONFIG):
            return super().onboard_export(ctx, object_type)
        with self._client(ctx) as (cfg, client):
            if object_type == OnboardObjectType.USERS:
                return calls.onboard_users(cfg, client, ctx.customer_id)
            if object_type == OnboardObjectType.PROJECTS:
                return calls.onboard_projects(cfg, client, ctx.customer_id)
            return calls.onboard_workconfig(cfg, client, ctx.customer_id)

    def mutate(self, ctx: Context, fn: str, data: Any) -> MutateResult:
        if fn not in calls.MUTATIONS:
            return super().mutate(ctx, fn, data)
        with self._client(ctx) as (cfg, client):
            return calls.mutate(cfg, client, ctx.customer_id, fn, data)

    def webhook(self, ctx: Context, headers: dict[str, str], body: bytes) -> WebhookResult:
        with self._client(ctx) as (cfg, client):
            return calls.webhook(cfg, client, ctx.customer_id, headers, body)
