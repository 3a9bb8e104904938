"""The GitHub API client: one ``httpx.Client`` given to it, auth, quotas, retries, pages and errors.

``GitHubClient`` receives its ``httpx.Client`` (production builds it in ``make_http``; tests give one
pointing at a fake GitHub), so nothing is patched globally. httpx exceptions are translated in
``_send`` and nowhere else. Errors, grouped by what the caller should do::

    PinpointError
    ├── ConfigError           401: the token is wrong or expired (never quoted in the message)
    ├── RetriableError        5xx or network errors still failing after the retries; carries retry_after
    └── FatalError
        └── GitHubError       any other error answer; carries status and path
            └── NotFound      404 (a repo deleted or hidden mid-export, an unknown pull request)

Rate limits (403/429 answers that are limits) never surface: the client waits through them (see
``ratelimit``) and tries again, up to ``max_rate_waits`` times per request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from integrations.github.config import ApiUrls, GitHubConfig
from integrations.github.pagination import CursorPaginator, LinkPaginator
from integrations.github.ratelimit import RateLimiter
from integrations.sdk import ConfigError, FatalError, Logger, RetriableError, get_logger
from integrations.sdk.http import origin, shown_path

RETRY_STATUS = (500, 502, 503, 504)
USER_AGENT = "pinpoint-agent-github"


class GitHubError(FatalError):
    """GitHub answered with an error; ``status`` and ``path`` say which and where."""

    def __init__(self, message: str, *, status: int, path: str) -> None:
        super().__init__(message)
        self.status = status
        self.path = path


class NotFound(GitHubError):
    """404: the object is gone or the token may not see it."""


@dataclass
class Response:
    status: int
    data: Any
    headers: httpx.Headers = field(default_factory=httpx.Headers)

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def etag(self) -> str:
        return str(self.headers.get("etag", ""))


@dataclass
class Page:
    """One page of a list: its items, its answer's headers and the paginator (page counts)."""

    items: list[Any]
    headers: httpx.Headers
    paginator: LinkPaginator
    not_modified: bool = False


class _Transient(Exception):
    """A failure worth retrying (network, timeout, 5xx); only ever raised and caught inside this module."""


def make_http(config: GitHubConfig) -> httpx.Client:
    """The production ``httpx.Client``: timeouts, TLS verification (unless told otherwise), a user agent."""
    return httpx.Client(
        timeout=httpx.Timeout(config.timeout, connect=min(config.timeout, 30.0)),
        verify=not config.insecure_skip_verify,
        headers={"User-Agent": USER_AGENT},
        follow_redirects=True,
    )


class GitHubClient:
    """REST v3 and GraphQL v4 calls against one GitHub (public or Enterprise)."""

    def __init__(
        self,
        http: httpx.Client,
        api: ApiUrls,
        token: str | Callable[[], str],
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
        self.api = api
        self._token = token
        self.limiter = limiter or RateLimiter()
        self.log = log or get_logger()
        self.per_page = per_page
        self.retries = retries
        self.backoff = backoff
        self.max_rate_waits = max_rate_waits
        self._sleep = sleep
        self.requests = 0  # HTTP requests sent, retries included
        self._origin = origin(api.rest)

    # -- the one request loop ------------------------------------------------------------------------
    def _url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            # Next-page links come from the server; never send the token anywhere else.
            if origin(path) != self._origin:
                raise FatalError(f"GitHub sent a link to another server ({origin(path)}); not following it")
            return path
        return self.api.rest + path

    def _headers(self, etag: str | None) -> dict[str, str]:
        token = self._token() if callable(self._token) else self._token
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }
        if etag:
            headers["If-None-Match"] = etag
        return headers

    def _send(
        self, method: str, url: str, params: Mapping[str, Any] | None, body: Any, etag: str | None
    ) -> httpx.Response:
        """Sends one request; the only place httpx exceptions are caught and translated."""
        self.requests += 1
        try:
            return self.http.request(
                method,
                url,
                params=params,
                headers=self._headers(etag),
                content=orjson.dumps(body) if body is not None else None,
            )
        except httpx.TimeoutException as exc:
            raise _Transient(f"timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise _Transient(f"network error ({type(exc).__name__}: {exc})") from exc
        except httpx.HTTPError as exc:
            raise FatalError(f"GitHub request failed: {type(exc).__name__}: {exc}") from exc

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        etag: str | None = None,
        resource: str = "core",
    ) -> Response:
        """One API call with quota waits, retries of 5xx/network errors (with backoff) and error mapping."""
        url = self._url(path)
        shown = shown_path(url, self.api.rest)
        failures = rate_waits = 0
        while True:
            while (wait := self.limiter.acquire(resource)) > 0:
                q = self.limiter.quota(resource)
                self.limiter.wait(wait, f"rate limit reserve ({resource}: {q.remaining} of {q.limit} left)")
            try:
                resp = self._send(method, url, params, json, etag)
            except _Transient as exc:
                failures += 1
                if failures > self.retries:
                    raise RetriableError(
                        f"GitHub {method} {shown}: {exc} after {failures} tries", retry_after=60.0
                    ) from exc
                self._backoff(failures, method, shown, str(exc))
                continue
            resource = self.limiter.update(resource, resp.headers)
            status = resp.status_code
            if status in RETRY_STATUS:
                failures += 1
                if failures > self.retries:
                    raise RetriableError(
                        f"GitHub {method} {shown}: HTTP {status} after {failures} tries", retry_after=60.0
                    )
                self._backoff(failures, method, shown, f"HTTP {status}")
                continue
            if status in (403, 429):
                limit_wait = self.limiter.answer_wait(resource, status, resp.headers, _message(resp))
                if limit_wait is not None:
                    rate_waits += 1
                    if rate_waits > self.max_rate_waits:
                        raise RetriableError(
                            f"GitHub {method} {shown}: still rate limited after {rate_waits - 1} waits",
                            retry_after=limit_wait,
                        )
                    kind = (
                        "secondary rate limit"
                        if resp.headers.get("x-ratelimit-remaining") != "0"
                        else "rate limit"
                    )
                    self.limiter.wait(limit_wait, f"{kind} ({resource})")
                    continue
            return self._answer(resp, method, shown)

    def _backoff(self, failures: int, method: str, shown: str, reason: str) -> None:
        delay = min(self.backoff * 2 ** (failures - 1), 30.0)
        self.log.warning(
            "GitHub request failed, retrying",
            request=f"{method} {shown}",
            reason=reason,
            attempt=failures,
            retry_in=delay,
        )
        self._sleep(delay)

    def _answer(self, resp: httpx.Response, method: str, shown: str) -> Response:
        status = resp.status_code
        if status == 304:
            return Response(304, None, resp.headers)
        if status == 401:
            raise ConfigError(
                f"GitHub rejected the token (401 {_message(resp) or 'Bad credentials'}); check api_key"
            )
        if status >= 400:
            text = f"GitHub {method} {shown}: HTTP {status} {_message(resp)}".rstrip()
            cls = NotFound if status == 404 else GitHubError
            raise cls(text, status=status, path=shown)
        if not resp.content:
            return Response(status, None, resp.headers)
        try:
            data = orjson.loads(resp.content)
        except orjson.JSONDecodeError as exc:
            raise GitHubError(
                f"GitHub {method} {shown}: the answer is not JSON", status=status, path=shown
            ) from exc
        return Response(status, data, resp.headers)

    # -- conveniences --------------------------------------------------------------------------------
    def get(self, path: str, *, params: Mapping[str, Any] | None = None, etag: str | None = None) -> Response:
        return self.request("GET", path, params=params, etag=etag)

    def pages(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        etag: str | None = None,
        start_page: int = 1,
    ) -> Iterator[Page]:
        """Walks a REST list page by page (``per_page`` items); ``etag`` is sent for the first page only,
        and a 304 ends the walk with one empty ``not_modified`` page."""
        query = {"per_page": self.per_page, **(params or {})}
        if start_page > 1:
            query["page"] = start_page
        first = self._url(path)
        paginator = LinkPaginator(first)
        url: str | None = first
        while url is not None:
            resp = self.request(
                "GET", url, params=query if url == first else None, etag=etag if url == first else None
            )
            if resp.not_modified:
                yield Page([], resp.headers, paginator, not_modified=True)
                return
            paginator.advance(resp.headers)
            items = resp.data if isinstance(resp.data, list) else []
            yield Page(items, resp.headers, paginator)
            url = paginator.next_url

    def graphql(self, query: str, variables: Mapping[str, Any]) -> Any:
        """One GraphQL query; GraphQL errors become ``NotFound``/``GitHubError``."""
        resp = self.request(
            "POST", self.api.graphql, json={"query": query, "variables": dict(variables)}, resource="graphql"
        )
        body = resp.data if isinstance(resp.data, dict) else {}
        errors = body.get("errors") or []
        if errors:
            first = errors[0] if isinstance(errors[0], dict) else {}
            text = f"GitHub GraphQL: {first.get('message', 'error')}"
            cls = NotFound if first.get("type") == "NOT_FOUND" else GitHubError
            raise cls(text, status=resp.status, path="graphql")
        return body.get("data")

    def graphql_nodes(
        self, query: str, variables: Mapping[str, Any], connection: Callable[[Any], Mapping[str, Any]]
    ) -> Iterator[list[Any]]:
        """Walks a GraphQL connection (``first``/``after``); ``connection`` picks it out of ``data``."""
        paginator = CursorPaginator()
        while paginator.has_more:
            data = self.graphql(query, {**variables, "first": self.per_page, "after": paginator.after})
            conn = connection(data) or {}
            paginator.advance(conn.get("pageInfo") or {})
            yield list(conn.get("nodes") or [])






def _message(resp: httpx.Response) -> str:
    try:
        body = orjson.loads(resp.content) if resp.content else {}
    except orjson.JSONDecodeError:
        return ""
    return str(body.get("message", "")) if isinstance(body, dict) else ""
