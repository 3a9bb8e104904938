"""``GitHubIntegration``: the SDK surface. Each call parses the config, builds the client and delegates."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from integrations.github import calls, models
from integrations.github.client import GitHubClient, make_http
from integrations.github.config import GitHubConfig, parse_config
from integrations.github.export import Exporter
from integrations.github.ratelimit import RateLimiter
from integrations.github.walks import list_repos, member_nodes
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


class GitHubIntegration(Integration):
    name = "github"

    @contextmanager
    def _client(self, ctx: Context, *, retries: int = 4) -> Iterator[tuple[GitHubConfig, GitHubClient]]:
        oauth = ctx.require_agent().oauth_access_token() if ctx.integration.use_oauth else ""
        cfg = parse_config(ctx.config, oauth_token=oauth)
        listener = AgentWaits(ctx.agent, ctx.log) if ctx.agent is not None else None
        limiter = RateLimiter(reserve=cfg.rate_limit_reserve, listener=listener, log=ctx.log)
        with make_http(cfg) as http:
            yield (
                cfg,
                GitHubClient(
                    http,
                    cfg.api(),
                    cfg.token,
                    limiter=limiter,
                    log=ctx.log,
                    per_page=cfg.per_page,
                    retries=retries,
                ),
            )

    def export(self, ctx: Context) -> ExportResult:
        with self._client(ctx) as (cfg, client):
            result = Exporter(ctx, cfg, client).run()
            ctx.log.info(
                "github export finished", requests=client.requests, rate_limit_waits=len(client.limiter.waits)
            )
            return result

    def validate_config(self, ctx: Context) -> ValidateResult:
        with self._client(ctx, retries=1) as (cfg, client):
            return calls.validate(cfg, client)

    def onboard_export(self, ctx: Context, object_type: OnboardObjectType) -> Any:
        """``users``: the organization's members; ``repos``: the repos an export would cover."""
        if object_type not in (OnboardObjectType.USERS, OnboardObjectType.REPOS):
            return super().onboard_export(ctx, object_type)
        with self._client(ctx) as (cfg, client):
            if object_type == OnboardObjectType.REPOS:
                return [r.obj for r in list_repos(cfg, client, ctx.customer_id)]
            if not cfg.organization:
                return []
            return [models.member_user(ctx.customer_id, n) for n in member_nodes(client, cfg.organization)]

    def mutate(self, ctx: Context, fn: str, data: Any) -> MutateResult:
        if fn not in calls.MUTATIONS:
            return super().mutate(ctx, fn, data)
        with self._client(ctx) as (_, client):
            return calls.mutate(client, ctx.customer_id, fn, data)

    def webhook(self, ctx: Context, headers: dict[str, str], body: bytes) -> WebhookResult:
        with self._client(ctx) as (cfg, client):
            return calls.webhook(cfg, client, ctx.agent, ctx.customer_id, headers, body)
