"""How requests to Jira are signed: one ``Authorization`` header value, from a fixed credential or a provider.

- ``StaticAuth``: Cloud e-mail + API token or Data Center user + password (``Basic``), or a Data Center
  personal access token (``Bearer``). Built from the config's ``SecretStr`` fields, here and nowhere else.
- ``TokenAuth``: OAuth 2.0 (3LO) access tokens from a provider callable (the plugin passes the agent's
  ``OAuthNewAccessToken`` callback). The token is cached; after a 401 the client calls ``refresh()`` once and
  retries, so an expired token costs one extra request, not a failed export.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from typing import Protocol

from integrations.jira.config import AuthMode, JiraConfig

TokenProvider = Callable[[], str]


class Auth(Protocol):
    def header(self) -> str:
        """The ``Authorization`` header value."""
        ...

    def refresh(self) -> bool:
        """Gets a new credential after a 401; False when there is nothing to refresh."""
        ...


class StaticAuth:
    def __init__(self, value: str) -> None:
        self._value = value

    def header(self) -> str:
        return self._value

    def refresh(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "StaticAuth(***)"


class TokenAuth:
    """Bearer tokens from ``provider``; thread-safe, one refresh at a time."""

    def __init__(self, provider: TokenProvider) -> None:
        self._provider = provider
        self._token = ""
        self._lock = threading.Lock()
        self.refreshes = 0

    def header(self) -> str:
        with self._lock:
            if not self._token:
                self._token = self._provider()
            return f"Bearer {self._token}"

    def refresh(self) -> bool:
        with self._lock:
            old = self._token
            self._token = self._provider()
            self.refreshes += 1
            return bool(self._token) and self._token != old

    def __repr__(self) -> str:
        return "TokenAuth(***)"


def basic(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


def make_auth(cfg: JiraConfig, token_provider: TokenProvider | None = None) -> Auth:
    """The auth the config asks for; OAuth needs ``token_provider``."""
    if cfg.auth_mode == AuthMode.OAUTH:
        if token_provider is None:
            raise ValueError("OAuth needs a token provider")
        return TokenAuth(token_provider)
    if cfg.auth_mode == AuthMode.PAT:
        return StaticAuth(f"Bearer {cfg.access_token.get_secret_value()}")
    secret = cfg.api_token.get_secret_value() or cfg.password.get_secret_value()
    return StaticAuth(basic(cfg.username, secret))
