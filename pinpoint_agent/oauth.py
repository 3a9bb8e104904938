"""OAuth access tokens for an integration whose entry holds a refresh token (the agent keeps it; the plugin
only ever sees access tokens, through the ``OAuthNewAccessToken`` callback).

The exchange is the original agent's (REFERENCE: ``OAuthNewAccessTokenFromRefreshToken``):
``GET <oauth_url>/oauth/<backend name>/refresh/<refresh token, path-escaped>`` answers
``{"access_token": "…"}``. The backend names a few integrations differently (``jira-cloud`` is ``jira``,
``gcal`` is ``gsuite``); the others go by their own name.

The refresh token travels in the url's path, so the url is never logged nor put in an error: errors name the
integration and the HTTP status only. Both tokens are registered with the log redactor. Network errors and
5xx are retried (tenacity) and then raised as ``RetriableError``; any other answer is a ``ConfigError`` (the
refresh token was revoked or the integration was disconnected).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from urllib.parse import quote

import httpx
import orjson
import tenacity

from pinpoint_agent.errors import ConfigError, RetriableError
from pinpoint_agent.log import register_secret

__all__ = ["BACKEND_NAMES", "OAuthTokens"]

BACKEND_NAMES = {"jira-cloud": "jira", "jira-hosted": "jira", "gcal": "gsuite"}


class _Transient(Exception):
    """Worth another try (network, timeout, 5xx); raised and caught only in this module."""


class OAuthTokens:
    """Hands out access tokens for one integration entry: ``access_token()`` asks the OAuth service each time
    (a plugin asks again only when the token it has was rejected)."""

    def __init__(
        self,
        integration: str,
        refresh_token: str,
        oauth_url: str,
        *,
        http: httpx.Client | None = None,
        attempts: int = 4,
        backoff: float = 0.5,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        if not oauth_url:
            raise ConfigError(
                f"{integration}: the entry uses OAuth but the agent config has neither oauth_url nor backend_url"
            )
        register_secret(refresh_token)
        self.integration = integration
        self._url = (
            f"{oauth_url.rstrip('/')}/oauth/{BACKEND_NAMES.get(integration, integration)}/refresh/"
            f"{quote(refresh_token, safe='')}"
        )
        self._http = http  # None: a client per exchange (they are rare: one per rejected token)
        self._attempts, self._backoff = attempts, backoff
        self._sleep = sleep
        self._lock = threading.Lock()
        self.issued = 0  # access tokens handed out, for logs and tests

    def _ask(self) -> str:
        """One request; the only place httpx errors are caught here (translated without the url)."""
        try:
            if self._http is not None:
                resp = self._http.get(self._url, headers={"Accept": "application/json"})
            else:
                with httpx.Client(timeout=httpx.Timeout(30.0, connect=10.0), follow_redirects=False) as http:
                    resp = http.get(self._url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise _Transient(type(exc).__name__) from None  # the exception's text holds the url
        if resp.status_code >= 500:
            raise _Transient(f"HTTP {resp.status_code}")
        if resp.status_code != 200:
            raise ConfigError(
                f"{self.integration}: the OAuth service refused the refresh token (HTTP {resp.status_code}); "
                "connect the integration again"
            )
        try:
            token = orjson.loads(resp.content).get("access_token")
        except (orjson.JSONDecodeError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise ConfigError(f"{self.integration}: the OAuth service answered without an access_token")
        return token

    def access_token(self) -> str:
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Transient),
            stop=tenacity.stop_after_attempt(self._attempts),
            wait=tenacity.wait_exponential(multiplier=self._backoff, max=10.0),
            sleep=self._sleep or time.sleep,
            reraise=True,
        )
        with self._lock:
            try:
                token = retrying(self._ask)
            except _Transient as exc:
                raise RetriableError(
                    f"{self.integration}: the OAuth service is unavailable ({exc} after {self._attempts} tries)",
                    retry_after=60.0,
                ) from None
            register_secret(token)
            self.issued += 1
            return token
