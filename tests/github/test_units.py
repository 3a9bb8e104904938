"""Pure pieces of the GitHub integration: config, cursors, Link parsing, paginators and the rate limiter."""

from __future__ import annotations

from datetime import datetime

import pytest

from integrations.github.config import parse_config
from integrations.github.cursor import (
    PullRequestCursor,
    format_cursor,
    parse_cursor,
    server_time,
    updated_before,
)
from integrations.github.pagination import CursorPaginator, LinkPaginator
from integrations.github.ratelimit import RateLimiter
from integrations.sdk.pagination import PaginationLoop, parse_link_header
from pinpoint_agent.errors import ConfigError

TOKEN = "ghp_unit0123456789SECRET"


@pytest.mark.parametrize("url", ["https://github.com", "https://api.github.com/", "github.com"])
def test_public_github_urls_use_the_public_api(url: str) -> None:
    """github.com and api.github.com (with or without scheme) map to https://api.github.com and /graphql."""
    api = parse_config({"url": url, "api_key": TOKEN, "organization": "o"}).api()
    assert (api.rest, api.graphql, api.enterprise) == (
        "https://api.github.com",
        "https://api.github.com/graphql",
        False,
    )


@pytest.mark.parametrize(
    "url", ["https://ghe.corp.example", "https://ghe.corp.example/", "https://ghe.corp.example/api/v3"]
)
def test_enterprise_urls_use_api_v3_and_api_graphql(url: str) -> None:
    """Any other server is Enterprise: REST at <url>/api/v3, GraphQL at <url>/api/graphql (API urls too)."""
    api = parse_config({"url": url, "api_key": TOKEN, "organization": "o"}).api()
    assert (api.rest, api.graphql, api.enterprise) == (
        "https://ghe.corp.example/api/v3",
        "https://ghe.corp.example/api/graphql",
        True,
    )


def test_config_errors_are_one_clear_line_without_the_token() -> None:
    """Bad configs raise ConfigError naming the field; the token never shows, not even in the repr."""
    with pytest.raises(ConfigError, match="api_key"):
        parse_config({"organization": "o"})
    with pytest.raises(ConfigError, match="organization"):
        parse_config({"api_key": TOKEN})
    with pytest.raises(ConfigError, match="owner/name"):
        parse_config({"api_key": TOKEN, "repos": ["justname"]})
    with pytest.raises(ConfigError, match="concurrency"):
        parse_config({"api_key": TOKEN, "organization": "o", "concurrency": 99})
    cfg = parse_config(
        {"access_token": TOKEN, "organization": "o", "inclusions": "api, web*", "exclusions": ["web-old"]}
    )
    assert TOKEN not in repr(cfg) and cfg.token == TOKEN
    assert [cfg.wants_repo(n) for n in ("o/api", "o/web", "o/web-old", "o/docs")] == [
        True,
        True,
        False,
        False,
    ]


def test_cursor_round_trip_and_tolerant_parsing() -> None:
    """Cursors survive format/parse; a bare RFC 3339 token is a `since`; empty/garbage means a first sync."""
    c = PullRequestCursor(since="2024-05-01T10:00:00Z", etag='W/"x"')
    assert parse_cursor(format_cursor(c)) == c
    partial = PullRequestCursor(started="2024-05-01T10:00:00Z", page=3, per_page=100)
    assert parse_cursor(format_cursor(partial)) == partial and parse_cursor(format_cursor(partial)).historical
    assert parse_cursor("2024-05-01T10:00:00+00:00").since == "2024-05-01T10:00:00+00:00"
    for token in ("", "not a time", "{broken", "[1]"):
        assert parse_cursor(token) == PullRequestCursor()


def test_server_time_is_githubs_clock_minus_a_second() -> None:
    """Tokens come from GitHub's Date header (minus one second), and the stop test compares real times."""
    assert server_time("Wed, 01 May 2024 10:00:00 GMT") == "2024-05-01T09:59:59Z"
    assert updated_before("2024-05-01T09:59:58Z", "2024-05-01T09:59:59Z")
    assert not updated_before("2024-05-01T09:59:59Z", "2024-05-01T09:59:59Z")


def test_link_header_parsing() -> None:
    """All rels of GitHub's Link header are read, including several rels in one entry."""
    header = (
        '<https://api.github.com/x?page=2>; rel="next", <https://api.github.com/x?page=5>; rel="last", '
        '<https://api.github.com/x?page=1>; rel="first prev"'
    )
    links = parse_link_header(header)
    assert links == {
        "next": "https://api.github.com/x?page=2",
        "last": "https://api.github.com/x?page=5",
        "first": "https://api.github.com/x?page=1",
        "prev": "https://api.github.com/x?page=1",
    }
    assert parse_link_header(None) == {} and parse_link_header("garbage") == {}


def test_link_paginator_follows_next_and_detects_loops() -> None:
    """The paginator follows rel=next, knows the page count from rel=last, refuses a page it has walked."""
    p = LinkPaginator("https://h/x")
    p.advance({"link": '<https://h/x?page=2>; rel="next", <https://h/x?page=3>; rel="last"'})
    assert p.has_more and p.next_url == "https://h/x?page=2" and p.total_pages == 3
    with pytest.raises(PaginationLoop):
        p.advance({"link": '<https://h/x?page=2>; rel="next"'})
    last = LinkPaginator("https://h/x")
    last.advance({})
    assert not last.has_more and last.total_pages == 1


def test_cursor_paginator_detects_a_repeated_cursor() -> None:
    """A GraphQL connection that hands back the same endCursor is a loop, not an endless walk."""
    p = CursorPaginator()
    p.advance({"hasNextPage": True, "endCursor": "a"})
    assert p.after == "a"
    with pytest.raises(PaginationLoop):
        p.advance({"hasNextPage": True, "endCursor": "a"})


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.now += s


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, object]] = []

    def paused(self, message: str, until: datetime) -> None:
        self.seen.append(("pause", until))

    def resumed(self, message: str) -> None:
        self.seen.append(("resume", message))


def test_rate_limiter_keeps_the_reserve_and_counts_calls_ahead() -> None:
    """Below the reserve the limiter asks to wait until the reset; above it each call is counted at once."""
    clock = Clock()
    rl = RateLimiter(reserve=0.2, clock=clock.time, sleep=clock.sleep)
    assert rl.acquire("core") == 0.0  # nothing known yet
    rl.update(
        "core",
        {
            "x-ratelimit-limit": "100",
            "x-ratelimit-remaining": "22",
            "x-ratelimit-reset": str(int(clock.now) + 600),
        },
    )
    assert rl.acquire("core") == 0.0 and rl.acquire("core") == 0.0  # 22 -> 21 -> 20
    assert rl.acquire("core") == pytest.approx(601.0)  # 20 left = the reserve: wait for the reset
    clock.now += 601
    assert rl.acquire("core") == 0.0  # the window passed: full again


def test_rate_limiter_reads_limit_answers() -> None:
    """Primary limits wait for the reset, secondary ones and 429 for Retry-After (or a minute); other 403s
    are not limits."""
    clock = Clock()
    rl = RateLimiter(clock=clock.time, sleep=clock.sleep)
    reset = str(int(clock.now) + 30)
    assert rl.answer_wait("core", 403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset}, "") == 31.0
    assert rl.answer_wait("core", 403, {"retry-after": "7"}, "secondary rate limit") == 7.0
    assert rl.answer_wait("core", 429, {"retry-after": "3"}, "") == 3.0
    assert rl.answer_wait("core", 403, {}, "You have exceeded a secondary rate limit") == 60.0
    assert rl.answer_wait("core", 403, {"x-ratelimit-remaining": "4000"}, "Resource not accessible") is None
    assert rl.answer_wait("core", 404, {}, "") is None


def test_rate_limiter_wait_sends_pause_then_resume_and_keeps_logging() -> None:
    """A long wait tells the listener (pause with the resume time, then resume), sleeping in logged slices."""
    clock, events = Clock(), Events()
    rl = RateLimiter(listener=events, clock=clock.time, sleep=clock.sleep, log_every=30)
    rl.wait(95, "rate limit (core)")
    assert [e[0] for e in events.seen] == ["pause", "resume"]
    assert isinstance(events.seen[0][1], datetime) and events.seen[0][1].timestamp() == 1_700_000_095
    assert clock.slept == [30, 30, 30, 5]


def test_credentials_in_the_url_are_split_off() -> None:
    """A url written with user:TOKEN@ is used without them, and the token serves as the api key."""
    config = parse_config({"url": "https://bot:canary-tok-5@ghe.corp.example", "organization": "o"})
    assert config.url == "https://ghe.corp.example"
    assert config.api_key.get() == "canary-tok-5"
    assert "canary" not in str(config.api())
