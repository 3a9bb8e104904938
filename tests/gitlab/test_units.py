"""Pure parts of the GitLab integration without I/O: cursors, config, paginators, models, the rate limiter."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from integrations.gitlab import models
from integrations.gitlab.config import describe, parse_config
from integrations.gitlab.cursor import EmailSweep, UpdatedCursor, format_cursor, format_sweep, parse_cursor, parse_sweep
from integrations.gitlab.pagination import KeysetPaginator, OffsetPaginator
from integrations.gitlab.ratelimit import DEFAULT_WAIT, RateLimiter
from integrations.sdk.pagination import PaginationLoop
from pinpoint_agent.errors import ConfigError

A, B, C = "2024-01-01T00:00:01.000Z", "2024-01-01T00:00:02.000Z", "2024-01-01T00:00:03.000Z"


def test_cursor_moves_to_the_last_instant_and_remembers_its_ids() -> None:
    """After a page the cursor is the last updated_at with the ids of that instant; they count as seen, an
    object updated at that instant later (another id) does not."""
    c = UpdatedCursor()
    assert c.advance([(A, 1), (B, 2), (B, 3)]) is True
    assert (c.after, c.ids) == (B, {2, 3})
    assert c.seen(B, 2) and not c.seen(B, 4) and not c.seen(C, 2)


def test_cursor_on_a_page_of_one_instant_asks_the_next_page_number() -> None:
    """A page whose items all share the cursor's instant cannot move the cursor: walk on by page number."""
    c = UpdatedCursor(B, {2})
    assert c.advance([(B, 2), (B, 3)]) is False and c.ids == {2, 3}
    assert c.advance([(B, 4), (C, 5)]) is True and (c.after, c.ids) == (C, {5})


def test_cursor_tokens_round_trip_and_bad_tokens_mean_historical() -> None:
    """format/parse keep the position; empty, garbage or a JSON without a time start a first sync; a plain RFC
    3339 token is read as the position."""
    token = format_cursor(UpdatedCursor(B, {3, 2}))
    assert token == '{"after":"2024-01-01T00:00:02.000Z","ids":[2,3]}'
    assert parse_cursor(token) == UpdatedCursor(B, {2, 3})
    for bad in ("", "garbage", '{"ids":[1]}', "[1]", '{"after":"yesterday"}'):
        assert parse_cursor(bad).historical
    assert parse_cursor(A) == UpdatedCursor(A, set())
    assert format_cursor(UpdatedCursor()) == ""


def test_config_defaults_api_url_and_hidden_token() -> None:
    """gitlab.com by default; a self-managed url given with /api/v4 is taken back to the server; the token
    never shows in repr; lists accept comma strings; every field has a description."""
    cfg = parse_config({"api_key": "glpat-SECRET", "groups": "acme, acme/platform"})
    assert cfg.api == "https://gitlab.com/api/v4" and cfg.groups == ["acme", "acme/platform"]
    assert "glpat-SECRET" not in repr(cfg) and cfg.token == "glpat-SECRET"
    self_managed = parse_config({"url": "https://git.corp.example/gitlab/api/v4/", "access_token": "t"})
    assert self_managed.server == "https://git.corp.example/gitlab" and self_managed.api.endswith("/gitlab/api/v4")
    assert parse_config({"url": "git.corp.example"}, oauth=True).api == "https://git.corp.example/api/v4"
    assert all(describe().values())


def test_config_errors_are_one_line() -> None:
    """Bad values become one ConfigError line naming the field."""
    for raw, text in (
        ({"access_token": "t", "url": "ftp://x"}, "url is not an http"),
        ({"access_token": "t", "concurrency": 0}, "concurrency"),
        ({"access_token": "t", "groups": 5}, "groups"),
        ([], "must be a JSON object"),
    ):
        with pytest.raises(ConfigError, match=text) as err:
            parse_config(raw)
        assert "\n" not in str(err.value)


def test_project_filters() -> None:
    """Archived projects only with include_archived; inclusions and exclusions match paths or names."""
    cfg = parse_config({"access_token": "t", "inclusions": ["acme/*"], "exclusions": ["legacy-*"]})
    assert cfg.wants_project("acme/api", archived=False)
    assert not cfg.wants_project("acme/api", archived=True)
    assert not cfg.wants_project("other/api", archived=False)
    assert not cfg.wants_project("acme/legacy-db", archived=False)


def test_offset_and_keyset_paginators_detect_loops() -> None:
    """X-Next-Page naming a page already walked, or a keyset next link seen before, raise PaginationLoop; an
    empty X-Next-Page ends the walk with X-Total-Pages kept."""
    op = OffsetPaginator()
    op.advance(httpx.Headers({"X-Next-Page": "2", "X-Total-Pages": "3"}))
    op.advance(httpx.Headers({"X-Next-Page": "3"}))
    assert op.next_page == 3 and op.total_pages == 3
    with pytest.raises(PaginationLoop):
        op.advance(httpx.Headers({"X-Next-Page": "2"}))
    done = OffsetPaginator()
    done.advance(httpx.Headers({"X-Next-Page": ""}))
    assert not done.has_more
    kp = KeysetPaginator()
    kp.advance(httpx.Headers({"Link": '<http://x/api/v4/projects?id_after=5>; rel="next"'}))
    assert kp.next_url == "http://x/api/v4/projects?id_after=5"
    with pytest.raises(PaginationLoop):
        kp.advance(httpx.Headers({"Link": '<http://x/api/v4/projects?id_after=5>; rel="next"'}))


def test_merge_request_states_and_system_notes() -> None:
    """opened/closed/locked/merged map to OPEN/CLOSED/LOCKED/MERGED; merged_by and the merge commit only for
    merged ones (merge_user preferred); system notes are left out."""
    repo = {"id": "r1", "name": "acme/api"}
    base = {"id": 9, "iid": 3, "title": "t", "author": {"id": 1}}
    merged = models.pull_request(
        "c",
        repo,
        {**base, "state": "merged", "merge_commit_sha": "abc", "merge_user": {"id": 7}, "merged_by": {"id": 8}},
        [],
    )
    assert (merged["status"], merged["merged_by_ref_id"], merged["merge_sha"]) == ("MERGED", "7", "abc")
    closed = models.pull_request("c", repo, {**base, "state": "closed", "merge_commit_sha": "abc"}, [])
    assert (closed["status"], closed["merge_sha"], closed["closed"]) == ("CLOSED", "", True)
    assert models.pull_request("c", repo, {**base, "state": "locked"}, [])["status"] == "LOCKED"
    assert models.pull_request("c", repo, {**base, "state": "opened", "work_in_progress": True}, [])["draft"]
    notes = [{"id": 1, "system": True}, {"id": 2, "system": False}, {"id": 3}]
    assert [n["id"] for n in models.user_notes(notes)] == [2, 3]


def test_commit_users_take_primary_and_confirmed_secondary_emails() -> None:
    """An admin's user item gives its primary email; /emails adds confirmed secondary ones, lower-cased, once."""
    u = {"id": 5, "username": "dana", "name": "Dana", "email": "Dana@Acme.example"}
    emails = [
        {"email": "dana@acme.example", "confirmed_at": "x"},
        {"email": "d@old.example", "confirmed_at": "x"},
        {"email": "unconfirmed@x.example", "confirmed_at": None},
    ]
    links = models.commit_users("c", u, emails)
    assert [(lk["email"], lk["source_id"]) for lk in links] == [("dana@acme.example", "5"), ("d@old.example", "5")]


def test_rate_limiter_waits() -> None:
    """Retry-After wins; without it RateLimit-Reset decides; with neither the default wait; the reserve holds
    calls back once RateLimit-Remaining reaches it."""
    now = 1_000.0
    rl = RateLimiter(reserve=0.5, clock=lambda: now, sleep=lambda s: None)
    assert rl.answer_wait(httpx.Headers({"Retry-After": "7"})) == 7.0
    assert rl.answer_wait(httpx.Headers({"RateLimit-Reset": "1030"})) == 31.0
    assert rl.answer_wait(httpx.Headers({})) == DEFAULT_WAIT
    rl = RateLimiter(reserve=0.5, clock=lambda: now)
    rl.update(httpx.Headers({"RateLimit-Limit": "10", "RateLimit-Remaining": "6", "RateLimit-Reset": "1060"}))
    assert rl.acquire() == 0.0 and rl.acquire() == 61.0


def test_email_sweep_rule() -> None:
    """Every user's emails on a first run, after emails_refresh_hours, or with 0 hours; otherwise only users
    above the highest id seen; unreadable tokens mean a first run."""
    now = datetime(2024, 1, 2, 12, tzinfo=UTC)
    assert parse_sweep("").due(now, 24) and parse_sweep("junk").due(now, 24)
    sweep = parse_sweep(format_sweep(EmailSweep("2024-01-02T00:00:00Z", 7)))
    assert sweep == EmailSweep("2024-01-02T00:00:00Z", 7)
    assert not sweep.due(now, 24) and sweep.due(now, 12) and sweep.due(now, 0)
    assert sweep.wants(8, full=False) and not sweep.wants(7, full=False) and sweep.wants(1, full=True)


def test_oauth_git_requests_name_the_oauth2_user_and_the_git_layer_strips_it() -> None:
    """An OAuth git request's url carries the user name oauth2 (GitLab's rule for OAuth tokens over git) and
    no secret; the agent's git layer takes that name for the credentials and uses a clean url."""
    from integrations.gitlab.walks import ProjectInfo, git_request
    from pinpoint_agent.git._mirror import _split_credentials

    raw = {
        "id": 1,
        "path_with_namespace": "g/p",
        "web_url": "https://gl.example/g/p",
        "http_url_to_repo": "https://gl.example/g/p.git",
    }
    info = ProjectInfo(raw, models.repo("c", raw))
    oauth = git_request(info, [], "tok-SECRET", oauth=True)
    assert oauth.url == "https://oauth2@gl.example/g/p.git" and "tok-SECRET" not in oauth.url
    assert _split_credentials(oauth.url, oauth.credentials) == ("https://gl.example/g/p.git", "tok-SECRET", "oauth2")
    assert git_request(info, [], "tok-SECRET").url == "https://gl.example/g/p.git"
