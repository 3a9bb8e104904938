"""Incremental tokens of the merge request and issue sessions, as pure functions (tested without I/O).

Merge requests (and issues) are listed ``order_by=updated_at&sort=asc&updated_after=<after>``. GitLab's
``updated_after`` is inclusive ("updated on or after"), so a walk that restarts from the last ``updated_at``
it saw meets the objects of that instant again; ``ids`` names them so they are skipped. A token is::

    {"after": "2024-05-01T10:00:00.123Z", "ids": [412, 413]}   every object updated before `after`, and those
                                                               ids updated at `after`, are stored

The walk moves ``after`` forward after every page (asking page 1 again with the new ``after``) instead of
asking for page 2: an object updated during the walk moves to the end of the list, and with page numbers the
objects behind it would shift back by one and one of them would be skipped for good. Only when a whole page
shares one ``updated_at`` does it go to the next page number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson


@dataclass
class UpdatedCursor:
    after: str = ""
    ids: set[int] = field(default_factory=set)

    @property
    def historical(self) -> bool:
        return not self.after

    def seen(self, updated_at: str, oid: int) -> bool:
        """True for an object the stored position already covers (met again through the inclusive bound)."""
        return bool(self.after) and updated_at == self.after and oid in self.ids

    def advance(self, items: list[tuple[str, int]]) -> bool:
        """Moves past a page of ``(updated_at, id)`` (in list order); True when the next request starts again at
        page 1 with the new ``after``, False when the page had only one instant (ask the next page number)."""
        if not items:
            return True
        last = items[-1][0]
        same = {oid for at, oid in items if at == last}
        if last == self.after:  # the list is sorted: the whole page is that one instant
            self.ids |= same
            return False
        self.after, self.ids = last, same
        return True


def parse_cursor(token: str) -> UpdatedCursor:
    """The cursor a stored token describes; empty or unreadable means a first (historical) sync."""
    token = token.strip()
    if not token:
        return UpdatedCursor()
    if not token.startswith("{"):
        return UpdatedCursor(after=token) if parse_time(token) else UpdatedCursor()
    try:
        raw = orjson.loads(token)
    except orjson.JSONDecodeError:
        return UpdatedCursor()
    if not isinstance(raw, dict) or not parse_time(str(raw.get("after") or "")):
        return UpdatedCursor()
    ids = raw.get("ids") or []
    return UpdatedCursor(str(raw["after"]), {int(i) for i in ids if isinstance(i, int)})


def format_cursor(cursor: UpdatedCursor) -> str:
    if not cursor.after:
        return ""
    return orjson.dumps({"after": cursor.after, "ids": sorted(cursor.ids)}).decode()


def parse_time(text: str | None) -> datetime | None:
    """GitLab's ISO 8601 times (``2024-05-01T10:00:00.123Z`` or with an offset) as aware datetimes."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass
class EmailSweep:
    """The ``sourcecode.CommitUser`` token of an admin export: when every user's secondary emails were last
    read (``swept``) and the highest user id seen (``max_id``). GitLab's user lists carry the primary email
    but no sign that a secondary one changed, so ``/users/:id/emails`` (one request per user) is read for every
    user only every ``emails_refresh_hours``, and in between for new users only."""

    swept: str = ""
    max_id: int = 0

    def due(self, now: datetime, hours: float) -> bool:
        """True when every user's emails are to be read this time."""
        last = parse_time(self.swept)
        return last is None or hours <= 0 or (now - last).total_seconds() >= hours * 3600

    def wants(self, user_id: int, full: bool) -> bool:
        return full or user_id > self.max_id


def parse_sweep(token: str) -> EmailSweep:
    try:
        raw = orjson.loads(token) if token.strip().startswith("{") else {}
    except orjson.JSONDecodeError:
        raw = {}
    max_id = raw.get("max_id", 0) if isinstance(raw, dict) else 0
    swept = str(raw.get("swept") or "") if isinstance(raw, dict) else ""
    return EmailSweep(swept if parse_time(swept) else "", max_id if isinstance(max_id, int) else 0)


def format_sweep(sweep: EmailSweep) -> str:
    return orjson.dumps({"swept": sweep.swept, "max_id": sweep.max_id}).decode()


def format_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
