"""Incremental tokens of the pull request sessions, as pure functions (tested without any I/O).

A pull request session's token is compact JSON (older plain RFC 3339 tokens are read as ``since``)::

    {"since": "2024-05-01T10:00:00Z", "etag": "W/\\"ab12\\""}   complete: every pull request updated before
                                                                 `since` (GitHub's clock) is stored
    {"started": "2024-05-01T10:00:00Z", "page": 30,              a first sync in progress: the first 30 pages
     "per_page": 100}                                            (of 100), oldest first, are stored

``etag`` is the ETag of the first page of the newest-first list at the last sync: sent as If-None-Match, an
unchanged repo answers 304, which GitHub does not count against the quota.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import orjson

# GitHub's Date header has whole seconds: take a second off so nothing updated "at" the same second is missed.
CLOCK_MARGIN = timedelta(seconds=1)


@dataclass
class PullRequestCursor:
    since: str = ""
    etag: str = ""
    started: str = ""
    page: int = 0
    per_page: int = 0  # page size of the interrupted walk: pages of another size do not line up

    @property
    def historical(self) -> bool:
        """No complete sync yet: walk oldest first (resuming after ``page`` when one was interrupted)."""
        return not self.since


def parse_cursor(token: str) -> PullRequestCursor:
    """The cursor a stored token describes; an empty or unreadable token means a first sync."""
    token = token.strip()
    if not token:
        return PullRequestCursor()
    if not token.startswith("{"):
        return PullRequestCursor(since=token) if parse_time(token) else PullRequestCursor()
    try:
        raw = orjson.loads(token)
    except orjson.JSONDecodeError:
        return PullRequestCursor()
    if not isinstance(raw, dict):
        return PullRequestCursor()
    page = raw.get("page", 0)
    return PullRequestCursor(
        since=str(raw.get("since") or ""),
        etag=str(raw.get("etag") or ""),
        started=str(raw.get("started") or ""),
        page=page if isinstance(page, int) and page > 0 else 0,
        per_page=int(raw.get("per_page") or 0) if str(raw.get("per_page") or 0).isdigit() else 0,
    )


def format_cursor(cursor: PullRequestCursor) -> str:
    data = {
        k: v
        for k, v in (
            ("since", cursor.since),
            ("etag", cursor.etag),
            ("started", cursor.started),
            ("page", cursor.page),
            ("per_page", cursor.per_page),
        )
        if v
    }
    return orjson.dumps(data).decode()


def parse_time(text: str | None) -> datetime | None:
    """GitHub's ISO 8601 times (``2024-05-01T10:00:00Z``) as aware datetimes."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def format_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def server_time(date_header: str | None, fallback: datetime | None = None) -> str:
    """GitHub's clock from an answer's ``Date`` header, minus ``CLOCK_MARGIN``, as a token/``since`` value.

    Tokens use GitHub's clock rather than ours, so a skewed agent clock cannot lose updates.
    """
    when = None
    if date_header:
        try:
            when = parsedate_to_datetime(date_header)
        except (TypeError, ValueError):
            when = None
    when = when or fallback or datetime.now(UTC)
    return format_time(when - CLOCK_MARGIN)


def updated_before(updated_at: str | None, since: str) -> bool:
    """True when a pull request's ``updated_at`` is before ``since`` (the newest-first walk stops there)."""
    a, b = parse_time(updated_at), parse_time(since)
    return a is not None and b is not None and a < b
