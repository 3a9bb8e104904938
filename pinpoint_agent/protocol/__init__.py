"""The plugin wire protocol: the only package that imports the generated gRPC code (``_gen``).

Both sides use it: the agent's plugin host (``pinpoint_agent.host``) and the integration SDK
(``integrations.sdk``). What the rest of the code sees are the hand-written types in ``wire``.
"""

from pinpoint_agent.protocol.handshake import (
    APP_PROTOCOL_VERSION,
    CORE_PROTOCOL_VERSION,
    MAGIC_COOKIE_KEY,
    MAGIC_COOKIE_VALUE,
    Handshake,
    parse_handshake,
)
from pinpoint_agent.protocol.wire import (
    CallConfig,
    ExportProject,
    ExportResult,
    GitPullRequest,
    GitRepoRequest,
    IntegrationConfig,
    IntegrationType,
    MutateResult,
    OnboardObjectType,
    OnboardResult,
    ValidateResult,
    WebhookResult,
    error_from_proto,
    error_to_proto,
)

__all__ = [
    "APP_PROTOCOL_VERSION",
    "CORE_PROTOCOL_VERSION",
    "MAGIC_COOKIE_KEY",
    "MAGIC_COOKIE_VALUE",
    "CallConfig",
    "ExportProject",
    "ExportResult",
    "GitPullRequest",
    "GitRepoRequest",
    "Handshake",
    "IntegrationConfig",
    "IntegrationType",
    "MutateResult",
    "OnboardObjectType",
    "OnboardResult",
    "ValidateResult",
    "WebhookResult",
    "error_from_proto",
    "error_to_proto",
    "parse_handshake",
]
