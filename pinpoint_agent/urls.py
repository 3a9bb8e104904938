"""Credentials inside URLs: split off at the edge, so only the clean URL is logged, exported, put in a result
or on a child's command line, and the credentials travel apart (headers, GIT_ASKPASS).

A URL carries credentials as userinfo (``https://user:token@host/x``) or as token-like query parameters
(``?private_token=…``, ``?access_token=…``). Plain Python, used by the agent and (through the SDK) by
integrations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

# Query parameters that carry a credential (matched on the lower-cased name).
_SECRET_PARAM = re.compile(r"(^|_)(token|access_token|private_token|api_key|apikey|key|password|secret|sig|"
                           r"signature|auth|credentials?)$")
# Anything that looks like a URL with userinfo, inside free text (errors, git's output).
_USERINFO_IN_TEXT = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/\s@]+)@")


@dataclass(frozen=True)
class SplitURL:
    url: str  # the URL without credentials
    username: str = ""  # from the userinfo ("" when none)
    password: str = ""  # the userinfo's password, or a token query parameter's value

    @property
    def has_credentials(self) -> bool:
        return bool(self.username or self.password)

    @property
    def credentials(self) -> str:
        """``user:password``, a bare token, or "" (the form ``ExportGitRepo.credentials`` takes)."""
        if self.username and self.password:
            return f"{self.username}:{self.password}"
        return self.password or self.username

    @property
    def secrets(self) -> list[str]:
        """The values to mask: the password, and a username that is a token itself (``https://TOKEN@host``)."""
        values = [self.password] if self.password else []
        if self.username and not self.password:
            values.append(self.username)
        return values


def split_url(url: str) -> SplitURL:
    """``url`` without its userinfo and token query parameters, and those credentials apart. A string that
    is not a URL with a host (a path, ``git@host:x`` scp syntax) comes back unchanged."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return SplitURL(url)
    if not parts.scheme or not parts.netloc:
        return SplitURL(url)
    username = unquote(parts.username or "")
    password = unquote(parts.password or "")
    netloc = parts.netloc.rsplit("@", 1)[1] if "@" in parts.netloc else parts.netloc
    query = parts.query
    if query:
        kept, token = [], ""
        for name, value in parse_qsl(query, keep_blank_values=True):
            if _SECRET_PARAM.search(name.lower()) and value:
                token = token or value
            else:
                kept.append((name, value))
        if token:
            query = urlencode(kept)
            password = password or token
    clean = urlunsplit(parts._replace(netloc=netloc, query=query))
    return SplitURL(clean, username, password)


def clean_url(url: str) -> str:
    """``url`` without credentials."""
    return split_url(url).url


def scrub_text(text: str) -> str:
    """Free text (an error, git's stderr) with the userinfo of any URL in it removed."""
    return _USERINFO_IN_TEXT.sub(lambda m: m.group("scheme"), text)
