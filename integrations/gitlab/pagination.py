"""Paginators for GitLab's two kinds of lists (``advance`` after each page, ``has_more`` while there is one).

- ``OffsetPaginator``: ``page``/``per_page``; the next page number is in ``X-Next-Page`` (empty on the last
  page). ``X-Total-Pages`` gives the count when GitLab knows it (it leaves the totals out above 10,000 items).
- ``KeysetPaginator``: ``pagination=keyset`` (projects ordered by id, among others); the next page is the
  ``Link: <url>; rel="next"`` url, and there are no totals at all.

Both refuse to go round in circles: a next page seen before is a ``PaginationLoop``, and so is a walk longer
than ``max_pages``.
"""

from __future__ import annotations

from collections.abc import Mapping

from integrations.sdk.pagination import MAX_PAGES, PaginationLoop, parse_link_header


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


class OffsetPaginator:
    """Follows ``X-Next-Page``: ``next_page`` is the page number to ask for while ``has_more``."""

    def __init__(self, start_page: int = 1, *, max_pages: int = MAX_PAGES) -> None:
        self.next_page: int | None = start_page
        self.pages = 0
        self.total_pages: int | None = None
        self.max_pages = max_pages
        self._seen: set[int] = {start_page}

    @property
    def has_more(self) -> bool:
        return self.next_page is not None

    def advance(self, headers: Mapping[str, str]) -> None:
        self.pages += 1
        self.total_pages = _int(headers.get("x-total-pages")) or self.total_pages
        nxt = _int(headers.get("x-next-page"))
        if nxt is None:
            self.next_page = None
            return
        if nxt in self._seen:
            raise PaginationLoop(f"pagination loop: the server sent page {nxt} again")
        if self.pages >= self.max_pages:
            raise PaginationLoop(f"pagination stopped after {self.pages} pages")
        self._seen.add(nxt)
        self.next_page = nxt


class KeysetPaginator:
    """Follows ``rel="next"`` of keyset-paginated lists; ``next_url`` while ``has_more``."""

    def __init__(self, *, max_pages: int = MAX_PAGES) -> None:
        self.next_url: str | None = None
        self.done = False
        self.pages = 0
        self.total_pages: int | None = None  # keyset lists have no totals
        self.max_pages = max_pages
        self._seen: set[str] = set()

    @property
    def has_more(self) -> bool:
        return not self.done

    def advance(self, headers: Mapping[str, str]) -> None:
        self.pages += 1
        nxt = parse_link_header(headers.get("link")).get("next")
        if not nxt:
            self.done, self.next_url = True, None
            return
        if nxt in self._seen:
            raise PaginationLoop("pagination loop: the server sent a keyset page again")
        if self.pages >= self.max_pages:
            raise PaginationLoop(f"pagination stopped after {self.pages} pages")
        self._seen.add(nxt)
        self.next_url = nxt
