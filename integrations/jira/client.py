"""The Jira REST client: one ``httpx.Client`` given to it, auth, limits, retries, pages and errors.

``JiraClient`` receives its ``httpx.Client`` (production builds it in ``make_http``; tests give one pointing
at the fake Jira, or with a ``MockTransport``), so nothing is patched globally. httpx exceptions are translated
in ``_send`` and nowhere else. Errors, grouped by what the caller should do::

    PinpointError
    ├── ConfigError           401 even after a token refresh: the credentials are wrong or expired
    ├── RetriableError        5xx/network errors still failing after the retries, or limits that never lift
    └── FatalError
        └── JiraError         any other error answer; carries status, path and Jira's errorMessages
            └── NotFound      404 (an issue deleted or hidden mid-export, an unknown key)

429 answers never surface: the client waits them out (``ratelimit.Limiter``, with pause/resume events) and
tries again, up to ``max_rate_waits`` times per request. 500/502/503/504 and network errors are retried with
tenacity (exponential backoff with jitter; a 503's ``Retry-After`` is honoured): Data Center nodes answer 503
while overloaded or restarting.
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

from integrations.jira.auth import Auth
from integrations.jira.config import JiraConfig
from integrations.jira.pagination import OffsetPaginator, TokenPaginator
from integrations.jira.ratelimit import Limiter, limited_wait
from integrations.sdk import ConfigError, FatalError, Logger, RetriableError, get_logger
from integrations.sdk.http import origin, shown_path

RETRY_STATUS = (500, 502, 503, 504)
USER_AGENT = "pinpoint-agent-jira"


class JiraError(FatalError):
    """Jira answered with an error; ``status`` and ``path`` say which and where."""

    def __init__(self, message: str, *, status: int, path: str) -> None:
        super().__init__(message)
        self.status = status
        self.path = path


class NotFound(JiraError):
    """404: the object is gone or the user may not see it."""


class _Transient(Exception):
    """A failure worth retrying (network, timeout, 5xx); only raised and caught inside this module."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class Response:
    status: int
    data: Any
    headers: httpx.Headers = field(default_factory=httpx.Headers)


def make_http(cfg: JiraConfig, transport: httpx.BaseTransport | None = None) -> httpx.Client:
    """The production ``httpx.Client``: timeouts, TLS verification (unless told otherwise), pool per host."""
    return httpx.Client(
        timeout=httpx.Timeout(cfg.timeout, connect=min(cfg.timeout, 30.0)),
        verify=not cfg.insecure_skip_verify,
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        limits=httpx.Limits(max_connections=cfg.max_requests_in_flight,
                            max_keepalive_connections=cfg.max_requests_in_flight),
        transport=transport,
        follow_redirects=False,  # a redirect to another host must not take the Authorization header along
    )


class JiraClient:
    """REST calls against one Jira (``base_url``: the site, e.g. ``https://acme.atlassian.net``)."""

    def __init__(
        self,
        http: httpx.Client,
        base_url: str,
        auth: Auth,
        *,
        limiter: Limiter | None = None,
        log: Logger | None = None,
        retries: int = 4,
        backoff: float = 0.5,
        max_rate_waits: int = 20,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.limiter = limiter or Limiter()
        self.log = log or get_logger()
        self.retries = retries
        self.backoff = backoff
        self.max_rate_waits = max_rate_waits
        self._sleep = sleep
        self._count_lock = threading.Lock()
        self.requests = 0  # HTTP requests sent, retries included
        self._origin = origin(self.base_url)

    # -- the one request path ---------------------------------------------------------------------------
    def _url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            if origin(path) != self._origin:  # never send the credentials to another server
                raise FatalError(f"Jira sent a link to another server ({origin(path)}); not following it")
            return path
        return self.base_url + path

    def _send(self, method: str, url: str, params: Mapping[str, Any] | None, body: Any) -> httpx.Response:
        """Sends one request in one of the host's slots; the only place httpx exceptions are translated."""
        headers = {"Authorization": self.auth.header()}
        if body is not None:
            headers["Content-Type"] = "application/json"
        with self._count_lock:
            self.requests += 1
        with self.limiter.slot():
            try:
                return self.http.request(method, url, params=params, headers=headers,
                                         content=orjson.dumps(body) if body is not None else None)
            except httpx.TimeoutException as exc:
                raise _Transient(f"timed out ({type(exc).__name__})") from exc
            except httpx.TransportError as exc:
                raise _Transient(f"network error ({type(exc).__name__})") from exc
            except httpx.HTTPError as exc:
                raise FatalError(f"Jira request failed: {type(exc).__name__}") from exc

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        delay = float(min(self.backoff * 2.0 ** (state.attempt_number - 1), 30.0))
        if isinstance(exc, _Transient) and exc.retry_after is not None:
            delay = min(max(delay, exc.retry_after), 120.0)
        return delay

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        self.log.warning("Jira request failed, retrying", reason=str(exc), attempt=state.attempt_number,
                         retry_in=round(state.upcoming_sleep, 2))

    def _send_retrying(self, method: str, url: str, shown: str, params: Mapping[str, Any] | None,
                       body: Any) -> httpx.Response:
        """``_send`` with retries of network errors and 5xx answers (tenacity)."""

        def attempt() -> httpx.Response:
            resp = self._send(method, url, params, body)
            if resp.status_code in RETRY_STATUS:
                retry_after = limited_wait(429, resp.headers, time.time()) if "retry-after" in resp.headers \
                    else None
                raise _Transient(f"HTTP {resp.status_code}", retry_after)
            return resp

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Transient),
            stop=tenacity.stop_after_attempt(self.retries + 1),
            wait=self._wait,
            sleep=self._sleep,
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            return retrying(attempt)
        except _Transient as exc:
            raise RetriableError(f"Jira {method} {shown}: {exc} after {self.retries + 1} tries",
                                 retry_after=60.0) from exc

    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                json: Any = None) -> Response:
        """One API call: limit waits, retries, one token refresh after a 401, and error mapping."""
        url = self._url(path)
        shown = shown_path(url, self.base_url)
        rate_waits = 0
        refreshed = False
        while True:
            resp = self._send_retrying(method, url, shown, params, json)
            self.limiter.observe(resp.headers)
            status = resp.status_code
            if status == 429:
                rate_waits += 1
                wait = limited_wait(status, resp.headers, time.time(), rate_waits) or 1.0
                if rate_waits > self.max_rate_waits:
                    raise RetriableError(f"Jira {method} {shown}: still rate limited after {rate_waits - 1} waits",
                                         retry_after=wait)
                reason = resp.headers.get("ratelimit-reason") or "rate limit"
                self.limiter.wait(wait, reason)
                continue
            if status == 401 and not refreshed and self.auth.refresh():
                refreshed = True  # an expired OAuth access token: one new token, one more try
                continue
            return self._answer(resp, method, shown)

    def _answer(self, resp: httpx.Response, method: str, shown: str) -> Response:
        status = resp.status_code
        if status == 401:
            raise ConfigError("Jira rejected the credentials (401); check the username/api_token, the "
                              "access_token or the OAuth grant")
        if status >= 400:
            text = f"Jira {method} {shown}: HTTP {status} {_message(resp)}".rstrip()
            cls = NotFound if status == 404 else JiraError
            raise cls(text, status=status, path=shown)
        if not resp.content:
            return Response(status, None, resp.headers)
        try:
            data = orjson.loads(resp.content)
        except orjson.JSONDecodeError as exc:
            raise JiraError(f"Jira {method} {shown}: the answer is not JSON", status=status, path=shown) from exc
        return Response(status, data, resp.headers)

    # -- conveniences -----------------------------------------------------------------------------------
    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params).data

    def offset_pages(self, path: str, params: Mapping[str, Any] | None = None, *, key: str | None = "values",
                     page_size: int = 100, start_at: int = 0,
                     json: Mapping[str, Any] | None = None) -> Iterator[tuple[list[Any], OffsetPaginator]]:
        """Walks a ``startAt``/``maxResults`` list; ``key`` names the items (``None``: the answer is the list).
        With ``json`` it POSTs and the paging goes in the body (Data Center's ``POST /search``)."""
        paginator = OffsetPaginator(page_size, start_at=start_at)
        while paginator.has_more:
            if json is None:
                body = self.get(path, {**(params or {}), **paginator.params()})
            else:
                body = self.request("POST", path, params=params, json={**json, **paginator.params()}).data
            items = body if key is None else (body or {}).get(key)
            items = list(items) if isinstance(items, list) else []
            paginator.advance(body, items)
            yield items, paginator

    def token_pages(self, path: str, body: Mapping[str, Any]) -> Iterator[tuple[dict[str, Any], TokenPaginator]]:
        """Walks Cloud's ``POST /search/jql`` (``nextPageToken``); yields each answer."""
        paginator = TokenPaginator()
        while paginator.has_more:
            data = self.request("POST", path, json={**body, **paginator.params()}).data or {}
            paginator.advance(data)
            yield data, paginator






def _message(resp: httpx.Response) -> str:
    """Jira's ``errorMessages``/``errors`` (or ``message``), shortened; never the request."""
    try:
        body = orjson.loads(resp.content) if resp.content else {}
    except orjson.JSONDecodeError:
        return ""
    if not isinstance(body, dict):
        return ""
    parts = [str(m) for m in body.get("errorMessages") or []]
    errors = body.get("errors")
    if isinstance(errors, dict):
        parts += [f"{k}: {v}" for k, v in errors.items()]
    if body.get("message"):
        parts.append(str(body["message"]))
    return "; ".join(parts)[:300]
