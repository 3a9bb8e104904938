"""HTTP plumbing shared by every backend call: the client factory, the one place where httpx
exceptions and HTTP statuses become our error tree, url redaction and the retry policy.

Nothing outside this module catches ``httpx`` exceptions.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
import tenacity
from pydantic import SecretStr

from pinpoint_agent import __version__
from pinpoint_agent.backend._errors import BackendRejected, BackendUnavailable

__all__ = ["AGENT_VERSION", "BackendCredentials", "RetryPolicy", "make_client", "redact_url", "send", "with_retries"]

AGENT_VERSION = __version__
_DETAIL_LIMIT = 300
_T = TypeVar("_T")


def redact_url(url: str | httpx.URL) -> str:
    """Return ``url`` without user info, query string and fragment (where presigned tokens live)."""
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    redacted = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    return redacted + ("?…" if parts.query else "")


def _origin(url: str | httpx.URL) -> tuple[str, str, int | None]:
    u = httpx.URL(str(url))
    return (u.scheme, u.host, u.port)


class _ApiKeyAuth(httpx.Auth):
    """Adds ``Authorization: <api key>`` (as the original agent did) to requests for the backend's origin
    only, so that an upload url on another host (e.g. a presigned bucket) never receives the key."""

    def __init__(self, api_key: str, backend_url: str) -> None:
        self._api_key = api_key
        self._origin = _origin(backend_url)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if _origin(request.url) == self._origin:
            request.headers["Authorization"] = self._api_key
        yield request


class BackendCredentials(Protocol):
    """Where the backend is and the key it issued: an ``EnrolledConfig`` or a ``BackendTarget``."""

    @property
    def api_key(self) -> SecretStr: ...

    @property
    def backend_url(self) -> str: ...


def make_client(
    config: BackendCredentials | None = None,
    *,
    timeout: httpx.Timeout | float | None = None,
    transport: httpx.BaseTransport | None = None,
) -> httpx.Client:
    """Build the production ``httpx.Client``: timeouts, user agent, and the api key of ``config`` (when given)
    in the ``Authorization`` header of requests to the backend's origin. ``enroll`` runs with no config."""
    if timeout is None:
        timeout = httpx.Timeout(60.0, connect=10.0)
    auth = _ApiKeyAuth(config.api_key.get_secret_value(), config.backend_url) if config else None
    return httpx.Client(
        timeout=timeout,
        auth=auth,
        transport=transport,
        headers={"User-Agent": f"pinpoint-agent/{AGENT_VERSION}"},
        follow_redirects=False,
    )


def _scrub(text: str, request: httpx.Request) -> str:
    """Remove the request's url (replaced by its redacted form) and its credential from ``text``."""
    text = text.replace(str(request.url), redact_url(request.url))
    secret = request.headers.get("Authorization")
    if secret:
        text = text.replace(secret, "<redacted>")
    return text


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def send(client: httpx.Client, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """Send one request and return its 2xx response (body read), or raise from our error tree.

    Network errors, timeouts, 5xx, 408 and 429 raise ``BackendUnavailable``; other statuses raise
    ``BackendRejected``. This is the only place that translates ``httpx`` exceptions.
    """
    shown = redact_url(url)
    try:
        response = client.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        raise BackendUnavailable(
            f"backend timed out on {method} {shown}: {_scrub(str(exc), exc.request)}", url=shown
        ) from exc
    except httpx.TransportError as exc:
        reason = _scrub(str(exc), exc.request) or type(exc).__name__
        raise BackendUnavailable(f"backend unreachable on {method} {shown}: {reason}", url=shown) from exc
    except httpx.InvalidURL as exc:
        raise BackendRejected(f"invalid url {shown}: {exc}", url=shown, status=0) from exc
    status = response.status_code
    if 200 <= status < 300:
        return response
    detail = _scrub(response.text[:_DETAIL_LIMIT].strip(), response.request)
    if status >= 500 or status in (408, 429):
        raise BackendUnavailable(
            f"backend answered HTTP {status} on {method} {shown}" + (f": {detail}" if detail else ""),
            url=shown,
            status=status,
            retry_after=_retry_after(response),
        )
    raise BackendRejected(
        f"backend rejected {method} {shown} with HTTP {status}" + (f": {detail}" if detail else ""),
        url=shown,
        status=status,
        detail=detail,
    )


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry ``BackendUnavailable``.

    Waits grow exponentially from ``initial`` to ``maximum`` seconds with jitter; a ``Retry-After`` given by
    the backend is honoured up to ``maximum``. ``attempts`` counts the first try.
    """

    attempts: int = 5
    initial: float = 0.5
    maximum: float = 30.0

    def wait(self, retry_state: tenacity.RetryCallState) -> float:
        """Seconds to sleep before the next attempt (tenacity ``wait`` callable)."""
        backoff = tenacity.wait_exponential_jitter(
            multiplier=self.initial, max=self.maximum, jitter=self.initial
        )(retry_state)
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        if isinstance(exc, BackendUnavailable) and exc.retry_after is not None:
            return min(self.maximum, max(backoff, exc.retry_after))
        return float(backoff)


DEFAULT_RETRY = RetryPolicy()  # uploads, result reports and forwarding calls


def with_retries(policy: RetryPolicy, fn: Callable[[], _T]) -> _T:
    """Call ``fn`` until it succeeds, retrying only ``BackendUnavailable``; re-raise the last error."""
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(BackendUnavailable),
        stop=tenacity.stop_after_attempt(max(1, policy.attempts)),
        wait=policy.wait,
        reraise=True,
    )
    return retrying(fn)
