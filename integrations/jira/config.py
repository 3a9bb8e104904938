"""The Jira integration's config: the entry's ``config`` object, validated into ``JiraConfig`` (pydantic).

One model serves every call (export, validate-config, onboarding, mutations, webhooks). Credentials are
``SecretStr``: their ``repr``/``str`` show ``**********`` and only ``auth.py`` reads them, to build a header.

Which Jira (``flavor``): the entry name ``jira-cloud`` or ``jira-hosted`` says it; the backend's ``jira``
means Cloud when the host ends in ``.atlassian.net`` or ``.jira.com`` (or is Atlassian's OAuth gateway
``api.atlassian.com``), else Data Center/Server ("hosted"); ``flavor`` in the config overrides both.

Auth (``auth_mode``), from what is given:

=================  ==========================================  ==================================
mode               keys                                        header
=================  ==========================================  ==================================
``basic``          ``username`` (Cloud: the e-mail) + ``api_token`` (or ``password``)  ``Basic b64(user:secret)``
``pat``            ``access_token`` (DC personal access token)  ``Bearer <token>``
``oauth``          none: the agent holds the refresh token      ``Bearer <token from the agent>``
=================  ==========================================  ==================================
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from pinpoint_agent.errors import ConfigError

CLOUD_SUFFIXES = (".atlassian.net", ".jira.com")
OAUTH_GATEWAY = "api.atlassian.com"


class Flavor(StrEnum):
    CLOUD = "cloud"
    HOSTED = "hosted"


class AuthMode(StrEnum):
    BASIC = "basic"
    PAT = "pat"
    OAUTH = "oauth"


def flavor_of(url: str, integration_name: str = "jira") -> Flavor:
    """``jira-cloud``/``jira-hosted`` by name; ``jira`` by host (the rule the original agent used). Atlassian's
    OAuth gateway only serves Cloud, whatever the name (the agent names entries by host before they get here)."""
    host = (urlsplit(url).hostname or "").lower()
    if integration_name == "jira-cloud" or host == OAUTH_GATEWAY:
        return Flavor.CLOUD
    if integration_name == "jira-hosted":
        return Flavor.HOSTED
    if host.endswith(CLOUD_SUFFIXES):
        return Flavor.CLOUD
    return Flavor.HOSTED


class JiraConfig(BaseModel):
    """The integration entry's ``config`` for ``jira`` / ``jira-cloud`` / ``jira-hosted``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    url: str = Field(description="Jira base url, e.g. https://acme.atlassian.net or https://jira.acme.com/jira")
    username: str = Field("", description="Cloud: the account e-mail; Data Center: the user name (basic auth)")
    api_token: SecretStr = Field(SecretStr(""), description="Cloud API token (basic auth with username)")
    password: SecretStr = Field(SecretStr(""), description="Data Center password (basic auth with username)")
    access_token: SecretStr = Field(SecretStr(""), description="Data Center personal access token (Bearer)")
    flavor: Flavor | None = Field(None, description="cloud or hosted; default: from the name and host")
    cloud_id: str = Field(
        "", description="OAuth 2.0 only: the site's cloud id; requests then go to "
        "https://api.atlassian.com/ex/jira/<cloud_id> (links still use url)")
    projects: list[str] = Field(
        default_factory=list, description="only these project keys (default: every project the user can browse)"
    )
    exclusions: list[str] = Field(default_factory=list, description="skip these project keys")
    concurrency: int = Field(4, ge=1, le=16, description="projects exported at the same time")
    max_requests_in_flight: int = Field(8, ge=1, le=64, description="HTTP requests in flight per Jira host")
    page_size: int = Field(100, ge=1, le=100, description="issues per search page (Jira allows up to 100)")
    checkpoint_pages: int = Field(
        10, ge=1, description="an export stores its progress every this many pages of issues"
    )
    safety_window_minutes: int = Field(
        5, ge=1, le=1440, description="incremental searches start this long before the last token"
    )
    sprints: bool = Field(True, description="export sprints from the boards (Agile API)")
    timeout: float = Field(60.0, ge=1.0, le=600.0, description="seconds an HTTP request may take")
    insecure_skip_verify: bool = Field(False, description="do not verify TLS (self-signed Data Center)")
    webhook_secret: SecretStr = Field(
        SecretStr(""), description="secret to check X-Hub-Signature of webhook deliveries (empty: not checked)"
    )
    # Set by parse_config, not by the user:
    oauth: bool = Field(False, exclude=True, description="tokens come from the agent (OAuth 2.0 3LO)")
    integration_name: str = Field("jira", exclude=True, description="the entry's name")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) url")
        if parts.username or parts.password:
            raise ValueError("must not carry credentials (use username/api_token or access_token)")
        return value

    @field_validator("projects", "exclusions", mode="before")
    @classmethod
    def _keys(cls, value: Any) -> list[str]:
        if value is None or value == "":
            return []
        if isinstance(value, str):
            value = value.split(",")
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError("must be a list of project keys")
        return [v.strip().upper() for v in value if v.strip()]

    @property
    def kind(self) -> Flavor:
        return self.flavor or flavor_of(self.url, self.integration_name)

    @property
    def cloud(self) -> bool:
        return self.kind == Flavor.CLOUD

    @property
    def api_url(self) -> str:
        """Where requests go: the site, or Atlassian's OAuth gateway for the site's cloud id."""
        if self.oauth and self.cloud_id:
            return f"https://{OAUTH_GATEWAY}/ex/jira/{self.cloud_id}"
        return self.url

    @property
    def api_version(self) -> str:
        """Cloud's v3 (ADF bodies, /search/jql); Data Center only has v2 (wiki markup bodies)."""
        return "3" if self.cloud else "2"

    @property
    def auth_mode(self) -> AuthMode:
        if self.oauth:
            return AuthMode.OAUTH
        if self.access_token.get_secret_value():
            return AuthMode.PAT
        return AuthMode.BASIC

    def wants_project(self, key: str) -> bool:
        key = key.upper()
        if self.projects and key not in self.projects:
            return False
        return key not in self.exclusions


def parse_config(raw: Any, *, integration_name: str = "jira", oauth: bool = False) -> JiraConfig:
    """Validates the entry's config; one ``ConfigError`` line per problem found, never a secret's value."""
    if not isinstance(raw, dict):
        raise ConfigError("jira config must be a JSON object")
    try:
        cfg = JiraConfig.model_validate({**raw, "oauth": oauth, "integration_name": integration_name})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "config"
        raise ConfigError(f"jira config: {where}: {first['msg']}") from None
    if cfg.auth_mode == AuthMode.BASIC:
        secret = cfg.api_token.get_secret_value() or cfg.password.get_secret_value()
        if not cfg.username or not secret:
            need = "username (the account e-mail) and api_token" if cfg.cloud else \
                "access_token (a personal access token), or username and password"
            raise ConfigError(f"jira config: {need} required")
    return cfg


def describe() -> dict[str, str]:
    """Field name -> description, for the README and error messages."""
    return {
        name: f.description or ""
        for name, f in JiraConfig.model_fields.items()
        if name not in ("oauth", "integration_name")
    }
