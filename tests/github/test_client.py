"""The API client in-process against the fake GitHub (httpx MockTransport for what a server cannot fake)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from integrations.github.client import GitHubClient, NotFound
from integrations.github.config import parse_config
from integrations.github.pagination import PaginationLoop
from integrations.github.ratelimit import RateLimiter
from pinpoint_agent.errors import ConfigError, FatalError, RetriableError
from tests.github.conftest import RecordingWaits
from tests.github.fake_github import TOKEN, FakeGitHub

PULLS = "/repos/acme/api/pulls"


def _all(client: GitHubClient, path: str, params: dict[str, Any] | None = None) -> list[Any]:
    return [item for page in client.pages(path, params) for item in page.items]


def test_pages_follow_link_headers_to_the_end(client: GitHubClient, fake: FakeGitHub) -> None:
    """A 5-item list at per_page 2 takes exactly 3 requests, in order, with Authorization on each."""
    prs = _all(client, PULLS, {"state": "all"})
    assert [p["number"] for p in prs] == [1, 2, 3, 4, 5]
    assert [r.query.get("page", "1") for r in fake.requests] == ["1", "2", "3"]
    assert all(r.status == 200 for r in fake.requests)


def test_a_server_error_is_retried_with_backoff(client: GitHubClient, fake: FakeGitHub) -> None:
    """Two 502s on page 2 are retried and the walk still returns every item once."""
    fake.fail("&page=2", 502, times=2)
    assert [p["number"] for p in _all(client, PULLS)] == [1, 2, 3, 4, 5]
    assert fake.count("&page=2") == 3


def test_persistent_server_errors_become_retriable(client: GitHubClient, fake: FakeGitHub) -> None:
    """A 500 that outlasts the retries ends as RetriableError (retry_after set), not a crash."""
    fake.fail(PULLS, 500, times=100)
    with pytest.raises(RetriableError, match="HTTP 500 after 5 tries") as err:
        client.get(PULLS)
    assert err.value.retry_after


def test_network_errors_are_translated_once(fake: FakeGitHub) -> None:
    """A refused connection is retried, then surfaces as RetriableError without the token in its text."""
    cfg = parse_config({"url": "http://127.0.0.1:9", "api_key": TOKEN, "organization": "acme"})
    with httpx.Client(timeout=2) as http:
        c = GitHubClient(http, cfg.api(), TOKEN, retries=2, backoff=0.01)
        with pytest.raises(RetriableError, match="network error") as err:
            c.get("/user")
    assert TOKEN not in str(err.value) and c.requests == 3


def test_primary_rate_limit_mid_walk_waits_for_reset(
    client: GitHubClient, fake: FakeGitHub, waits: RecordingWaits
) -> None:
    """A 403 with X-RateLimit-Remaining 0 on page 2 pauses until the reset, resumes and finishes the walk."""
    fake.rate_limit("&page=2", "primary", wait=1)
    assert [p["number"] for p in _all(client, PULLS)] == [1, 2, 3, 4, 5]
    assert [e[0] for e in waits.events] == ["pause", "resume"]
    assert [r.status for r in fake.requests] == [200, 403, 200, 200]


@pytest.mark.parametrize("kind", ["secondary", "429"])
def test_secondary_limits_honour_retry_after(
    client: GitHubClient, fake: FakeGitHub, waits: RecordingWaits, kind: str
) -> None:
    """403 secondary limits and 429s wait for Retry-After, then the same request goes through."""
    fake.rate_limit("/user", kind, wait=1)
    assert client.get("/user").data["login"] == "alice"
    assert client.limiter.waits[0][1] == 1.0 and len(waits.events) == 2


def test_the_reserve_is_never_spent(fake: FakeGitHub, waits: RecordingWaits) -> None:
    """With a quota of 10 and a 50% reserve, the client waits for the reset instead of using the quota up."""
    fake.limit = fake.remaining = 10
    fake.window = 2
    fake.reset_at = int(fake.reset_at - 3600 + 2)
    cfg = parse_config({"url": fake.url, "api_key": TOKEN, "organization": "acme"})
    with httpx.Client(timeout=10) as http:
        c = GitHubClient(http, cfg.api(), TOKEN, limiter=RateLimiter(reserve=0.5, listener=waits), per_page=1)
        repos = _all(c, "/orgs/acme/repos")
        assert len(repos) == 4
        for _ in range(4):
            c.get("/user")
    assert fake.exceeded == 0 and all(r.status == 200 for r in fake.requests)
    assert ("pause" in [e[0] for e in waits.events]) and fake.remaining >= 0


def test_conditional_requests_answer_304(client: GitHubClient, fake: FakeGitHub) -> None:
    """The ETag of an answer sent back as If-None-Match gets a 304 (free on GitHub) while nothing changed."""
    first = client.get(PULLS)
    remaining = fake.remaining
    again = client.get(PULLS, etag=first.etag)
    assert again.not_modified and again.data is None and fake.remaining == remaining
    fake.data.touch_pr("api", 1, title="changed")
    assert not client.get(PULLS, etag=first.etag).not_modified


def test_bad_token_is_a_config_error_without_the_token(fake: FakeGitHub) -> None:
    """A 401 becomes one ConfigError line naming api_key, never the token."""
    bad = "ghp_WRONGtoken999"
    cfg = parse_config({"url": fake.url, "api_key": bad, "organization": "acme"})
    with httpx.Client() as http:
        with pytest.raises(ConfigError, match="rejected the token") as err:
            GitHubClient(http, cfg.api(), bad).get("/user")
    assert bad not in str(err.value) and TOKEN not in str(err.value)


def test_not_found_and_graphql_errors(client: GitHubClient) -> None:
    """404s raise NotFound with the path; GraphQL NOT_FOUND errors raise NotFound too."""
    with pytest.raises(NotFound, match="/repos/acme/nope"):
        client.get("/repos/acme/nope")
    with pytest.raises(NotFound, match="global id"):
        client.graphql("query($id: ID!) { node(id: $id) { id } }", {"id": "nope"})


def test_graphql_connection_pages(client: GitHubClient, fake: FakeGitHub) -> None:
    """Org members come through the GraphQL connection two at a time, following endCursor."""
    from integrations.github.endpoints import ORG_MEMBERS

    pages = list(
        client.graphql_nodes(ORG_MEMBERS, {"org": "acme"}, lambda d: d["organization"]["membersWithRole"])
    )
    assert [[n["login"] for n in p] for p in pages] == [["alice", "bob"], ["carol"]]
    assert fake.count("/api/graphql") == 2


def _mock(handler: Any) -> GitHubClient:
    cfg = parse_config({"url": "https://ghe.example", "api_key": TOKEN, "organization": "acme"})
    return GitHubClient(httpx.Client(transport=httpx.MockTransport(handler)), cfg.api(), TOKEN, per_page=1)


def test_a_server_that_links_back_is_a_loop_not_a_hang() -> None:
    """A Link header pointing at a page already walked stops the walk with PaginationLoop."""

    def handler(request: httpx.Request) -> httpx.Response:
        nxt = (
            "https://ghe.example/api/v3/x?page=2"
            if "&page=2" not in str(request.url)
            else "https://ghe.example/api/v3/x?page=2"
        )
        return httpx.Response(200, json=[1], headers={"Link": f'<{nxt}>; rel="next"'})

    with pytest.raises(PaginationLoop):
        list(_mock(handler).pages("/x"))


def test_links_to_another_server_are_not_followed() -> None:
    """A next link to another host is refused, so the token is never sent anywhere but the API."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json=[1], headers={"Link": '<https://evil.example/x?page=2>; rel="next"'})

    with pytest.raises(FatalError, match="another server"):
        list(_mock(handler).pages("/x"))
    assert all(u.startswith("https://ghe.example/api/v3/") for u in seen)
