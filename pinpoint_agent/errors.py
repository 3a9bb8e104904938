"""One error tree for the agent and the integrations, grouped by what the caller should do.

    PinpointError
    ├── ConfigError            bad input or configuration: say it in one line, exit 1, do not retry
    ├── NotSupportedError      the integration does not offer this call or variant
    ├── RetriableError         try again later; carries ``retry_after`` (seconds) when known
    └── FatalError             the operation failed; report it, do not retry
        ├── PluginError        an integration process misbehaved; carries ``integration``
        │   ├── PluginStartError   missing binary, bad handshake, garbage on stdout, health check failed
        │   ├── PluginCrashed      non-zero exit, signal or traceback; carries ``exit_code``
        │   └── PluginTimeout      no answer (or no callback) in time; the process was killed
        ├── SessionError       a session callback broke the protocol (unknown id, send on tracking…)
        └── StateError         the state store is unusable

The same kinds cross the plugin wire (``pinpoint.agent.v1.Error.Kind``); ``protocol.wire`` maps them.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "FatalError",
    "NotSupportedError",
    "PinpointError",
    "PluginCrashed",
    "PluginError",
    "PluginStartError",
    "PluginTimeout",
    "RetriableError",
    "SessionError",
    "StateError",
]


class PinpointError(Exception):
    """Base of every error the agent raises on purpose."""


class ConfigError(PinpointError):
    """Bad input or configuration; the message is one line meant for the user."""


class NotSupportedError(PinpointError):
    """The integration does not implement the call or the variant asked for."""


class RetriableError(PinpointError):
    """A temporary failure; ``retry_after`` is the wait in seconds the source asked for, if any."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class FatalError(PinpointError):
    """The operation failed and retrying will not help."""


class PluginError(FatalError):
    """An integration process failed; ``integration`` is its display key ``name@TYPE@id``."""

    def __init__(self, integration: str, message: str) -> None:
        super().__init__(f"integration {integration}: {message}")
        self.integration = integration
        self.reason = message


class PluginStartError(PluginError):
    """The plugin could not be started or did not complete the handshake."""


class PluginCrashed(PluginError):
    """The plugin process died; ``exit_code`` is negative for a signal."""

    def __init__(self, integration: str, message: str, exit_code: int | None = None) -> None:
        super().__init__(integration, message)
        self.exit_code = exit_code


class PluginTimeout(PluginError):
    """The plugin did not answer in time and was stopped."""


class SessionError(FatalError):
    """A session callback broke the session rules."""


class StateError(FatalError):
    """The state store cannot be read or written."""
