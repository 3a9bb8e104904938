"""Pure pieces of the Jira integration: config and flavour, tokens and JQL, custom fields, pagination, limits,
bodies and models, tested without I/O."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from integrations.jira import adf, models
from integrations.jira.auth import TokenAuth, make_auth
from integrations.jira.config import AuthMode, Flavor, flavor_of, parse_config
from integrations.jira.cursor import issues_jql, jql_since, later, parse_time, zone
from integrations.jira.export import prefetched
from integrations.jira.fields import discover
from integrations.jira.pagination import OffsetPaginator, TokenPaginator
from integrations.jira.ratelimit import limited_wait
from integrations.sdk.pagination import PaginationLoop
from pinpoint_agent.errors import ConfigError
from pinpoint_agent.host.process import resolve_command
from pinpoint_agent.ids import values


def test_flavor_follows_the_original_agents_rule() -> None:
    """`jira` is Cloud for *.atlassian.net and *.jira.com (and Atlassian's OAuth gateway), else hosted;
    the names jira-cloud / jira-hosted decide by themselves."""
    assert flavor_of("https://acme.atlassian.net") == Flavor.CLOUD
    assert flavor_of("https://acme.jira.com/") == Flavor.CLOUD
    assert flavor_of("https://api.atlassian.com/ex/jira/abc") == Flavor.CLOUD
    assert flavor_of("https://jira.acme.com") == Flavor.HOSTED
    assert flavor_of("https://atlassian.net.evil.example") == Flavor.HOSTED
    assert flavor_of("https://jira.acme.com", "jira-cloud") == Flavor.CLOUD
    assert flavor_of("https://acme.atlassian.net", "jira-hosted") == Flavor.HOSTED
    assert flavor_of("https://api.atlassian.com/ex/jira/abc", "jira-hosted") == Flavor.CLOUD


def test_agent_resolves_all_three_names_to_the_jira_package(tmp_path: Path) -> None:
    """The backend's `jira` and the original `jira-cloud`/`jira-hosted` all start `python -m integrations.jira`,
    and an external executable of that name still wins."""
    for name in ("jira", "jira-cloud", "jira-hosted"):
        assert resolve_command(name, None)[-2:] == ["-m", "integrations.jira"]
    (tmp_path / "bin").mkdir()
    exe = tmp_path / "bin" / "jira-cloud"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    assert resolve_command("jira-cloud", tmp_path) == [str(exe)]


def test_config_auth_modes_and_errors_without_secrets() -> None:
    """Basic (Cloud e-mail + token, DC user + password), DC PAT and OAuth are chosen from what is given;
    errors are one line and never show a secret; credentials in the url are refused."""
    cloud = parse_config({"url": "https://acme.atlassian.net", "username": "a@b.c", "api_token": "SECRET1"})
    assert cloud.auth_mode == AuthMode.BASIC and cloud.cloud and cloud.api_version == "3"
    assert "SECRET1" not in repr(cloud) and "SECRET1" not in str(cloud.model_dump())
    assert make_auth(cloud).header() == "Basic YUBiLmM6U0VDUkVUMQ=="
    pat = parse_config({"url": "https://jira.acme.com", "access_token": "PAT1"})
    assert pat.auth_mode == AuthMode.PAT and not pat.cloud and make_auth(pat).header() == "Bearer PAT1"
    oauth = parse_config({"url": "https://api.atlassian.com/ex/jira/x"}, oauth=True)
    assert oauth.auth_mode == AuthMode.OAUTH
    assert isinstance(make_auth(oauth, lambda: "tok"), TokenAuth)
    gateway = parse_config({"url": "https://acme.atlassian.net", "cloud_id": "c-1"}, oauth=True)
    assert gateway.api_url == "https://api.atlassian.com/ex/jira/c-1" and gateway.url == "https://acme.atlassian.net"
    assert cloud.api_url == cloud.url
    with pytest.raises(ConfigError, match="api_token required"):
        parse_config({"url": "https://acme.atlassian.net", "username": "a@b.c"})
    with pytest.raises(ConfigError, match="access_token"):
        parse_config({"url": "https://jira.acme.com"})
    with pytest.raises(ConfigError) as bad:
        parse_config({"url": "https://u:SECRET2@jira.acme.com", "access_token": "SECRET3"})
    assert "SECRET2" not in str(bad.value) and "SECRET3" not in str(bad.value) and "\n" not in str(bad.value)
    with pytest.raises(ConfigError, match="concurrency"):
        parse_config({"url": "https://jira.acme.com", "access_token": "x", "concurrency": 99})
    keys = parse_config({"url": "https://jira.acme.com", "access_token": "x", "projects": "eng, ops"})
    assert keys.projects == ["ENG", "OPS"] and keys.wants_project("eng") and not keys.wants_project("DOC")


def test_jql_since_uses_the_users_time_zone_and_the_safety_window() -> None:
    """The token (UTC) minus the window, in the user's zone, floored to the minute: JQL reads dates that way."""
    token = "2024-07-01T10:07:30.500Z"
    berlin = zone("Europe/Berlin")  # UTC+2 in July
    assert jql_since(token, timedelta(minutes=5), berlin) == "2024/07/01 12:02"
    assert jql_since(token, timedelta(minutes=5), zone("UTC")) == "2024/07/01 10:02"
    assert jql_since("", timedelta(minutes=5), berlin) == ""
    assert zone("Not/AZone").key == "UTC"
    assert issues_jql("ENG", "2024/07/01 12:02") == \
        'project = "ENG" AND updated >= "2024/07/01 12:02" ORDER BY updated ASC, key ASC'
    assert issues_jql('A"B', "") == 'project = "A\\"B" ORDER BY updated ASC, key ASC'


def test_times_and_tokens() -> None:
    """Jira's +0200 offsets parse; `later` keeps the later token whatever the zones."""
    t = parse_time("2024-03-01T11:00:00.123+0200")
    assert t is not None and t.utcoffset() == timedelta(hours=2)
    assert later("2024-03-01T09:00:00.000Z", "2024-03-01T10:30:00.000+0200") == "2024-03-01T09:00:00.000Z"
    assert later("", "2024-03-01T09:00:00.000Z") == "2024-03-01T09:00:00.000Z"
    assert models.date("2024-03-01T11:00:00.000+0200") == {
        "epoch": 1709283600000, "offset": 120, "rfc3339": "2024-03-01T11:00:00+02:00"}


def test_custom_fields_are_discovered_by_type_not_id() -> None:
    """Sprint and epic link by schema type; the jsw story points field before a number field named Story Points."""
    fields = [
        {"id": "summary", "name": "Summary", "custom": False},
        {"id": "customfield_1", "name": "Story Points", "custom": True, "schema": {"type": "number"}},
        {"id": "customfield_2", "name": "Sprint", "custom": True,
         "schema": {"type": "array", "custom": "com.pyxis.greenhopper.jira:gh-sprint"}},
        {"id": "customfield_3", "name": "Story point estimate", "custom": True,
         "schema": {"type": "number", "custom": "com.pyxis.greenhopper.jira:jsw-story-points"}},
        {"id": "customfield_4", "name": "Epic Link", "custom": True,
         "schema": {"custom": "com.pyxis.greenhopper.jira:gh-epic-link"}},
        {"id": "customfield_5", "name": "Story Points", "custom": True, "schema": {"type": "string"}},
    ]
    custom = discover(fields)
    assert custom.story_points == ("customfield_3", "customfield_1")
    assert (custom.sprint, custom.epic_link) == ("customfield_2", "customfield_4")
    assert models.story_points({"customfield_3": None, "customfield_1": 5}, custom) == 5.0


def test_sprint_field_both_shapes() -> None:
    """Cloud's sprint objects and Data Center's legacy greenhopper strings give the same sprint ids."""
    assert models.sprint_refs([{"id": 7, "name": "S"}]) == ["7"]
    legacy = "com.atlassian.greenhopper.service.sprint.Sprint@3f[id=12,rapidViewId=1,state=ACTIVE,name=S 1,goal=]"
    assert models.sprint_refs([legacy, "junk"]) == ["12"]


def test_paginators_follow_and_refuse_loops() -> None:
    """Token and offset pages end where Jira says, short pages advance by what came, loops stop."""
    tp = TokenPaginator()
    tp.advance({"nextPageToken": "a", "isLast": False})
    assert tp.params() == {"nextPageToken": "a"}
    with pytest.raises(PaginationLoop):
        tp.advance({"nextPageToken": "a"})
    op = OffsetPaginator(100)
    op.advance({"startAt": 0, "maxResults": 50, "total": 120}, [1] * 50)
    assert op.params() == {"startAt": 50, "maxResults": 100} and op.has_more
    op.advance({"startAt": 50, "maxResults": 50, "total": 120}, [1] * 50)
    op.advance({"startAt": 100, "maxResults": 50, "total": 120}, [1] * 20)
    assert not op.has_more
    bare = OffsetPaginator(10)
    bare.advance([1] * 10, [1] * 10)
    bare.advance([1] * 3, [1] * 3)
    assert not bare.has_more and bare.pages == 2
    stuck = OffsetPaginator(10)
    with pytest.raises(PaginationLoop):
        stuck.advance({"startAt": -5, "isLast": False}, [1] * 5)


def test_limited_wait_reads_retry_after_and_cloud_headers() -> None:
    """Retry-After first, then Beta-Retry-After, then the ISO X-RateLimit-Reset; 429 only."""
    now = 1_700_000_000.0
    assert limited_wait(429, {"retry-after": "7"}, now) == 7.0
    assert limited_wait(429, {"beta-retry-after": "3"}, now) == 3.0
    assert limited_wait(429, {"x-ratelimit-reset": "2023-11-14T22:13:40Z"}, now) == pytest.approx(20.0)
    assert limited_wait(429, {}, now, attempt=2) == 20.0
    assert limited_wait(503, {"retry-after": "7"}, now) is None


def test_bodies_adf_and_wiki() -> None:
    """ADF becomes HTML (escaped, marks, mentions); wiki markup is escaped, not interpreted; text becomes ADF."""
    doc = {"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [
        {"type": "text", "text": "a<b", "marks": [{"type": "strong"}]},
        {"type": "mention", "attrs": {"id": "x", "text": "@Alice"}}]}]}
    assert adf.to_html(doc) == "<p><strong>a&lt;b</strong>@Alice</p>"
    assert adf.to_html("*bold* <x>") == "<pre>*bold* &lt;x&gt;</pre>"
    assert adf.from_text("one\ntwo")["content"][0]["content"] == [
        {"type": "text", "text": "one"}, {"type": "hardBreak"}, {"type": "text", "text": "two"}]


def test_ids_follow_the_original_formulas() -> None:
    """Issue/project/sprint: values(customer, ref, "jira"); user: values(customer, "jira", ref);
    comment: values(customer, ref, "jira", project id)."""
    assert models.issue_id("c1", "10001") == values("c1", "10001", "jira")
    assert models.project_id("c1", "10000") == values("c1", "10000", "jira")
    assert models.user_id("c1", "acc") == values("c1", "jira", "acc")
    assert models.comment_id("c1", "5", "p") == values("c1", "5", "jira", "p")
    assert models.config_id("c1", "") == ""


def test_change_log_sorts_oldest_first_and_maps_fields() -> None:
    """Histories arrive newest first on Cloud: the change log is oldest first with ordinals, status transitions
    keep who and when, and unknown fields are left out."""
    hist = [
        {"id": "2", "created": "2024-03-01T12:00:00.000+0000", "author": {"accountId": "b"},
         "items": [{"field": "status", "from": "3", "fromString": "In Progress", "to": "10001", "toString": "Done"},
                   {"field": "Rank", "from": "", "to": ""}]},
        {"id": "1", "created": "2024-03-01T11:00:00.000+0000", "author": {"accountId": "a"},
         "items": [{"field": "status", "from": "1", "fromString": "To Do", "to": "3", "toString": "In Progress"}]},
    ]
    log = models.change_log("c1", hist)
    assert [(e["ordinal"], e["field"], e["from"], e["to"], e["user_id"]) for e in log] == [
        (0, "STATUS", "To Do", "In Progress", "a"), (1, "STATUS", "In Progress", "Done", "b")]
    assert log[0]["created_date"]["rfc3339"] == "2024-03-01T11:00:00Z"


def test_prefetched_keeps_order_and_raises_at_the_failing_page() -> None:
    """Pages come in order while the next is fetched ahead; a failure surfaces when its page is due, after the
    pages before it were handed out."""
    def pages():
        yield 1
        yield 2
        raise ValueError("page 3 failed")

    got = []
    with pytest.raises(ValueError, match="page 3"):
        for p in prefetched(pages()):
            got.append(p)
    assert got == [1, 2]
    assert list(prefetched(iter([]))) == []
