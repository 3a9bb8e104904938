"""Paginators, as data (meltano's ``advance``/``has_more``): where the next page starts and whether there is one.

Jira pages three ways:

- ``TokenPaginator``: Cloud's ``/rest/api/3/search/jql`` answers ``nextPageToken`` (absent, or ``isLast``
  true, on the last page) and gives no total.
- ``OffsetPaginator``: ``startAt``/``maxResults`` with ``total`` (Data Center ``/search``, comments), or
  with ``isLast`` (``/project/search``, ``/changelog``, the Agile API's ``values`` lists), or a bare JSON
  array that simply runs short on its last page (``/users/search``, ``/user/search``). A server may answer
  fewer items than asked for (Jira caps ``maxResults`` per endpoint): the next page starts after what came.

Both refuse to go round in circles: a token seen before, an offset that does not move, or more than
``max_pages`` pages is a ``PaginationLoop``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from integrations.sdk.pagination import MAX_PAGES, PaginationLoop


class TokenPaginator:
    def __init__(self, *, max_pages: int = MAX_PAGES) -> None:
        self.token: str | None = None
        self.done = False
        self.pages = 0
        self.max_pages = max_pages
        self._seen: set[str] = set()

    @property
    def has_more(self) -> bool:
        return not self.done

    def params(self) -> dict[str, Any]:
        return {"nextPageToken": self.token} if self.token else {}

    def advance(self, body: Mapping[str, Any]) -> None:
        self.pages += 1
        token = body.get("nextPageToken")
        if not token or body.get("isLast") is True:
            self.done = True
            return
        if token in self._seen:
            raise PaginationLoop("pagination loop: Jira sent a nextPageToken already used")
        if self.pages >= self.max_pages:
            raise PaginationLoop(f"pagination stopped after {self.pages} pages")
        self._seen.add(str(token))
        self.token = str(token)


class OffsetPaginator:
    def __init__(self, page_size: int, *, start_at: int = 0, max_pages: int = MAX_PAGES) -> None:
        self.page_size = page_size
        self.start_at = start_at
        self.done = False
        self.pages = 0
        self.total: int | None = None
        self.max_pages = max_pages

    @property
    def has_more(self) -> bool:
        return not self.done

    def params(self) -> dict[str, Any]:
        return {"startAt": self.start_at, "maxResults": self.page_size}

    def advance(self, body: Any, items: list[Any]) -> None:
        """``body``: the answer (an object with ``startAt``/``total``/``isLast``, or the bare array)."""
        self.pages += 1
        meta = body if isinstance(body, Mapping) else {}
        if isinstance(meta.get("total"), int):
            self.total = int(meta["total"])
        start = meta.get("startAt", self.start_at)
        start = start if isinstance(start, int) else self.start_at
        nxt = start + len(items)
        if not items or meta.get("isLast") is True:
            self.done = True
        elif "isLast" in meta:
            self.done = False
        elif self.total is not None:
            self.done = nxt >= self.total
        else:
            asked = meta.get("maxResults", self.page_size)
            self.done = len(items) < (asked if isinstance(asked, int) else self.page_size)
        if self.done:
            return
        if nxt <= self.start_at:
            raise PaginationLoop(f"pagination loop: startAt stays at {self.start_at}")
        if self.pages >= self.max_pages:
            raise PaginationLoop(f"pagination stopped after {self.pages} pages")
        self.start_at = nxt
