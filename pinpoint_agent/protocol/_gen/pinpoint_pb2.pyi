from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class IntegrationType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WORK: _ClassVar[IntegrationType]
    SOURCECODE: _ClassVar[IntegrationType]
    CODEQUALITY: _ClassVar[IntegrationType]
    CALENDAR: _ClassVar[IntegrationType]
    USER: _ClassVar[IntegrationType]

class OnboardObjectType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    USERS: _ClassVar[OnboardObjectType]
    REPOS: _ClassVar[OnboardObjectType]
    PROJECTS: _ClassVar[OnboardObjectType]
    WORKCONFIG: _ClassVar[OnboardObjectType]
    CALENDARS: _ClassVar[OnboardObjectType]
WORK: IntegrationType
SOURCECODE: IntegrationType
CODEQUALITY: IntegrationType
CALENDAR: IntegrationType
USER: IntegrationType
USERS: OnboardObjectType
REPOS: OnboardObjectType
PROJECTS: OnboardObjectType
WORKCONFIG: OnboardObjectType
CALENDARS: OnboardObjectType

class Empty(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Error(_message.Message):
    __slots__ = ("kind", "message", "retry_after_seconds")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[Error.Kind]
        CONFIG: _ClassVar[Error.Kind]
        FATAL: _ClassVar[Error.Kind]
        RETRIABLE: _ClassVar[Error.Kind]
        NOT_SUPPORTED: _ClassVar[Error.Kind]
    KIND_UNSPECIFIED: Error.Kind
    CONFIG: Error.Kind
    FATAL: Error.Kind
    RETRIABLE: Error.Kind
    NOT_SUPPORTED: Error.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_SECONDS_FIELD_NUMBER: _ClassVar[int]
    kind: Error.Kind
    message: str
    retry_after_seconds: float
    def __init__(self, kind: _Optional[_Union[Error.Kind, str]] = ..., message: _Optional[str] = ..., retry_after_seconds: _Optional[float] = ...) -> None: ...

class IntegrationConfig(_message.Message):
    __slots__ = ("id", "name", "type", "config_json", "use_oauth")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CONFIG_JSON_FIELD_NUMBER: _ClassVar[int]
    USE_OAUTH_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    type: IntegrationType
    config_json: bytes
    use_oauth: bool
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., type: _Optional[_Union[IntegrationType, str]] = ..., config_json: _Optional[bytes] = ..., use_oauth: _Optional[bool] = ...) -> None: ...

class CallConfig(_message.Message):
    __slots__ = ("integration", "customer_id", "reprocess_historical", "agent_service_id")
    INTEGRATION_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    REPROCESS_HISTORICAL_FIELD_NUMBER: _ClassVar[int]
    AGENT_SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    integration: IntegrationConfig
    customer_id: str
    reprocess_historical: bool
    agent_service_id: int
    def __init__(self, integration: _Optional[_Union[IntegrationConfig, _Mapping]] = ..., customer_id: _Optional[str] = ..., reprocess_historical: _Optional[bool] = ..., agent_service_id: _Optional[int] = ...) -> None: ...

class InitRequest(_message.Message):
    __slots__ = ("agent_service_id", "display_name")
    AGENT_SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    agent_service_id: int
    display_name: str
    def __init__(self, agent_service_id: _Optional[int] = ..., display_name: _Optional[str] = ...) -> None: ...

class InitResponse(_message.Message):
    __slots__ = ("name", "error")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    name: str
    error: Error
    def __init__(self, name: _Optional[str] = ..., error: _Optional[_Union[Error, _Mapping]] = ...) -> None: ...

class ExportRequest(_message.Message):
    __slots__ = ("config",)
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    config: CallConfig
    def __init__(self, config: _Optional[_Union[CallConfig, _Mapping]] = ...) -> None: ...

class ExportProject(_message.Message):
    __slots__ = ("id", "ref_id", "name", "error")
    ID_FIELD_NUMBER: _ClassVar[int]
    REF_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    id: str
    ref_id: str
    name: str
    error: str
    def __init__(self, id: _Optional[str] = ..., ref_id: _Optional[str] = ..., name: _Optional[str] = ..., error: _Optional[str] = ...) -> None: ...

class ExportResponse(_message.Message):
    __slots__ = ("projects", "error")
    PROJECTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    projects: _containers.RepeatedCompositeFieldContainer[ExportProject]
    error: Error
    def __init__(self, projects: _Optional[_Iterable[_Union[ExportProject, _Mapping]]] = ..., error: _Optional[_Union[Error, _Mapping]] = ...) -> None: ...

class ValidateConfigRequest(_message.Message):
    __slots__ = ("config",)
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    config: CallConfig
    def __init__(self, config: _Optional[_Union[CallConfig, _Mapping]] = ...) -> None: ...

class ValidateConfigResponse(_message.Message):
    __slots__ = ("errors", "repo_url", "server_version", "error", "repo_credentials")
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    REPO_URL_FIELD_NUMBER: _ClassVar[int]
    SERVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    REPO_CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    errors: _containers.RepeatedScalarFieldContainer[str]
    repo_url: str
    server_version: str
    error: Error
    repo_credentials: str
    def __init__(self, errors: _Optional[_Iterable[str]] = ..., repo_url: _Optional[str] = ..., server_version: _Optional[str] = ..., error: _Optional[_Union[Error, _Mapping]] = ..., repo_credentials: _Optional[str] = ...) -> None: ...

class OnboardExportRequest(_message.Message):
    __slots__ = ("config", "object_type")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    OBJECT_TYPE_FIELD_NUMBER: _ClassVar[int]
    config: CallConfig
    object_type: OnboardObjectType
    def __init__(self, config: _Optional[_Union[CallConfig, _Mapping]] = ..., object_type: _Optional[_Union[OnboardObjectType, str]] = ...) -> None: ...

class OnboardExportResponse(_message.Message):
    __slots__ = ("data_json", "error")
    DATA_JSON_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    data_json: bytes
    error: Error
    def __init__(self, data_json: _Optional[bytes] = ..., error: _Optional[_Union[Error, _Mapping]] = ...) -> None: ...

class MutateRequest(_message.Message):
    __slots__ = ("config", "fn", "data_json")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    FN_FIELD_NUMBER: _ClassVar[int]
    DATA_JSON_FIELD_NUMBER: _ClassVar[int]
    config: CallConfig
    fn: str
    data_json: bytes
    def __init__(self, config: _Optional[_Union[CallConfig, _Mapping]] = ..., fn: _Optional[str] = ..., data_json: _Optional[bytes] = ...) -> None: ...

class MutateResponse(_message.Message):
    __slots__ = ("mutated_objects_json", "webapp_response_json", "error", "error_code")
    MUTATED_OBJECTS_JSON_FIELD_NUMBER: _ClassVar[int]
    WEBAPP_RESPONSE_JSON_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    mutated_objects_json: bytes
    webapp_response_json: bytes
    error: Error
    error_code: str
    def __init__(self, mutated_objects_json: _Optional[bytes] = ..., webapp_response_json: _Optional[bytes] = ..., error: _Optional[_Union[Error, _Mapping]] = ..., error_code: _Optional[str] = ...) -> None: ...

class WebhookRequest(_message.Message):
    __slots__ = ("config", "headers_json", "body")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    HEADERS_JSON_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    config: CallConfig
    headers_json: bytes
    body: bytes
    def __init__(self, config: _Optional[_Union[CallConfig, _Mapping]] = ..., headers_json: _Optional[bytes] = ..., body: _Optional[bytes] = ...) -> None: ...

class WebhookResponse(_message.Message):
    __slots__ = ("mutated_objects_json", "error")
    MUTATED_OBJECTS_JSON_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    mutated_objects_json: bytes
    error: Error
    def __init__(self, mutated_objects_json: _Optional[bytes] = ..., error: _Optional[_Union[Error, _Mapping]] = ...) -> None: ...

class SessionStartRequest(_message.Message):
    __slots__ = ("is_tracking", "name", "parent_session_id", "parent_object_id", "parent_object_name")
    IS_TRACKING_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PARENT_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    is_tracking: bool
    name: str
    parent_session_id: int
    parent_object_id: str
    parent_object_name: str
    def __init__(self, is_tracking: _Optional[bool] = ..., name: _Optional[str] = ..., parent_session_id: _Optional[int] = ..., parent_object_id: _Optional[str] = ..., parent_object_name: _Optional[str] = ...) -> None: ...

class SessionStartResponse(_message.Message):
    __slots__ = ("session_id", "last_processed")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_PROCESSED_FIELD_NUMBER: _ClassVar[int]
    session_id: int
    last_processed: str
    def __init__(self, session_id: _Optional[int] = ..., last_processed: _Optional[str] = ...) -> None: ...

class SessionProgressRequest(_message.Message):
    __slots__ = ("session_id", "current", "total")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    session_id: int
    current: int
    total: int
    def __init__(self, session_id: _Optional[int] = ..., current: _Optional[int] = ..., total: _Optional[int] = ...) -> None: ...

class SessionDoneRequest(_message.Message):
    __slots__ = ("session_id", "last_processed")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_PROCESSED_FIELD_NUMBER: _ClassVar[int]
    session_id: int
    last_processed: str
    def __init__(self, session_id: _Optional[int] = ..., last_processed: _Optional[str] = ...) -> None: ...

class SessionRollbackRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: int
    def __init__(self, session_id: _Optional[int] = ...) -> None: ...

class SendExportedRequest(_message.Message):
    __slots__ = ("session_id", "objects", "dedup")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    DEDUP_FIELD_NUMBER: _ClassVar[int]
    session_id: int
    objects: _containers.RepeatedScalarFieldContainer[bytes]
    dedup: bytes
    def __init__(self, session_id: _Optional[int] = ..., objects: _Optional[_Iterable[bytes]] = ..., dedup: _Optional[bytes] = ...) -> None: ...

class GitPullRequest(_message.Message):
    __slots__ = ("id", "ref_id", "url", "branch_name", "last_commit_sha")
    ID_FIELD_NUMBER: _ClassVar[int]
    REF_ID_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    BRANCH_NAME_FIELD_NUMBER: _ClassVar[int]
    LAST_COMMIT_SHA_FIELD_NUMBER: _ClassVar[int]
    id: str
    ref_id: str
    url: str
    branch_name: str
    last_commit_sha: str
    def __init__(self, id: _Optional[str] = ..., ref_id: _Optional[str] = ..., url: _Optional[str] = ..., branch_name: _Optional[str] = ..., last_commit_sha: _Optional[str] = ...) -> None: ...

class ExportGitRepoRequest(_message.Message):
    __slots__ = ("repo_id", "unique_name", "ref_type", "url", "commit_url_template", "branch_url_template", "prs", "credentials")
    REPO_ID_FIELD_NUMBER: _ClassVar[int]
    UNIQUE_NAME_FIELD_NUMBER: _ClassVar[int]
    REF_TYPE_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    COMMIT_URL_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    BRANCH_URL_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    PRS_FIELD_NUMBER: _ClassVar[int]
    CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    repo_id: str
    unique_name: str
    ref_type: str
    url: str
    commit_url_template: str
    branch_url_template: str
    prs: _containers.RepeatedCompositeFieldContainer[GitPullRequest]
    credentials: str
    def __init__(self, repo_id: _Optional[str] = ..., unique_name: _Optional[str] = ..., ref_type: _Optional[str] = ..., url: _Optional[str] = ..., commit_url_template: _Optional[str] = ..., branch_url_template: _Optional[str] = ..., prs: _Optional[_Iterable[_Union[GitPullRequest, _Mapping]]] = ..., credentials: _Optional[str] = ...) -> None: ...

class OAuthTokenResponse(_message.Message):
    __slots__ = ("token",)
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    token: str
    def __init__(self, token: _Optional[str] = ...) -> None: ...

class OAuthRefreshRequest(_message.Message):
    __slots__ = ("name", "refresh_token")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REFRESH_TOKEN_FIELD_NUMBER: _ClassVar[int]
    name: str
    refresh_token: str
    def __init__(self, name: _Optional[str] = ..., refresh_token: _Optional[str] = ...) -> None: ...

class PauseEventRequest(_message.Message):
    __slots__ = ("message", "resume_date")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RESUME_DATE_FIELD_NUMBER: _ClassVar[int]
    message: str
    resume_date: str
    def __init__(self, message: _Optional[str] = ..., resume_date: _Optional[str] = ...) -> None: ...

class ResumeEventRequest(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: str
    def __init__(self, message: _Optional[str] = ...) -> None: ...

class WebhookURLResponse(_message.Message):
    __slots__ = ("url",)
    URL_FIELD_NUMBER: _ClassVar[int]
    url: str
    def __init__(self, url: _Optional[str] = ...) -> None: ...
