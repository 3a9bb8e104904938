"""Incremental tokens of the issue sessions and the JQL they turn into, as pure functions.

A project's ``work.Issue`` token is Jira's own ``updated`` time of the last issue stored (issues are walked
``ORDER BY updated ASC, key ASC``, so every issue before it is stored too), or Jira's clock at the start of a
run that found no issue. Stored as RFC 3339 in UTC.

The next search asks ``updated >= "<token minus the safety window>"``. JQL dates have minute precision and are
read in the time zone of the user the credentials belong to (``/myself``'s ``timeZone``), not UTC: the token is
converted into that zone before formatting, and floored to the minute. The window re-reads the issues of the last
few minutes (an issue saved while the previous run walked, a clock step): the agent's dedup drops those that did
not change.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def parse_time(text: str | None) -> datetime | None:
    """Jira's ``2024-05-01T10:00:00.000+0200`` (and RFC 3339) as an aware datetime."""
    if not text:
        return None
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    elif len(value) > 5 and value[-5] in "+-" and value[-4:].isdigit():
        value = value[:-2] + ":" + value[-2:]  # +0200 -> +02:00
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def format_token(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def later(a: str, b: str) -> str:
    """The later of two tokens (either may be empty)."""
    ta, tb = parse_time(a), parse_time(b)
    if ta is None:
        return b if tb is not None else ""
    if tb is None:
        return a
    return a if ta >= tb else b


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def jql_since(token: str, window: timedelta, tz: ZoneInfo) -> str:
    """The JQL date for ``updated >=``: token minus ``window`` in the user's zone, floored to the minute;
    empty for no (or an unreadable) token."""
    when = parse_time(token)
    if when is None:
        return ""
    return (when - window).astimezone(tz).strftime("%Y/%m/%d %H:%M")


def quote_jql(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def issues_jql(project_key: str, since: str) -> str:
    """``project = "KEY" [AND updated >= "since"] ORDER BY updated ASC, key ASC``."""
    jql = f"project = {quote_jql(project_key)}"
    if since:
        jql += f" AND updated >= {quote_jql(since)}"
    return jql + " ORDER BY updated ASC, key ASC"
