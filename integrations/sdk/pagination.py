"""What every paginator of an HTTP integration shares: a bound on the walk, the error for a server that sends
a page already walked, and the ``Link`` header (RFC 8288) that GitHub and GitLab page with."""

from __future__ import annotations

import re

from pinpoint_agent.errors import FatalError

MAX_PAGES = 100_000

_LINK = re.compile(r'<([^>]*)>\s*((?:;\s*[a-zA-Z]+="?[^",;]*"?\s*)+)')
_REL = re.compile(r'rel="?([^",;]+)"?')


class PaginationLoop(FatalError):
    """The server sent a page already walked (or too many pages): stop rather than loop forever."""


def parse_link_header(value: str | None) -> dict[str, str]:
    """``Link`` header -> ``{rel: url}`` (``next``, ``prev``, ``first``, ``last``)."""
    links: dict[str, str] = {}
    for url, params in _LINK.findall(value or ""):
        for rel_match in _REL.finditer(params):
            for rel in rel_match.group(1).split():
                links[rel] = url
    return links
