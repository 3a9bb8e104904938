"""Small helpers of the HTTP integrations' clients: how a url is shown (never its query, which may hold a
token) and whose server a url points at (a next-page link to another host is refused)."""

from __future__ import annotations

from urllib.parse import urlsplit


def origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``, lower-cased."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def shown_path(url: str, base: str) -> str:
    """The url as errors and logs show it: relative to ``base`` (the API) and without the query string."""
    path = url.split("?", 1)[0]
    return path[len(base):] or "/" if path.startswith(base) else urlsplit(path).path
