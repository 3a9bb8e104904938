"""Typed inputs of the commands, parsed once at the edge: the agent config, the integration entries, a
mutation and a webhook delivery. Each is a pydantic model; what fails to parse is one ``ConfigError`` line
naming the input and the field. Flows receive these models (or references to them, see ``secrets``).

Shapes are the original Go agent's (``--agent-config-json|file``, ``--integrations-json|file``,
``--mutation``, ``--data``), with strict types: ``"type": true`` or an object as ``"id"`` is refused.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlparse

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from pinpoint_agent.errors import ConfigError
from pinpoint_agent.protocol import IntegrationConfig, IntegrationType

MAX_INPUT_BYTES = 512 * 1024  # one JSON input (integrations, agent config, mutation, delivery)


class AgentConfig(BaseModel):
    """What the backend tells the agent about itself for one command."""

    model_config = ConfigDict(extra="allow", strict=True)

    customer_id: StrictStr = Field(default="local", min_length=1, description="the customer the data belongs to")
    skip_git: bool = Field(default=False, description="do not process git repos the integrations queue")
    git_max_concurrent: int = Field(default=2, ge=1, le=64, description="git repos processed at once")
    git_file_stats: bool = Field(default=True, description="per-file additions/deletions on commits")
    git_renames: bool = Field(default=True, description="detect renamed files in commit file stats (git -M)")
    export_timeout: float | None = Field(default=None, gt=0, description="seconds an integration's export may take")
    idle_timeout: float | None = Field(
        default=1800.0, gt=0, description="seconds without any callback before an integration counts as hung")
    backend_url: StrictStr = Field(default="", description="where results are uploaded; empty: local files only")
    api_key: SecretStr = Field(default=SecretStr(""), description="the agent's backend key")
    fan_out_deployment: StrictStr = Field(
        default="", description="an export deployment (e.g. export/pool) that runs one child flow run per "
                                "integration, so a work pool's workers share the export; empty: all in one run")
    state_url: SecretStr = Field(default=SecretStr(""), description="PostgreSQL URL of the state shared by several "
                                 "machines (postgresql://…); empty: $PINPOINT_STATE_URL, else SQLite under the root")

    @field_validator("api_key", "state_url", mode="before")
    @classmethod
    def _secret(cls, value: Any) -> Any:
        if isinstance(value, str):
            return SecretStr(value)
        return value

    @field_validator("export_timeout", "idle_timeout", mode="before")
    @classmethod
    def _finite(cls, value: Any) -> Any:
        if isinstance(value, bool) or (isinstance(value, float) and not math.isfinite(value)):
            raise ValueError("must be a finite number of seconds")
        return float(value) if isinstance(value, int) else value

    @field_validator("backend_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value:
            check_backend_url(value)
        return value

    def to_json(self) -> dict[str, Any]:
        """The config as JSON, the api key in clear (for the encrypted store only)."""
        return self.model_dump(mode="json") | {"api_key": self.api_key.get_secret_value(),
                                               "state_url": self.state_url.get_secret_value()}


def check_backend_url(url: str) -> str:
    """An http(s) url with a host and no credentials, or a ValueError saying what is wrong."""
    parts = urlparse(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) url with a host, e.g. https://api.example.com")
    if parts.username or parts.password:
        raise ValueError("must not carry credentials (the agent's key is api_key)")
    return url


class IntegrationEntry(BaseModel):
    """One integration entry ``{"id","name","type","config"}``; ``type`` is a number (WORK=0, SOURCECODE=1,
    CODEQUALITY=2, CALENDAR=3, USER=4) or its name. ``config`` may also be a ``secret-store:`` reference to the
    whole config (resolved by ``pinpoint_agent.secrets``)."""

    model_config = ConfigDict(extra="forbid")

    id: StrictStr | StrictInt = Field(default="", description="the entry's id; empty: its index")
    name: StrictStr = Field(min_length=1, description="the integration, e.g. github, gitlab, jira, git, mock")
    type: StrictInt | StrictStr = Field(default=1, description="WORK=0, SOURCECODE=1, CODEQUALITY=2, CALENDAR=3, "
                                                               "USER=4 (or the name)")
    config: dict[str, Any] | StrictStr = Field(default_factory=dict, description="the integration's config")

    @property
    def display_key(self) -> str:
        """``name@TYPE@id``, as the plugin host names the entry (ids and types already normalised)."""
        return f"{self.name}@{IntegrationType(int(self.type)).name}@{self.id}"

    @field_validator("type")
    @classmethod
    def _type(cls, value: int | str) -> int:
        try:
            return int(IntegrationType(value) if isinstance(value, int) else IntegrationType[value.upper()])
        except (ValueError, KeyError):
            raise ValueError(f"unknown type {value!r} (WORK=0, SOURCECODE=1, CODEQUALITY=2, CALENDAR=3, "
                             "USER=4)") from None


class Mutation(BaseModel):
    """``--mutation '{"fn": …, "data": {…}}'``; the integration checks that the data fits the function."""

    model_config = ConfigDict(extra="forbid")

    fn: StrictStr = Field(min_length=1, description="e.g. PR_SET_TITLE, as the integration names it")
    data: Any = Field(default_factory=dict, description="the function's arguments")

    @field_validator("fn")
    @classmethod
    def _fn(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must name the mutation, e.g. PR_SET_TITLE")
        return value.strip()


class Delivery(BaseModel):
    """``--data '{"headers": {…}, "body": {…} | "<raw body>"}'``: one webhook delivery as the backend got it."""

    model_config = ConfigDict(extra="forbid")

    headers: dict[StrictStr, StrictStr] = Field(description="the delivery's HTTP headers")
    body: Annotated[Any, Field(description="the JSON body, or the raw body as a string")]

    @property
    def body_bytes(self) -> bytes:
        return self.body.encode() if isinstance(self.body, str) else orjson.dumps(self.body)


def read_input(text: str | None, file: Path | None, flag: str) -> bytes | None:
    """The raw bytes of a ``--<flag>-json`` / ``--<flag>-file`` pair, size-limited; None when neither is given."""
    if text is not None and file is not None:
        raise ConfigError(f"give --{flag}-json or --{flag}-file, not both")
    if file is not None:
        try:
            size = file.stat().st_size
            if size > MAX_INPUT_BYTES:
                raise ConfigError(f"--{flag}-file {file} is {size} bytes; the limit is {MAX_INPUT_BYTES} bytes")
            raw = file.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read --{flag}-file {file}: {exc.strerror or exc}") from exc
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"--{flag}-file {file} is not UTF-8 text (byte {exc.start}); "
                              "save it as UTF-8 JSON") from None
        return raw
    if text is None:
        return None
    raw = text.encode("utf-8", "surrogateescape")
    if len(raw) > MAX_INPUT_BYTES:
        raise ConfigError(f"--{flag}-json is {len(raw)} bytes; the limit is {MAX_INPUT_BYTES} bytes")
    return raw


def _parse(raw: bytes, source: str, adapter: TypeAdapter[Any], label: str = "") -> Any:
    """JSON from ``source`` (a flag) validated by ``adapter``; errors name ``label`` (default: the flag)."""
    if len(raw) > MAX_INPUT_BYTES:
        raise ConfigError(f"{source} is {len(raw)} bytes; the limit is {MAX_INPUT_BYTES} bytes")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"{source} is not valid JSON: {exc}") from None
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        raise ConfigError(f"{label or source}: {_first_error(exc)}") from None


_UNION_TAGS = {"int", "str", "bool", "float", "dict[str,any]", "list[any]"}


def _first_error(exc: ValidationError) -> str:
    """The first problem as ``where: what``, in the words of JSON rather than of pydantic."""
    first = exc.errors(include_url=False)[0]
    where = ""
    for part in first["loc"]:
        if isinstance(part, int):
            where += f"[{part}]"
        elif part not in _UNION_TAGS and not str(part).startswith(("function-", "union[")):
            where += f".{part}" if where else str(part)
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        where, _, field = where.rpartition(".")
        msg = f"unknown field {field!r}"
    elif msg.startswith("Input should be a valid dictionary"):
        msg = "must be a JSON object"
    elif msg.startswith("Input should be a valid list"):
        msg = "must be a JSON list"
    elif msg.startswith("Input should be a valid"):
        msg = "must be a" + msg.removeprefix("Input should be a valid").replace(" integer", " whole number")
    elif msg == "Field required":
        where, _, field = where.rpartition(".")
        msg = f"needs {field!r}"
    return f"{where}: {msg}" if where else msg


_AGENT = TypeAdapter(AgentConfig)
_ENTRIES = TypeAdapter(list[IntegrationEntry])
_MUTATION = TypeAdapter(Mutation)
_DELIVERY = TypeAdapter(Delivery)


def _source(file: Path | None, flag: str) -> str:
    return f"--{flag}-file {file}" if file is not None else f"--{flag}-json"


def load_agent_config(text: str | None, file: Path | None) -> AgentConfig:
    raw = read_input(text, file, "agent-config")
    if raw is None:
        return AgentConfig()
    config: AgentConfig = _parse(raw, _source(file, "agent-config"), _AGENT, "agent config")
    return config


def agent_config_from(data: dict[str, Any] | None) -> AgentConfig:
    """The agent config from a flow's parameters (already resolved)."""
    try:
        return AgentConfig.model_validate(data or {})
    except ValidationError as exc:
        raise ConfigError(f"agent config: {_first_error(exc)}") from None


def load_entries(text: str | None, file: Path | None) -> list[IntegrationEntry]:
    """Integration entries ``[{"id","name","type","config"}]`` as given (config not resolved yet)."""
    raw = read_input(text, file, "integrations")
    if raw is None:
        raise ConfigError("no integrations given: pass --integrations-json or --integrations-file")
    return entries_from(raw, _source(file, "integrations"))


def entries_from(raw: bytes | list[Any], source: str) -> list[IntegrationEntry]:
    if isinstance(raw, bytes):
        entries: list[IntegrationEntry] = _parse(raw, source, _ENTRIES)
    else:
        try:
            entries = _ENTRIES.validate_python(raw)
        except ValidationError as exc:
            raise ConfigError(f"{source}: {_first_error(exc)}") from None
    if not entries:
        raise ConfigError(f'{source} must be a non-empty JSON list of {{"id","name","type","config"}}')
    seen: set[str] = set()
    for i, e in enumerate(entries):
        if e.id == "":
            e.id = str(i)
        e.id = str(e.id)
        key = e.display_key
        if key in seen:
            raise ConfigError(f"integration {key} is listed twice")
        seen.add(key)
    return entries


def backend_name(name: str, config: dict[str, Any]) -> str:
    """The backend says ``jira``; the agent picks jira-cloud for Atlassian-hosted sites, else jira-hosted."""
    if name != "jira":
        return name
    host = urlparse(str(config.get("url", ""))).hostname or ""
    cloud = host.endswith((".atlassian.net", ".jira.com")) or host == "api.atlassian.com"  # the OAuth gateway too
    return "jira-cloud" if cloud else "jira-hosted"


def integration_config(entry: IntegrationEntry, config: dict[str, Any]) -> IntegrationConfig:
    """The entry with its resolved ``config`` as the plugin host takes it; a refresh token stays agent-side."""
    config = dict(config)
    refresh = config.pop("refresh_token", "") or ""
    if not isinstance(refresh, str):
        raise ConfigError(f"integration {entry.name}: config.refresh_token must be a string")
    return IntegrationConfig(id=str(entry.id), name=backend_name(entry.name, config),
                             type=IntegrationType(int(entry.type)), config=config, use_oauth=bool(refresh),
                             refresh_token=refresh)


def parse_mutation(text: str) -> Mutation:
    mutation: Mutation = _parse(text.encode("utf-8", "surrogateescape"), "--mutation", _MUTATION)
    return mutation


def parse_delivery(text: str) -> Delivery:
    delivery: Delivery = _parse(text.encode("utf-8", "surrogateescape"), "--data", _DELIVERY)
    return delivery
