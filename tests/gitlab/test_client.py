"""The API client in-process against the fake GitLab (httpx MockTransport only for what a server cannot fake)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from integrations.gitlab import endpoints as ep
from integrations.gitlab.client import Forbidden, GitLabClient, NotFound, TokenAuth
from integrations.gitlab.ratelimit import RateLimiter
from integrations.sdk.pagination import PaginationLoop
from pinpoint_agent.errors import ConfigError, FatalError, RetriableError
from tests.gitlab.conftest import RecordingWaits
from tests.gitlab.fake_gitlab import ADMIN_TOKEN, OAUTH_TOKEN, USER_TOKEN, FakeGitLab

MRS = "/projects/11/merge_requests"


def _client(fake: FakeGitLab, auth: TokenAuth, **kw: Any) -> GitLabClient:
    return GitLabClient(httpx.Client(timeout=5), f"{fake.url}/api/v4", auth, per_page=2, backoff=0.01, **kw)


def test_offset_pages_follow_x_next_page_to_the_end(client: GitLabClient, fake: FakeGitLab) -> None:
    """A 5-item list at per_page 2 takes exactly 3 requests (pages 1, 2, 3) with PRIVATE-TOKEN on each."""
    mrs = client.all(MRS, {"order_by": "created_at", "sort": "asc"})
    assert [m["iid"] for m in mrs] == [1, 2, 3, 4, 5]
    assert [r.query["page"] for r in fake.requests] == ["1", "2", "3"]
    assert {r.auth for r in fake.requests} == {"private-token"}


def test_keyset_pages_follow_the_link_header(client: GitLabClient, fake: FakeGitLab) -> None:
    """/projects with pagination=keyset walks by Link rel=next (id_after), with no page numbers at all."""
    projects = client.all(ep.PROJECTS.url(), ep.PROJECTS.query(), keyset=True)
    assert [p["id"] for p in projects] == [11, 12, 13, 14, 90]
    assert [r.query.get("id_after") for r in fake.requests] == [None, "12", "14"]
    assert all("page" not in r.query and r.query["pagination"] == "keyset" for r in fake.requests)


def test_a_server_error_is_retried_with_backoff(client: GitLabClient, fake: FakeGitLab) -> None:
    """Two 502s on page 2 are retried and the walk still returns every item once."""
    fake.fail("&page=2", 502, times=2)
    assert [m["iid"] for m in client.all(MRS)] == [5, 4, 3, 2, 1]
    assert fake.count("&page=2") == 3


def test_persistent_server_errors_become_retriable(client: GitLabClient, fake: FakeGitLab) -> None:
    """A 500 that outlasts the retries ends as RetriableError (retry_after set), not a crash."""
    fake.fail(MRS, 500, times=100)
    with pytest.raises(RetriableError, match="HTTP 500 after 5 tries") as err:
        client.get(MRS)
    assert err.value.retry_after and fake.count(MRS) == 5


def test_network_errors_are_translated_once_without_the_token() -> None:
    """A refused connection is retried, then surfaces as RetriableError with no token in its text."""
    with httpx.Client(timeout=2) as http:
        c = GitLabClient(http, "http://127.0.0.1:9/api/v4", TokenAuth(USER_TOKEN), retries=2, backoff=0.01)
        with pytest.raises(RetriableError, match="network error") as err:
            c.get("/user")
    assert USER_TOKEN not in str(err.value) and c.requests == 3


def test_429_waits_retry_after_with_pause_and_resume(
    client: GitLabClient, fake: FakeGitLab, waits: RecordingWaits
) -> None:
    """A 429 with Retry-After mid-walk makes the client wait that long (telling the agent pause, then resume)
    and go on; nothing is lost or repeated."""
    fake.rate_limit("&page=2", wait=1)
    started = time.monotonic()
    assert [m["iid"] for m in client.all(MRS)] == [5, 4, 3, 2, 1]
    assert time.monotonic() - started >= 0.9
    assert [e[0] for e in waits.events] == ["pause", "resume"]
    assert client.limiter.waits == [("rate limit (429)", 1.0)]


def test_the_reserve_waits_for_ratelimit_reset_before_the_quota_is_gone(waits: RecordingWaits) -> None:
    """With RateLimit-Remaining at the reserve, the next call waits for RateLimit-Reset instead of hitting 429."""
    with FakeGitLab(limit=10, window=2) as fake:
        c = _client(fake, TokenAuth(USER_TOKEN), limiter=RateLimiter(reserve=0.5, listener=waits))
        for _ in range(8):
            c.get("/version")
        assert [r.status for r in fake.requests] == [200] * 8  # never a 429
        assert waits.events and waits.events[0][0] == "pause"
        assert c.limiter.waits and c.limiter.waits[0][0].startswith("rate limit reserve")


def test_quota_used_up_answers_429_and_the_client_waits_for_the_window(waits: RecordingWaits) -> None:
    """A client that ignores the reserve meets the fake's own 429 (quota gone) and still gets its answer."""
    with FakeGitLab(limit=3, window=1) as fake:
        c = _client(fake, TokenAuth(USER_TOKEN), limiter=RateLimiter(reserve=0.0, listener=waits))
        c.limiter.update = lambda headers: None  # type: ignore[method-assign]  # blind to RateLimit-*
        for _ in range(5):
            c.get("/version")
        assert 429 in [r.status for r in fake.requests]
        assert ("pause" in [e[0] for e in waits.events]) and [r.status for r in fake.requests][-1] == 200


def test_a_wrong_token_is_a_config_error_without_the_token(fake: FakeGitLab) -> None:
    """401 becomes ConfigError naming access_token, and the rejected token is in no message."""
    wrong = "glpat-WRONG0000000000000"
    with pytest.raises(ConfigError, match="check access_token") as err:
        _client(fake, TokenAuth(wrong)).get("/user")
    assert wrong not in str(err.value)


def test_oauth_tokens_go_as_bearer_and_are_refreshed_once_on_401(fake: FakeGitLab) -> None:
    """An OAuth provider's expired token gets a 401; the client asks the provider again once and goes on with
    Authorization: Bearer (never PRIVATE-TOKEN)."""
    handed = ["oauth-EXPIRED", OAUTH_TOKEN]
    calls: list[str] = []

    def provider() -> str:
        calls.append("new")
        return handed.pop(0)

    c = _client(fake, TokenAuth(provider=provider))
    assert c.get("/user").data["username"] == "bob"
    assert calls == ["new", "new"]
    assert [(r.status, r.auth) for r in fake.requests] == [(401, "bearer"), (200, "bearer")]


def test_oauth_still_rejected_after_a_refresh_is_a_config_error(fake: FakeGitLab) -> None:
    """A provider that only has rejected tokens ends in one ConfigError, not a loop."""
    c = _client(fake, TokenAuth(provider=lambda: "oauth-EXPIRED"))
    with pytest.raises(ConfigError, match="OAuth token"):
        c.get("/user")
    assert fake.count("/user") == 1


def test_404_and_403_map_to_their_errors(fake: FakeGitLab) -> None:
    """A missing project is NotFound; user emails with a plain user's token are Forbidden; both FatalError."""
    c = _client(fake, TokenAuth(USER_TOKEN))
    with pytest.raises(NotFound, match="HTTP 404 404 Project Not Found"):
        c.get("/projects/999")
    with pytest.raises(Forbidden):
        c.get("/users/1/emails")
    assert _client(fake, TokenAuth(ADMIN_TOKEN)).all("/users/1/emails")[0]["email"] == "alice@home.example"
    assert issubclass(NotFound, FatalError)


def test_a_next_link_to_another_server_is_refused() -> None:
    """A keyset Link pointing at another host is not followed (the token would go there)."""

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json=[{"id": 1}], headers={"Link": '<https://evil.example/api/v4/projects?id_after=1>; rel="next"'}
        )

    http = httpx.Client(transport=httpx.MockTransport(answer))
    c = GitLabClient(http, "https://gitlab.example/api/v4", TokenAuth(USER_TOKEN))
    with pytest.raises(FatalError, match="another server"):
        c.all("/projects", keyset=True)


def test_a_repeated_x_next_page_is_a_pagination_loop() -> None:
    """A server that keeps answering X-Next-Page: 2 stops the walk with PaginationLoop instead of looping."""

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[{"id": 1}], headers={"X-Next-Page": "2"})

    c = GitLabClient(
        httpx.Client(transport=httpx.MockTransport(answer)), "https://gitlab.example/api/v4", TokenAuth("t")
    )
    with pytest.raises(PaginationLoop):
        c.all("/projects/1/merge_requests")
