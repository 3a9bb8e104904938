"""The agent's side of OAuth for GitLab (``pinpoint_agent.host.callbacks.BackendOAuth``): an entry's refresh
token is exchanged at the backend's refresh endpoint for the access tokens the gitlab plugin asks for; the
refresh token never reaches the plugin, a log, an error or a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from pinpoint_agent.testing.fake_backend import FakeBackend
from tests.github.test_cli import every_file_text
from tests.gitlab.conftest import agent_export
from tests.gitlab.fake_gitlab import OAUTH_TOKEN, FakeGitLab

REFRESH = "refresh/TOKEN+with?odd=chars-SECRET"


def test_an_oauth_export_end_to_end(fake: FakeGitLab, gl_config: dict[str, Any], agent_root: Path) -> None:
    """An entry with a refresh token: the plugin asks the agent, the agent asks the backend's refresh
    endpoint (with its api key), GitLab rejects the first (expired) token, the plugin asks again and the export
    completes with Bearer tokens; the refresh token is in no file under the root and not in the result."""
    cfg = {k: v for k, v in gl_config.items() if k != "access_token"}
    with FakeBackend() as backend:
        backend.oauth_grant("gitlab", REFRESH, ["oauth-EXPIRED", OAUTH_TOKEN])
        run = agent_export(agent_root, cfg, use_oauth=True, refresh_token=REFRESH,
                           agent={"backend_url": backend.url, "api_key": backend.api_key})
        refreshes = [r for r in backend.requests if r.path.startswith("/oauth/gitlab/refresh/")]
    assert run.integration["error"] == ""
    assert len(refreshes) == 2 and {r.auth for r in fake.requests} == {"bearer"}
    assert all(r.headers.get("Authorization") == backend.api_key for r in refreshes)
    assert len(run.objects["sourcecode.PullRequest"]) == 10
    text = every_file_text(agent_root) + orjson.dumps(run.result).decode()
    assert REFRESH not in text and "TOKEN+with" not in text


def test_an_oauth_export_without_a_backend_says_so(fake: FakeGitLab, gl_config: dict[str, Any],
                                                   agent_root: Path) -> None:
    """No backend to refresh at: the export fails with one clear error, and GitLab is never called with a
    made-up token."""
    cfg = {k: v for k, v in gl_config.items() if k != "access_token"}
    run = agent_export(agent_root, cfg, use_oauth=True, refresh_token=REFRESH)
    assert "not configured for OAuth" in run.integration["error"]
    assert fake.requests == []
