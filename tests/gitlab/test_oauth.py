"""The agent's side of OAuth (``pinpoint_agent.oauth``): an entry's refresh token is exchanged at the OAuth
service for access tokens the gitlab plugin asks for; the refresh token never reaches the plugin, a log, an
error or a file."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from pinpoint_agent.errors import ConfigError, RetriableError
from pinpoint_agent.oauth import OAuthTokens
from tests.github.test_cli import every_file_text
from tests.gitlab.conftest import agent_export
from tests.gitlab.fake_gitlab import OAUTH_TOKEN, FakeGitLab

REFRESH = "refresh/TOKEN+with?odd=chars-SECRET"


class FakeOAuthService:
    """``GET /oauth/<name>/refresh/<token>`` -> ``{"access_token"}`` from ``tokens`` (in order, the last one
    repeated); ``fail`` queues statuses to answer first. Requests are recorded as (name, refresh token)."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = list(tokens)
        self.fail: list[int] = []
        self.requests: list[tuple[str, str]] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                from urllib.parse import unquote

                parts = self.path.split("/")  # "", "oauth", name, "refresh", token
                service.requests.append((parts[2], unquote(parts[4])))
                status = service.fail.pop(0) if service.fail else 200
                if status == 200 and unquote(parts[4]) != REFRESH:
                    status = 401
                if status == 200:
                    token = service.tokens.pop(0) if len(service.tokens) > 1 else service.tokens[0]
                    body = orjson.dumps({"access_token": token})
                else:
                    body = orjson.dumps({"error": "invalid_grant"})
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeOAuthService:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def oauth_service() -> Iterator[FakeOAuthService]:
    with FakeOAuthService(["oauth-EXPIRED", OAUTH_TOKEN]) as s:
        yield s


def test_exchange_retries_5xx_and_names_the_backend_integration(oauth_service: FakeOAuthService) -> None:
    """Two 502s are retried; the path names the backend's integration name and carries the escaped token."""
    oauth_service.fail = [502, 502]
    tokens = OAuthTokens("gitlab", REFRESH, oauth_service.url + "/", sleep=lambda s: None)
    assert tokens.access_token() == "oauth-EXPIRED"
    assert oauth_service.requests == [("gitlab", REFRESH)] * 3
    OAuthTokens("jira-cloud", REFRESH, oauth_service.url).access_token()
    assert oauth_service.requests[-1][0] == "jira"


def test_exchange_errors_never_show_the_refresh_token(oauth_service: FakeOAuthService) -> None:
    """A refused refresh token is a ConfigError, a service down a RetriableError; neither message holds the
    refresh token or the url."""
    with pytest.raises(ConfigError, match="refused the refresh token \\(HTTP 401\\)") as refused:
        OAuthTokens("gitlab", "other-SECRET", oauth_service.url).access_token()
    oauth_service.fail = [503] * 4
    with pytest.raises(RetriableError, match="HTTP 503 after 4 tries") as down:
        OAuthTokens("gitlab", REFRESH, oauth_service.url, sleep=lambda s: None).access_token()
    with pytest.raises(RetriableError, match="ConnectError") as gone:
        OAuthTokens("gitlab", REFRESH, "http://127.0.0.1:9", attempts=1).access_token()
    for err in (refused, down, gone):
        assert "SECRET" not in str(err.value) and "/oauth/" not in str(err.value)
    with pytest.raises(ConfigError, match="neither oauth_url nor backend_url"):
        OAuthTokens("gitlab", REFRESH, "")


def test_an_oauth_export_end_to_end(
    fake: FakeGitLab, oauth_service: FakeOAuthService, gl_config: dict[str, Any], agent_root: Path
) -> None:
    """An entry with a refresh token: the plugin asks the agent, the agent asks the OAuth service (oauth_url),
    GitLab rejects the first (expired) token, the plugin asks again and the export completes with Bearer
    tokens; the refresh token is in no file under the root and not in the result."""
    cfg = {k: v for k, v in gl_config.items() if k != "access_token"}
    run = agent_export(agent_root, cfg, use_oauth=True, refresh_token=REFRESH, agent={"oauth_url": oauth_service.url})
    assert run.integration["error"] == ""
    assert len(oauth_service.requests) == 2 and {r.auth for r in fake.requests} == {"bearer"}
    assert len(run.objects["sourcecode.PullRequest"]) == 10
    text = every_file_text(agent_root) + orjson.dumps(run.result).decode()
    assert REFRESH not in text and "TOKEN+with" not in text


def test_an_oauth_export_without_an_oauth_service_says_so(
    fake: FakeGitLab, gl_config: dict[str, Any], agent_root: Path
) -> None:
    """No oauth_url and no backend_url: the export fails with one clear error, and GitLab is never called
    with a made-up token."""
    cfg = {k: v for k, v in gl_config.items() if k != "access_token"}
    run = agent_export(agent_root, cfg, use_oauth=True, refresh_token=REFRESH)
    assert "neither oauth_url nor backend_url" in run.integration["error"]
    assert fake.requests == []
