"""``GitLabIntegration``: the SDK surface. Each call parses the config, builds the client and delegates."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from integrations.gitlab import calls, models, work
from integrations.gitlab.client import GitLabClient, TokenAuth, make_http
from integrations.gitlab.config import GitLabConfig, parse_config
from integrations.gitlab.export import Exporter
from integrations.gitlab.ratelimit import RateLimiter
from integrations.gitlab.walks import is_admin, list_projects, users
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
from pinpoint_agent.protocol import IntegrationType


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


def token_auth(ctx: Context, cfg: GitLabConfig) -> TokenAuth:
    """``PRIVATE-TOKEN`` from the config, or (when the agent holds a refresh token) OAuth bearer tokens the
    agent hands out through ``OAuthNewAccessToken``, asked again when GitLab rejects one."""
    if ctx.integration.use_oauth:
        return TokenAuth(provider=ctx.require_agent().oauth_access_token)
    return TokenAuth(cfg.token)


class GitLabIntegration(Integration):
    name = "gitlab"

    @contextmanager
    def _client(self, ctx: Context, *, retries: int = 4) -> Iterator[tuple[GitLabConfig, GitLabClient]]:
        cfg = parse_config(ctx.config, oauth=ctx.integration.use_oauth)
        listener = AgentWaits(ctx.agent, ctx.log) if ctx.agent is not None else None
        limiter = RateLimiter(reserve=cfg.rate_limit_reserve, listener=listener, log=ctx.log)
        with make_http(cfg) as http:
            yield (
                cfg,
                GitLabClient(
                    http,
                    cfg.api,
                    token_auth(ctx, cfg),
                    limiter=limiter,
                    log=ctx.log,
                    per_page=cfg.per_page,
                    retries=retries,
                ),
            )

    def export(self, ctx: Context) -> ExportResult:
        with self._client(ctx) as (cfg, client):
            if ctx.integration.type == IntegrationType.WORK:
                result = work.WorkExporter(ctx, cfg, client).run()
            else:
                result = Exporter(ctx, cfg, client).run()
            ctx.log.info("gitlab export finished", requests=client.requests, rate_limit_waits=len(client.limiter.waits))
            return result

    def validate_config(self, ctx: Context) -> ValidateResult:
        with self._client(ctx, retries=1) as (cfg, client):
            return calls.validate(cfg, client)

    def onboard_export(self, ctx: Context, object_type: OnboardObjectType) -> Any:
        """``users``: who an export would send; ``repos``: the projects as repos; ``projects``: as work
        projects."""
        if object_type not in (OnboardObjectType.USERS, OnboardObjectType.REPOS, OnboardObjectType.PROJECTS):
            return super().onboard_export(ctx, object_type)
        with self._client(ctx) as (cfg, client):
            infos = list_projects(cfg, client, ctx.customer_id)
            if object_type == OnboardObjectType.REPOS:
                return [p.obj for p in infos]
            if object_type == OnboardObjectType.PROJECTS:
                return [work.project(ctx.customer_id, p.raw) for p in infos]
            admin = is_admin(client)
            return [models.user(ctx.customer_id, u, member=True) for u in users(cfg, client, infos, admin)]

    def mutate(self, ctx: Context, fn: str, data: Any) -> MutateResult:
        if fn not in calls.MUTATIONS:
            return super().mutate(ctx, fn, data)
        with self._client(ctx) as (_, client):
            return calls.mutate(client, ctx.customer_id, fn, data)

    def webhook(self, ctx: Context, headers: dict[str, str], body: bytes) -> WebhookResult:
        calls.webhook_event(headers)  # "not supported" before any config or network work
        with self._client(ctx) as (cfg, client):
            return calls.webhook(cfg, client, ctx.agent, ctx.customer_id, headers, body)
