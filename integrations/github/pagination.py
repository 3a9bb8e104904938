"""Paginators: where the next page is, and whether there is one (meltano's ``advance``/``has_more``).

- ``LinkPaginator``: REST pages follow the ``Link: <url>; rel="next"`` header; the last page has no ``next``.
- ``CursorPaginator``: GraphQL connections follow ``pageInfo {hasNextPage endCursor}``.

Both refuse to go round in circles: a next page (url or cursor) seen before is a ``PaginationLoop``, and so is
a walk longer than ``max_pages``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from integrations.sdk.pagination import MAX_PAGES, PaginationLoop, parse_link_header


def last_page_number(links: Mapping[str, str]) -> int | None:
    """The page number of ``rel="last"`` (GitHub's page count), if the header has one."""
    last = links.get("last")
    match = re.search(r"[?&]page=(\d+)", last or "")
    return int(match.group(1)) if match else None


class LinkPaginator:
    """Follows ``rel="next"``: ``advance(headers)`` after each page, ``next_url`` while ``has_more``."""

    def __init__(self, first_url: str, *, max_pages: int = MAX_PAGES) -> None:
        self.next_url: str | None = first_url
        self.pages = 0
        self.total_pages: int | None = None
        self.max_pages = max_pages
        self._seen: set[str] = {first_url}

    @property
    def has_more(self) -> bool:
        return self.next_url is not None

    def advance(self, headers: Mapping[str, str]) -> None:
        self.pages += 1
        links = parse_link_header(headers.get("link"))
        if self.total_pages is None:
            self.total_pages = last_page_number(links) or (self.pages if "next" not in links else None)
        nxt = links.get("next")
        if nxt is None:
            self.next_url = None
            return
        if nxt in self._seen:
            raise PaginationLoop(f"pagination loop: the server sent page {nxt.split('?', 1)[-1]} again")
        if self.pages >= self.max_pages:
            raise PaginationLoop(f"pagination stopped after {self.pages} pages")
        self._seen.add(nxt)
        self.next_url = nxt


class CursorPaginator:
    """Follows a GraphQL connection's ``pageInfo``; ``after`` is the cursor for the next query."""

    def __init__(self, *, max_pages: int = MAX_PAGES) -> None:
        self.after: str | None = None
        self.done = False
        self.pages = 0
        self.max_pages = max_pages
        self._seen: set[str] = set()

    @property
    def has_more(self) -> bool:
        return not self.done

    def advance(self, page_info: Mapping[str, Any]) -> None:
        self.pages += 1
        cursor = page_info.get("endCursor")
        if not page_info.get("hasNextPage") or not cursor:
            self.done = True
            return
        if cursor in self._seen:
            raise PaginationLoop(f"pagination loop: cursor {cursor!r} came back")
        if self.pages >= self.max_pages:
            raise PaginationLoop(f"pagination stopped after {self.pages} pages")
        self._seen.add(cursor)
        self.after = cursor
