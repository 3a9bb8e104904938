"""The Jira client against the fake: auth per flavour, 429 waits with pause/resume events, Data Center 503
retries, OAuth token refresh, bounded requests in flight, pacing near the limit, errors."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from integrations.jira.auth import StaticAuth, TokenAuth, basic
from integrations.jira.client import JiraClient, JiraError, NotFound
from integrations.jira.ratelimit import Limiter
from pinpoint_agent.errors import ConfigError, FatalError, RetriableError
from tests.jira.conftest import RecordingWaits, make_client
from tests.jira.fake_jira import DC_PASSWORD, DC_USER, FakeJira


def test_each_flavours_auth_is_accepted_and_wrong_credentials_are_a_config_error(
        cloud: FakeJira, dc: FakeJira) -> None:
    """Cloud basic e-mail+token, DC PAT and DC basic user+password log in; a wrong token is one ConfigError
    that names no secret."""
    assert make_client(cloud).get("/rest/api/3/myself")["accountId"]
    assert make_client(dc).get("/rest/api/2/myself")["key"] == "JIRAUSER10000"
    with httpx.Client() as http:
        pw = JiraClient(http, dc.url, StaticAuth(basic(DC_USER, DC_PASSWORD)))
        assert pw.get("/rest/api/2/myself")["name"] == "alice"
        wrong = JiraClient(http, dc.url, StaticAuth("Bearer WRONG-SECRET"))
        with pytest.raises(ConfigError) as err:
            wrong.get("/rest/api/2/myself")
        assert "WRONG-SECRET" not in str(err.value) and "401" in str(err.value)


def test_429_waits_with_pause_and_resume_events(cloud: FakeJira) -> None:
    """A 429 with Retry-After is waited out (pause event with the resume time, then resume) and the request
    succeeds; the wait is as long as Jira asked."""
    waits = RecordingWaits()
    client = make_client(cloud, waits)
    cloud.rate_limit("/field", wait=1)
    started = time.monotonic()
    fields = client.get("/rest/api/3/field")
    assert any(f["id"] == "customfield_10020" for f in fields)
    assert time.monotonic() - started >= 0.9
    assert [e[0] for e in waits.events] == ["pause", "resume"]
    assert "jira-burst-based" in waits.events[0][1]
    assert cloud.count("/field") == 2
    assert not client.limiter.near_limit  # the 429 said NearLimit; the next answer, without it, ended pacing


def test_dc_503_is_retried_then_gives_up_as_retriable(dc: FakeJira) -> None:
    """Data Center's 503 (node busy) is retried with backoff; still failing after the retries it is a
    RetriableError, not a crash."""
    client = make_client(dc)
    dc.fail("/serverInfo", 503, times=2)
    assert make_client(dc).get("/rest/api/2/serverInfo")["version"] == "9.12.2"
    dc.fail("/myself", 503, times=10, headers={"Retry-After": "0"})
    with pytest.raises(RetriableError, match="HTTP 503 after 5 tries"):
        client.get("/rest/api/2/myself")
    assert dc.count("/myself") == 5


def test_expired_oauth_token_is_refreshed_once(cloud: FakeJira) -> None:
    """An expired OAuth access token answers 401: the client asks its provider for a new one and retries;
    a provider that only has bad tokens ends in ConfigError after one refresh."""
    cloud.expired_tokens.add("old-token")
    cloud.oauth_tokens.add("new-token")
    tokens = iter(["old-token", "new-token"])
    auth = TokenAuth(lambda: next(tokens))
    with httpx.Client() as http:
        client = JiraClient(http, cloud.url, auth)
        assert client.get("/rest/api/3/myself")["accountId"]
        assert auth.refreshes == 1 and cloud.count("/myself") == 2
        bad = JiraClient(http, cloud.url, TokenAuth(lambda: "old-token"))
        with pytest.raises(ConfigError):
            bad.get("/rest/api/3/myself")


def test_requests_in_flight_are_bounded_per_host() -> None:
    """With 12 threads asking at once and 3 slots, the fake never sees more than 3 requests at a time."""
    with FakeJira(cloud=True, latency=0.05) as fake:
        cfg_client = make_client(fake)
        client = JiraClient(cfg_client.http, fake.url, cfg_client.auth, limiter=Limiter(max_in_flight=3))
        with ThreadPoolExecutor(12) as pool:
            list(pool.map(lambda _: client.get("/rest/api/3/myself"), range(24)))
        assert fake.peak_in_flight == 3 and client.limiter.peak_in_flight == 3


def test_near_limit_paces_requests() -> None:
    """After an answer with X-RateLimit-NearLimit: true, requests are spaced; an answer without it ends that."""
    sleeps: list[float] = []
    lock = threading.Lock()

    def sleep(s: float) -> None:
        with lock:
            sleeps.append(s)

    limiter = Limiter(sleep=sleep, near_limit_interval=0.5, clock=lambda: 100.0)
    limiter.observe({"x-ratelimit-nearlimit": "true"})
    for _ in range(3):
        with limiter.slot():
            pass
    assert sleeps == [0.5, 1.0]
    limiter.observe({"x-ratelimit-limit": "100", "x-ratelimit-remaining": "90"})
    with limiter.slot():
        pass
    assert not limiter.near_limit and len(sleeps) == 2


def test_errors_carry_status_and_jira_messages(cloud: FakeJira) -> None:
    """404 is NotFound with Jira's errorMessages; other 4xx are JiraError; a link to another host is refused."""
    client = make_client(cloud)
    with pytest.raises(NotFound, match="Issue does not exist"):
        client.get("/rest/api/3/issue/NOPE-1")
    with pytest.raises(JiraError) as err:
        client.request("POST", "/rest/api/3/search/jql", json={"jql": "assignee = bob"})
    assert err.value.status == 400 and "Error in the JQL Query" in str(err.value)
    with pytest.raises(FatalError, match="another server"):
        client.get("http://127.0.0.2:1/rest/api/3/myself")


def test_offset_pages_walk_dc_search_capped_at_50(dc: FakeJira) -> None:
    """Asking 100 per page, Data Center answers 50: the walk advances by what came and ends at total."""
    client = make_client(dc)
    pages = [len(items) for items, _ in client.offset_pages(
        "/rest/api/2/issue/ENG-2/comment", key="comments", page_size=1)]
    assert pages == [1, 1]
