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
