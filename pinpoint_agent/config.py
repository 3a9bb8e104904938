"""Typed inputs of the hidden commands: the agent config and the integration entries, as the original
Go agent took them (``--agent-config-json|file``, ``--integrations-json|file``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import orjson
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from pinpoint_agent.errors import ConfigError
from pinpoint_agent.protocol import IntegrationConfig, IntegrationType
from pinpoint_agent.secretref import reveal


class AgentConfig(BaseModel):
    """What the backend tells the agent about itself for one command."""

    model_config = ConfigDict(extra="allow")

    customer_id: str = Field(default="local", description="the customer the data belongs to")
    skip_git: bool = Field(default=False, description="do not process git repos the integrations queue")
    git_max_concurrent: int = Field(default=2, ge=1, le=64, description="git repos processed at once")
    git_file_stats: bool = Field(default=True, description="per-file additions/deletions on commits")
    export_timeout: float | None = Field(default=None, description="seconds an integration's export may take")
    idle_timeout: float | None = Field(
        default=1800.0, description="seconds without any callback before an integration counts as hung")
    backend_url: str = Field(default="", description="where results are uploaded; empty: local files only")
    api_key: SecretStr = Field(default=SecretStr(""), description="the agent's backend key")
    state_url: SecretStr = Field(default=SecretStr(""), description="PostgreSQL URL of the state shared by several "
                                 "machines (postgresql://…); empty: $PINPOINT_STATE_URL, else SQLite under the root")

    @model_validator(mode="before")
    @classmethod
    def _reveal(cls, data: Any) -> Any:
        """Secret references (``secret-ref:``) in any field, declared or extra, become the secrets."""
        return reveal(data)


def _load_json(text: str | None, file: Path | None, what: str) -> Any:
    if text is not None and file is not None:
        raise ConfigError(f"give --{what}-json or --{what}-file, not both")
    if file is not None:
        try:
            text = file.read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read --{what}-file {file}: {exc.strerror or exc}") from exc
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        source = f"--{what}-file {file}" if file is not None else f"--{what}-json"
        raise ConfigError(f"{source} is not valid JSON: {exc}") from exc


def load_agent_config(text: str | None, file: Path | None) -> AgentConfig:
    data = _load_json(text, file, "agent-config")
    if data is None:
        return AgentConfig()
    if not isinstance(data, dict):
        raise ConfigError("the agent config must be a JSON object")
    try:
        return AgentConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"agent config: {where}: {first['msg']}") from None


def backend_name(name: str, config: dict[str, Any]) -> str:
    """The backend says ``jira``; the agent picks jira-cloud for Atlassian-hosted sites, else jira-hosted."""
    if name != "jira":
        return name
    host = urlparse(str(config.get("url", ""))).hostname or ""
    return "jira-cloud" if host.endswith((".atlassian.net", ".jira.com")) else "jira-hosted"


def load_integrations(text: str | None, file: Path | None) -> list[IntegrationConfig]:
    """Integration entries ``{"id","name","type","config"}``; an empty id becomes the entry's index."""
    data = _load_json(text, file, "integrations")
    if data is None:
        raise ConfigError("no integrations given: pass --integrations-json or --integrations-file")
    if not isinstance(data, list) or not data:
        raise ConfigError("integrations must be a non-empty JSON list of {\"id\",\"name\",\"type\",\"config\"}")
    entries = []
    seen: set[str] = set()
    for i, raw in enumerate(data):
        if not isinstance(raw, dict):
            raise ConfigError(f"integration #{i} must be a JSON object")
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"integration #{i} has no name")
        type_ = raw.get("type", 1)
        try:
            itype = IntegrationType(type_) if isinstance(type_, int) else IntegrationType[str(type_).upper()]
        except (ValueError, KeyError):
            raise ConfigError(f"integration {name}: unknown type {type_!r} (WORK=0, SOURCECODE=1, "
                              "CODEQUALITY=2, CALENDAR=3, USER=4)") from None
        config = raw.get("config", {}) or {}
        if not isinstance(config, dict):
            raise ConfigError(f"integration {name}: config must be a JSON object")
        config = reveal(dict(config))
        refresh = config.pop("refresh_token", "")
        entry = IntegrationConfig(id=str(raw.get("id") or i), name=backend_name(name, config), type=itype,
                                  config=config, use_oauth=bool(refresh), refresh_token=str(refresh or ""))
        if entry.display_key in seen:
            raise ConfigError(f"integration {entry.display_key} is listed twice")
        seen.add(entry.display_key)
        entries.append(entry)
    return entries
