"""Hand-written types for what crosses the plugin wire, with ``to_proto``/``from_proto``.

The hot path (``SendExported``: lists of JSON bytes) is not wrapped: it passes bytes through as they are.
These are dataclasses rather than pydantic models on purpose: a plugin imports this module at start-up, and
pydantic would add ~200 ms to every integration's cold start. Configs are validated where they are parsed.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any

import orjson

from pinpoint_agent.errors import (
    ConfigError,
    FatalError,
    NotSupportedError,
    PinpointError,
    RetriableError,
)
from pinpoint_agent.protocol._gen import pinpoint_pb2 as pb


class IntegrationType(enum.IntEnum):
    WORK = 0
    SOURCECODE = 1
    CODEQUALITY = 2
    CALENDAR = 3
    USER = 4


class OnboardObjectType(enum.IntEnum):
    USERS = 0
    REPOS = 1
    PROJECTS = 2
    WORKCONFIG = 3
    CALENDARS = 4

    @classmethod
    def parse(cls, text: str) -> OnboardObjectType:
        try:
            return cls[text.upper()]
        except KeyError:
            names = "|".join(m.name.lower() for m in cls)
            raise ConfigError(f"unknown object type {text!r}: expected one of {names}") from None


def _json(data: bytes) -> Any:
    return orjson.loads(data) if data else None


@dataclass
class IntegrationConfig:
    """One integration entry as the agent hands it to a plugin."""

    id: str  # the entry's id (its index when the backend sent none)
    name: str  # the integration's name, e.g. github, mock, git
    type: IntegrationType  # WORK=0, SOURCECODE=1, CODEQUALITY=2, CALENDAR=3, USER=4
    config: dict[str, Any] = field(default_factory=dict)  # the integration's own config object
    use_oauth: bool = False  # tokens come from the agent (OAuthNewAccessToken)
    refresh_token: str = field(default="", repr=False)  # kept agent-side, never sent to the plugin

    @property
    def display_key(self) -> str:
        """``name@TYPE@id``, as in log file names and results."""
        return f"{self.name}@{self.type.name}@{self.id}"

    @property
    def state_key(self) -> str:
        """``name@TYPE``: state is keyed without the id so it survives the entry moving."""
        return f"{self.name}@{self.type.name}"

    def to_proto(self) -> pb.IntegrationConfig:
        return pb.IntegrationConfig(
            id=self.id, name=self.name, type=int(self.type),  # type: ignore[arg-type]
            config_json=orjson.dumps(self.config),
            use_oauth=self.use_oauth,
        )

    @classmethod
    def from_proto(cls, msg: pb.IntegrationConfig) -> IntegrationConfig:
        return cls(id=msg.id, name=msg.name, type=IntegrationType(msg.type),
                   config=_json(msg.config_json) or {}, use_oauth=msg.use_oauth)


@dataclass
class CallConfig:
    """What every Integration call carries."""

    integration: IntegrationConfig
    customer_id: str = ""
    reprocess_historical: bool = False

    def to_proto(self) -> pb.CallConfig:
        return pb.CallConfig(integration=self.integration.to_proto(), customer_id=self.customer_id,
                             reprocess_historical=self.reprocess_historical)

    @classmethod
    def from_proto(cls, msg: pb.CallConfig) -> CallConfig:
        return cls(integration=IntegrationConfig.from_proto(msg.integration), customer_id=msg.customer_id,
                   reprocess_historical=msg.reprocess_historical)


@dataclass
class ExportProject:
    id: str = ""
    ref_id: str = ""
    name: str = ""
    error: str = ""


@dataclass
class ExportResult:
    projects: list[ExportProject] = field(default_factory=list)

    def to_proto(self) -> pb.ExportResponse:
        return pb.ExportResponse(projects=[pb.ExportProject(**dataclasses.asdict(p)) for p in self.projects])

    @classmethod
    def from_proto(cls, msg: pb.ExportResponse) -> ExportResult:
        return cls(projects=[ExportProject(id=p.id, ref_id=p.ref_id, name=p.name, error=p.error)
                             for p in msg.projects])


@dataclass
class ValidateResult:
    errors: list[str] = field(default_factory=list)
    repo_url: str = ""
    repo_credentials: str = field(default="", repr=False)
    server_version: str = ""

    def to_proto(self) -> pb.ValidateConfigResponse:
        return pb.ValidateConfigResponse(errors=self.errors, repo_url=self.repo_url,
                                         repo_credentials=self.repo_credentials,
                                         server_version=self.server_version)

    @classmethod
    def from_proto(cls, msg: pb.ValidateConfigResponse) -> ValidateResult:
        return cls(errors=list(msg.errors), repo_url=msg.repo_url, repo_credentials=msg.repo_credentials,
                   server_version=msg.server_version)


@dataclass
class OnboardResult:
    data: Any = None

    def to_proto(self) -> pb.OnboardExportResponse:
        return pb.OnboardExportResponse(data_json=orjson.dumps(self.data))

    @classmethod
    def from_proto(cls, msg: pb.OnboardExportResponse) -> OnboardResult:
        return cls(data=_json(msg.data_json))


@dataclass
class MutateResult:
    mutated_objects: dict[str, list[Any]] = field(default_factory=dict)
    webapp_response: Any = None
    error_code: str = ""

    def to_proto(self) -> pb.MutateResponse:
        return pb.MutateResponse(mutated_objects_json=orjson.dumps(self.mutated_objects),
                                 webapp_response_json=orjson.dumps(self.webapp_response),
                                 error_code=self.error_code)

    @classmethod
    def from_proto(cls, msg: pb.MutateResponse) -> MutateResult:
        return cls(mutated_objects=_json(msg.mutated_objects_json) or {},
                   webapp_response=_json(msg.webapp_response_json), error_code=msg.error_code)


@dataclass
class WebhookResult:
    mutated_objects: dict[str, list[Any]] = field(default_factory=dict)

    def to_proto(self) -> pb.WebhookResponse:
        return pb.WebhookResponse(mutated_objects_json=orjson.dumps(self.mutated_objects))

    @classmethod
    def from_proto(cls, msg: pb.WebhookResponse) -> WebhookResult:
        return cls(mutated_objects=_json(msg.mutated_objects_json) or {})


@dataclass
class GitPullRequest:
    id: str
    ref_id: str
    url: str
    branch_name: str
    last_commit_sha: str


@dataclass
class GitRepoRequest:
    """``ExportGitRepo``: every field but ``ref_type`` (and ``credentials``) is required."""

    repo_id: str
    unique_name: str
    url: str
    commit_url_template: str
    branch_url_template: str
    ref_type: str = ""
    prs: list[GitPullRequest] = field(default_factory=list)
    credentials: str = field(default="", repr=False)

    def to_proto(self) -> pb.ExportGitRepoRequest:
        return pb.ExportGitRepoRequest(
            repo_id=self.repo_id, unique_name=self.unique_name, ref_type=self.ref_type, url=self.url,
            commit_url_template=self.commit_url_template, branch_url_template=self.branch_url_template,
            prs=[pb.GitPullRequest(**dataclasses.asdict(p)) for p in self.prs], credentials=self.credentials,
        )

    @classmethod
    def from_proto(cls, msg: pb.ExportGitRepoRequest) -> GitRepoRequest:
        missing = [f for f in ("repo_id", "unique_name", "url", "commit_url_template", "branch_url_template")
                   if not getattr(msg, f)]
        if missing:
            raise ConfigError(f"ExportGitRepo: missing {', '.join(missing)}")
        prs = []
        for p in msg.prs:
            empty = [f for f in ("id", "ref_id", "url", "branch_name", "last_commit_sha") if not getattr(p, f)]
            if empty:
                raise ConfigError(f"ExportGitRepo {msg.unique_name}: pull request {p.id or '?'} "
                                  f"is missing {', '.join(empty)}")
            prs.append(GitPullRequest(id=p.id, ref_id=p.ref_id, url=p.url, branch_name=p.branch_name,
                                      last_commit_sha=p.last_commit_sha))
        return cls(repo_id=msg.repo_id, unique_name=msg.unique_name, ref_type=msg.ref_type, url=msg.url,
                   commit_url_template=msg.commit_url_template, branch_url_template=msg.branch_url_template,
                   prs=prs, credentials=msg.credentials)


_KINDS: list[tuple[type[PinpointError], int]] = [
    (ConfigError, pb.Error.CONFIG),
    (NotSupportedError, pb.Error.NOT_SUPPORTED),
    (RetriableError, pb.Error.RETRIABLE),
]


def error_to_proto(exc: BaseException) -> pb.Error:
    """The wire form of an exception raised inside an integration call."""
    for cls, kind in _KINDS:
        if isinstance(exc, cls):
            retry = getattr(exc, "retry_after", None) or 0.0
            return pb.Error(kind=kind, message=str(exc), retry_after_seconds=retry)  # type: ignore[arg-type]
    text = str(exc) if isinstance(exc, PinpointError) else f"{type(exc).__name__}: {exc}"
    return pb.Error(kind=pb.Error.FATAL, message=text)


def error_from_proto(err: pb.Error) -> PinpointError | None:
    """The exception an integration's answer carries, or ``None`` when it carries none."""
    if err.kind == pb.Error.KIND_UNSPECIFIED and not err.message:
        return None
    if err.kind == pb.Error.CONFIG:
        return ConfigError(err.message)
    if err.kind == pb.Error.NOT_SUPPORTED:
        return NotSupportedError(err.message or "not supported")
    if err.kind == pb.Error.RETRIABLE:
        return RetriableError(err.message, err.retry_after_seconds or None)
    return FatalError(err.message)
