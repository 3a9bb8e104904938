"""The GitHub integration's config: the entry's ``config`` object, validated into ``GitHubConfig``.

Plain dataclasses rather than pydantic on purpose (as ``pinpoint_agent.protocol.wire``): the plugin
parses its config on every call, and pydantic would add ~200 ms to each cold start. Every field has a
``description`` in its metadata; ``describe()`` lists them (validate-config errors refer to these names).

The token is kept in a ``Secret`` whose ``repr``/``str`` never show it.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlparse

from pinpoint_agent.errors import ConfigError
from pinpoint_agent.urls import split_url

PUBLIC_HOSTS = ("github.com", "api.github.com", "www.github.com")
PUBLIC_API = "https://api.github.com"


class Secret:
    """A string that does not show itself in ``repr``, ``str`` or f-strings."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__


def _d(text: str, default: Any = None, **kw: Any) -> Any:
    """A dataclass field with a description."""
    if isinstance(default, list):
        return field(default_factory=list, metadata={"description": text}, **kw)
    return field(default=default, metadata={"description": text}, **kw)


@dataclass(frozen=True)
class ApiUrls:
    """Where the REST and GraphQL APIs of one GitHub live."""

    rest: str
    graphql: str
    enterprise: bool


@dataclass
class GitHubConfig:
    """The integration entry's ``config`` for ``github``."""

    url: str = _d(
        "GitHub web or API url: github.com/api.github.com for the public GitHub; any other url is "
        "GitHub Enterprise Server, whose APIs are <url>/api/v3 and <url>/api/graphql",
        "https://api.github.com",
    )
    api_key: Secret = _d(
        "personal access token (or GitHub App installation token); `access_token` is "
        "accepted as another name",
        Secret(""),
        repr=False,
    )
    organization: str = _d("the organization (login) whose members and repos are exported", "")
    inclusions: list[str] = _d("only repos matching one of these names or globs (`name` or `owner/name`)", [])
    exclusions: list[str] = _d("skip repos matching one of these names or globs", [])
    repos: list[str] = _d(
        "explicit `owner/name` list; overrides organization listing, inclusions and exclusions", []
    )
    only_git: bool = _d("only queue git processing of the repos; no users, pull requests or comments", False)
    stop_after_n: int = _d("stop after this many pull requests per repo (0: no limit); for trials", 0)
    concurrency: int = _d("repos exported at the same time (1-16)", 1)
    insecure_skip_verify: bool = _d(
        "do not verify the TLS certificate (self-signed Enterprise servers)", False
    )
    per_page: int = _d("page size of list calls (GitHub allows 1-100)", 100)
    checkpoint_pages: int = _d(
        "on a first (historical) sync, store progress every this many pages of pull "
        "requests, so a failure keeps what was done",
        10,
    )
    rate_limit_reserve: float = _d(
        "share of the hourly quota kept in reserve: below it the export waits for the reset (0-0.9)", 0.2
    )
    webhook_secret: Secret = _d(
        "secret to check X-Hub-Signature-256 of webhook deliveries (empty: not checked)",
        Secret(""),
        repr=False,
    )
    timeout: float = _d("seconds an HTTP request may take", 60.0)

    @property
    def token(self) -> str:
        return self.api_key.get()

    def api(self) -> ApiUrls:
        """REST and GraphQL urls: public GitHub, or Enterprise (``<url>/api/v3``, ``<url>/api/graphql``)."""
        parsed = urlparse(self.url if "://" in self.url else f"https://{self.url}")
        host = (parsed.hostname or "").lower()
        if host in PUBLIC_HOSTS:
            return ApiUrls(PUBLIC_API, f"{PUBLIC_API}/graphql", enterprise=False)
        base = f"{parsed.scheme}://{parsed.netloc}{parsed.path.rstrip('/')}"
        for suffix in ("/api/v3", "/api"):  # a url given as the API url is taken back to the server's
            if base.endswith(suffix):
                base = base[: -len(suffix)]
                break
        return ApiUrls(f"{base}/api/v3", f"{base}/api/graphql", enterprise=True)

    def wants_repo(self, full_name: str) -> bool:
        """Inclusions/exclusions by ``owner/name`` or ``name`` (case-insensitive globs)."""
        name = full_name.lower()
        short = name.split("/", 1)[-1]

        def matches(patterns: list[str]) -> bool:
            return any(
                fnmatch.fnmatchcase(name, p.lower()) or fnmatch.fnmatchcase(short, p.lower())
                for p in patterns
            )

        if self.inclusions and not matches(self.inclusions):
            return False
        return not matches(self.exclusions)


def describe() -> dict[str, str]:
    """Field name -> description, for documentation and error messages."""
    return {f.name: f.metadata["description"] for f in fields(GitHubConfig)}


def _names(value: Any, key: str) -> list[str]:
    """A list of names, also accepted as one comma-separated string (as the original agent's backend sent)."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    raise ConfigError(f"github config: {key} must be a list of names")


def _number(raw: dict[str, Any], key: str, default: float, lo: float, hi: float, kind: type) -> Any:
    value = raw.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"github config: {key} must be a number")
    try:
        number = kind(value)
    except ValueError:
        raise ConfigError(f"github config: {key} must be a number, got {value!r}") from None
    if not lo <= number <= hi:
        raise ConfigError(f"github config: {key} must be between {lo:g} and {hi:g}, got {number:g}")
    return number


def _flag(raw: dict[str, Any], key: str) -> bool:
    value = raw.get(key, False)
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def parse_config(raw: dict[str, Any], *, oauth_token: str = "") -> GitHubConfig:
    """Validates the entry's config; ``oauth_token`` is used when the agent holds the token (OAuth)."""
    if not isinstance(raw, dict):
        raise ConfigError("github config must be a JSON object")
    # Credentials written into the url (https://user:TOKEN@host) are split off: the clean url is what is
    # used, logged and exported; the token counts as api_key when none is given.
    split = split_url(str(raw.get("url") or PUBLIC_API).strip())
    url = split.url
    token = oauth_token or str(raw.get("api_key") or raw.get("access_token") or split.password or "")
    if not token:
        raise ConfigError("github config: api_key (or access_token) is required")
    parsed = urlparse(url if "://" in url else f"https://{url}")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigError(f"github config: url {url!r} is not an http(s) url")
    repos = _names(raw.get("repos"), "repos")
    bad = [r for r in repos if r.count("/") != 1 or not all(r.split("/"))]
    if bad:
        raise ConfigError(f"github config: repos must be owner/name, got {bad[0]!r}")
    organization = str(raw.get("organization") or "").strip()
    if not organization and not repos:
        raise ConfigError("github config: organization is required (or an explicit repos list)")
    return GitHubConfig(
        url=url,
        api_key=Secret(token),
        organization=organization,
        inclusions=_names(raw.get("inclusions"), "inclusions"),
        exclusions=_names(raw.get("exclusions"), "exclusions"),
        repos=repos,
        only_git=_flag(raw, "only_git"),
        stop_after_n=_number(raw, "stop_after_n", 0, 0, 10**9, int),
        concurrency=_number(raw, "concurrency", 1, 1, 16, int),
        insecure_skip_verify=_flag(raw, "insecure_skip_verify"),
        per_page=_number(raw, "per_page", 100, 1, 100, int),
        checkpoint_pages=_number(raw, "checkpoint_pages", 10, 1, 10**6, int),
        rate_limit_reserve=_number(raw, "rate_limit_reserve", 0.2, 0.0, 0.9, float),
        webhook_secret=Secret(str(raw.get("webhook_secret") or "")),
        timeout=_number(raw, "timeout", 60.0, 1.0, 600.0, float),
    )
