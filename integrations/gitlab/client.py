"""The GitLab API v4 client: one ``httpx.Client`` given to it, auth, rate limits, retries, pages and errors.

``GitLabClient`` receives its ``httpx.Client`` (production builds it in ``make_http``; tests give one pointing
at a fake GitLab, or a ``MockTransport``), so nothing is patched globally. httpx exceptions are translated in
``_send`` and nowhere else. Errors, grouped by what the caller should do::

    PinpointError
    ├── ConfigError           401: the token is wrong, expired or revoked (never quoted in the message)
    ├── RetriableError        5xx or network errors still failing after the retries; carries retry_after
    └── FatalError
        └── GitLabError       any other error answer; carries status and path
            ├── Forbidden     403: the token may not do this (e.g. user emails without an admin token)
            └── NotFound      404: a project deleted or hidden mid-export, an unknown merge request

Rate limits (429) never surface: the client waits through them (see ``ratelimit``) and tries again, up to
``max_rate_waits`` times per request. 5xx and network errors are retried by tenacity with exponential backoff.

Auth (``TokenAuth``): personal, group and project access tokens go in ``PRIVATE-TOKEN``; OAuth access tokens
go in ``Authorization: Bearer`` and come from a provider (the agent's ``OAuthNewAccessToken``), asked again
once when GitLab answers 401 (the token expired mid-export).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import tenacity

from integrations.gitlab.config import GitLabConfig
from integrations.gitlab.pagination import KeysetPaginator, OffsetPaginator
from integrations.gitlab.ratelimit import RateLimiter
from integrations.sdk import ConfigError, FatalError, Logger, RetriableError, get_logger
from integrations.sdk.http import origin, shown_path

RETRY_STATUS = (500, 502, 503, 504)
USER_AGENT = "pinpoint-agent-gitlab"


class GitLabError(FatalError):
    """GitLab answered with an error; ``status`` and ``path`` say which and where."""

    def __init__(self, message: str, *, status: int, path: str) -> None:
        super().__init__(message)
        self.status = status
        self.path = path


class Forbidden(GitLabError):
    """403: the token lacks the scope or the role for this."""


class NotFound(GitLabError):
    """404: the object is gone or the token may not see it."""


class TokenAuth:
    """The credential of every request: a fixed access token (``PRIVATE-TOKEN``) or an OAuth token provider
    (``Authorization: Bearer``) that is asked again after a 401."""

    def __init__(self, token: str = "", *, provider: Callable[[], str] | None = None) -> None:
        if not token and provider is None:
            raise ConfigError("gitlab: no access token and no OAuth token provider")
        self.oauth = provider is not None
        self._provider = provider
        self._token = token
        self._lock = threading.Lock()

    @property
    def token(self) -> str:
        with self._lock:
            if not self._token and self._provider is not None:
                self._token = self._provider()
            return self._token

    def headers(self) -> dict[str, str]:
        token = self.token
        return {"Authorization": f"Bearer {token}"} if self.oauth else {"PRIVATE-TOKEN": token}

    def refresh(self, rejected: str) -> bool:
        """After a 401: asks the provider for a new token; False when there is none (a fixed token)."""
        if self._provider is None:
            return False
        with self._lock:
            if self._token == rejected:  # another thread may have refreshed it already
                self._token = self._provider()
            return bool(self._token) and self._token != rejected


@dataclass
class Response:
    status: int
    data: Any
    headers: httpx.Headers = field(default_factory=httpx.Headers)


@dataclass
class Page:
    """One page of a list: its items, its answer's headers and the paginator (page counts)."""

    items: list[Any]
    headers: httpx.Headers
    paginator: OffsetPaginator | KeysetPaginator


class _Transient(Exception):
    """A failure worth retrying (network, timeout, 5xx); only ever raised and caught inside this module."""


def make_http(config: GitLabConfig) -> httpx.Client:
    """The production ``httpx.Client``: timeouts, TLS verification (unless told otherwise), a user agent.

    Redirects are not followed: a redirect to another host would carry the token there."""
    return httpx.Client(
        timeout=httpx.Timeout(config.timeout, connect=min(config.timeout, 30.0)),
        verify=not config.insecure_skip_verify,
        headers={"User-Agent": USER_AGENT},
        follow_redirects=False,
    )


class GitLabClient:
    """REST calls against one GitLab's API v4 (``api`` is ``<server>/api/v4``)."""

    def __init__(
        self,
        http: httpx.Client,
        api: str,
        auth: TokenAuth,
        *,
        limiter: RateLimiter | None = None,
        log: Logger | None = None,
        per_page: int = 100,
        retries: int = 4,
        backoff: float = 0.5,
        max_rate_waits: int = 20,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.http = http
        self.api = api.rstrip("/")
        self.auth = auth
        self.limiter = limiter or RateLimiter()
        self.log = log or get_logger()
        self.per_page = per_page
        self.retries = retries
        self.backoff = backoff
        self.max_rate_waits = max_rate_waits
        self._sleep = sleep
        self.requests = 0  # HTTP requests sent, retries included
        self._origin = origin(self.api)
        self._count = threading.Lock()

    # -- the one request loop ------------------------------------------------------------------------
    def _url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            # Next-page links come from the server; never send the token anywhere else.
            if origin(path) != self._origin:
                raise FatalError(f"GitLab sent a link to another server ({origin(path)}); not following it")
            return path
        return self.api + path

    def _send(self, method: str, url: str, params: Mapping[str, Any] | None, body: Any) -> httpx.Response:
        """Sends one request; the only place httpx exceptions are caught and translated."""
        with self._count:
            self.requests += 1
        try:
            resp = self.http.request(
                method,
                url,
                params=params,
                headers={
                    **self.auth.headers(),
                    "Accept": "application/json",
                    **({"Content-Type": "application/json"} if body is not None else {}),
                },
                content=orjson.dumps(body) if body is not None else None,
            )
        except httpx.TimeoutException as exc:
            raise _Transient(f"timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise _Transient(f"network error ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise FatalError(f"GitLab request failed: {type(exc).__name__}") from exc
        self.limiter.update(resp.headers)
        if resp.status_code in RETRY_STATUS:
            raise _Transient(f"HTTP {resp.status_code}")
        return resp

    def _send_retrying(
        self, method: str, url: str, params: Mapping[str, Any] | None, body: Any, shown: str
    ) -> httpx.Response:
        """``_send`` with tenacity retrying transient failures; the last one becomes ``RetriableError``."""

        def log_retry(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            self.log.warning(
                "GitLab request failed, retrying",
                request=f"{method} {shown}",
                reason=str(exc),
                attempt=state.attempt_number,
                retry_in=round(state.upcoming_sleep, 2),
            )

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Transient),
            stop=tenacity.stop_after_attempt(self.retries + 1),
            wait=tenacity.wait_exponential(multiplier=self.backoff, max=30.0),
            sleep=self._sleep,
            before_sleep=log_retry,
            reraise=True,
        )
        try:
            return retrying(self._send, method, url, params, body)
        except _Transient as exc:
            raise RetriableError(
                f"GitLab {method} {shown}: {exc} after {self.retries + 1} tries", retry_after=60.0
            ) from exc

    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None) -> Response:
        """One API call with rate-limit waits, retries of 5xx/network errors, one OAuth refresh and error
        mapping."""
        url = self._url(path)
        shown = shown_path(url, self.api)
        rate_waits = 0
        refreshed = False
        while True:
            while (wait := self.limiter.acquire()) > 0:
                q = self.limiter.quota
                self.limiter.wait(wait, f"rate limit reserve ({q.remaining} of {q.limit} left)")
            used = self.auth.token
            resp = self._send_retrying(method, url, params, json, shown)
            if resp.status_code == 429:
                rate_waits += 1
                limit_wait = self.limiter.answer_wait(resp.headers)
                if rate_waits > self.max_rate_waits:
                    raise RetriableError(
                        f"GitLab {method} {shown}: still rate limited after {rate_waits - 1} waits",
                        retry_after=limit_wait,
                    )
                self.limiter.wait(limit_wait, "rate limit (429)")
                continue
            if resp.status_code == 401 and not refreshed and self.auth.refresh(used):
                refreshed = True
                self.log.info("GitLab rejected the OAuth token; asked the agent for a new one")
                continue
            return self._answer(resp, method, shown)

    def _answer(self, resp: httpx.Response, method: str, shown: str) -> Response:
        status = resp.status_code
        if status == 401:
            what = "OAuth token" if self.auth.oauth else "access_token"
            raise ConfigError(f"GitLab rejected the token (401 {_message(resp) or 'Unauthorized'}); check {what}")
        if status >= 400:
            text = f"GitLab {method} {shown}: HTTP {status} {_message(resp)}".rstrip()
            cls = NotFound if status == 404 else Forbidden if status == 403 else GitLabError
            raise cls(text, status=status, path=shown)
        if not resp.content:
            return Response(status, None, resp.headers)
        try:
            data = orjson.loads(resp.content)
        except orjson.JSONDecodeError as exc:
            raise GitLabError(f"GitLab {method} {shown}: the answer is not JSON", status=status, path=shown) from exc
        return Response(status, data, resp.headers)

    # -- conveniences --------------------------------------------------------------------------------
    def get(self, path: str, *, params: Mapping[str, Any] | None = None) -> Response:
        return self.request("GET", path, params=params)

    def pages(
        self, path: str, params: Mapping[str, Any] | None = None, *, keyset: bool = False, start_page: int = 1
    ) -> Iterator[Page]:
        """Walks a list page by page (``per_page`` items): by ``X-Next-Page`` (offset), or with ``keyset`` by
        ``Link rel="next"`` (the caller passes the keyset parameters GitLab needs, e.g. ``order_by=id``)."""
        query: dict[str, Any] = {"per_page": self.per_page, **(params or {})}
        if keyset:
            query["pagination"] = "keyset"
            kp = KeysetPaginator()
            q: dict[str, Any] | None
            url, q = path, query  # dict[str, Any] | None: a next link carries its whole query
            while True:
                resp = self.get(url, params=q)
                kp.advance(resp.headers)
                yield Page(_items(resp), resp.headers, kp)
                if kp.next_url is None:
                    return
                url, q = kp.next_url, None
        op = OffsetPaginator(start_page)
        while op.next_page is not None:
            resp = self.get(path, params={**query, "page": op.next_page})
            op.advance(resp.headers)
            yield Page(_items(resp), resp.headers, op)

    def all(self, path: str, params: Mapping[str, Any] | None = None, *, keyset: bool = False) -> list[Any]:
        return [item for page in self.pages(path, params, keyset=keyset) for item in page.items]


def _items(resp: Response) -> list[Any]:
    return resp.data if isinstance(resp.data, list) else []






def _message(resp: httpx.Response) -> str:
    """GitLab's error text: ``{"message": …}`` (a string or a dict of field errors) or ``{"error": …}``."""
    try:
        body = orjson.loads(resp.content) if resp.content else {}
    except orjson.JSONDecodeError:
        return ""
    if not isinstance(body, dict):
        return ""
    msg = body.get("message", body.get("error", ""))
    return str(msg if not isinstance(msg, dict | list) else orjson.dumps(msg).decode())[:300]
