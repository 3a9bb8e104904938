"""The GitLab integration's config: the entry's ``config`` object, validated into ``GitLabConfig``.

A pydantic model with ``SecretStr`` tokens and a ``description`` on every field (``describe()`` lists them);
validation errors become one ``ConfigError`` line naming the field. The same model serves every call.

``url`` is the GitLab server (``https://gitlab.com`` or a self-managed one, a path prefix allowed); the API is
``<url>/api/v4`` (API v4 only; a url already ending in ``/api/v4`` is taken back to the server's).
"""

from __future__ import annotations

import fnmatch
from typing import Any
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from pinpoint_agent.errors import ConfigError

PUBLIC_URL = "https://gitlab.com"


def _names(value: Any) -> Any:
    """A list of names, also accepted as one comma-separated string (as the original agent's backend sent)."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list):
        return [v.strip() if isinstance(v, str) else v for v in value if v != ""]
    return value


class GitLabConfig(BaseModel):
    """The integration entry's ``config`` for ``gitlab``."""

    model_config = ConfigDict(extra="ignore", frozen=True, hide_input_in_errors=True)

    url: str = Field(PUBLIC_URL, description="GitLab server url: https://gitlab.com or a self-managed server")
    access_token: SecretStr = Field(
        SecretStr(""),
        description="personal, group or project access token (sent as PRIVATE-TOKEN); `api_key` is accepted "
        "as another name. Not needed when the agent holds an OAuth refresh token",
    )
    groups: list[str] = Field(
        default_factory=list,
        description="group full paths whose projects are exported (subgroups included); empty: every project "
        "the token is a member of",
    )
    inclusions: list[str] = Field(
        default_factory=list, description="only projects matching one of these paths or globs (`group/name`)"
    )
    exclusions: list[str] = Field(default_factory=list, description="skip projects matching one of these")
    include_archived: bool = Field(False, description="also export archived projects")
    emails_refresh_hours: float = Field(
        24.0,
        ge=0.0,
        description="admin tokens: read every user's secondary emails (one request per user) at most "
        "this often, and in between only new users' (0: every export); primary emails are read every time",
    )
    only_git: bool = Field(False, description="only queue git processing; no users, merge requests or notes")
    per_page: int = Field(100, ge=1, le=100, description="page size of list calls (GitLab allows 1-100)")
    concurrency: int = Field(1, ge=1, le=16, description="projects exported at the same time (1-16)")
    detail_concurrency: int = Field(
        4,
        ge=1,
        le=16,
        description="merge requests of a project whose commits, approvals and notes are read at the same time (1-16)",
    )
    checkpoint_pages: int = Field(
        10, ge=1, description="store merge request progress every this many pages, so a failure keeps it"
    )
    rate_limit_reserve: float = Field(
        0.1,
        ge=0.0,
        le=0.9,
        description="share of the RateLimit-Limit kept in reserve; below it the export waits for RateLimit-Reset",
    )
    webhook_secret: SecretStr = Field(
        SecretStr(""), description="the secret token of the GitLab webhook, checked against X-Gitlab-Token"
    )
    insecure_skip_verify: bool = Field(False, description="do not verify TLS (self-signed self-managed servers)")
    timeout: float = Field(60.0, ge=1.0, le=600.0, description="seconds an HTTP request may take")

    @field_validator("groups", "inclusions", "exclusions", mode="before")
    @classmethod
    def _listish(cls, value: Any) -> Any:
        return _names(value)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip() or PUBLIC_URL
        parsed = urlparse(value if "://" in value else f"https://{value}")
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError("is not an http(s) url")
        if parsed.username or parsed.password:
            raise ValueError("must not carry credentials (put the token in access_token)")
        if parsed.query or parsed.fragment:  # ?private_token=… would end up in logs and errors
            raise ValueError("must not carry a query string (put the token in access_token)")
        return value

    @property
    def token(self) -> str:
        return self.access_token.get_secret_value()

    @property
    def server(self) -> str:
        """The server's web url, without a trailing ``/api/v4``."""
        parsed = urlparse(self.url if "://" in self.url else f"https://{self.url}")
        base = f"{parsed.scheme}://{parsed.netloc}{parsed.path.rstrip('/')}"
        for suffix in ("/api/v4", "/api"):
            if base.endswith(suffix):
                return base[: -len(suffix)]
        return base

    @property
    def api(self) -> str:
        return f"{self.server}/api/v4"

    def wants_project(self, path: str, *, archived: bool) -> bool:
        """Archived flag, inclusions and exclusions by ``group/name`` or ``name`` (case-insensitive globs)."""
        if archived and not self.include_archived:
            return False
        name = path.lower()
        short = name.rsplit("/", 1)[-1]

        def matches(patterns: list[str]) -> bool:
            return any(fnmatch.fnmatchcase(name, p.lower()) or fnmatch.fnmatchcase(short, p.lower()) for p in patterns)

        if self.inclusions and not matches(self.inclusions):
            return False
        return not matches(self.exclusions)


def describe() -> dict[str, str]:
    """Field name -> description, for documentation and error messages."""
    return {name: f.description or "" for name, f in GitLabConfig.model_fields.items()}


def parse_config(raw: Any, *, oauth: bool = False) -> GitLabConfig:
    """Validates the entry's config; with ``oauth`` the token comes from the agent, so none is required."""
    if not isinstance(raw, dict):
        raise ConfigError("gitlab config must be a JSON object")
    data = dict(raw)
    if not data.get("access_token") and data.get("api_key"):
        data["access_token"] = data["api_key"]
    try:
        cfg = GitLabConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "config"
        raise ConfigError(f"gitlab config: {where} {first['msg'].removeprefix('Value error, ')}") from None
    if not oauth and not cfg.token:
        raise ConfigError("gitlab config: access_token (or api_key) is required")
    return cfg
