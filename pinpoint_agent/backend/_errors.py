"""The backend client's error tree, grouped by what the caller should do.

```
BackendError                    base of everything this package raises
├── ConfigError                 bad local input or config (missing, corrupt, wrong mode, already enrolled):
│                               fix it and rerun; the CLI prints one line and exits 1
├── BackendUnavailable          retriable: network error, timeout, 5xx, 408, 429; carries ``retry_after``
├── BackendRejected             the backend said no (4xx): fatal, retrying will not help
│   └── EnrollCodeRejected      the enroll code is unknown, used or expired
└── UploadVerificationFailed    the upload server stored a different number of bytes than were sent
```

Each class also derives from the matching class of the agent-wide tree in ``pinpoint_agent.errors``
(``PinpointError``: ``ConfigError``, ``RetriableError``, ``FatalError``), so the CLI's one-line handling and
any ``except RetriableError`` see these errors too.

Every error that concerns a request carries ``url``: the request url with user info, query string and
fragment removed, so that a presigned token never reaches a log or a terminal. The api key travels only in
the ``Authorization`` header and never appears in an error's text.
"""

from __future__ import annotations

from pinpoint_agent import errors as _agent

__all__ = [
    "BackendError",
    "BackendRejected",
    "BackendUnavailable",
    "ConfigError",
    "EnrollCodeRejected",
    "UploadVerificationFailed",
]


class BackendError(_agent.PinpointError):
    """Base class of every error raised by ``pinpoint_agent.backend``."""


class ConfigError(BackendError, _agent.ConfigError):
    """Local input or configuration is wrong; the user has to fix it (exit 1)."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class BackendUnavailable(BackendError, _agent.RetriableError):
    """The backend could not be reached or answered 5xx/408/429; trying again later may succeed."""

    def __init__(
        self,
        message: str,
        *,
        url: str,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.url = url
        self.status = status
        self.retry_after = retry_after


class BackendRejected(BackendError, _agent.FatalError):
    """The backend refused the request with a 4xx answer; retrying the same request will not help."""

    def __init__(self, message: str, *, url: str, status: int, detail: str = "") -> None:
        super().__init__(message)
        self.url = url
        self.status = status
        self.detail = detail


class EnrollCodeRejected(BackendRejected):
    """The backend refused the enroll code (unknown, already used or expired)."""


class UploadVerificationFailed(BackendError, _agent.FatalError):
    """The size the upload server reports having stored differs from what was sent."""

    def __init__(
        self, message: str, *, url: str, part: int | None, expected: int, stored: int | None
    ) -> None:
        super().__init__(message)
        self.url = url
        self.part = part
        self.expected = expected
        self.stored = stored
