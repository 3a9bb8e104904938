"""Errors of the git layer, grouped by what the caller should do.

::

    GitError                      any failure of mirroring or processing one repo (fields: repo, url, detail)
    ├── AccessDenied              credentials refused, no permission, or no such repository: do not retry
    ├── EmptyRepo                 the repository has no commits; reported as ``"empty_repo"``
    ├── TransientGitError         network failure, stuck transfer, lock held: retry later (with backoff)
    └── FatalGitError             git or the repository misbehaved (corrupt objects, bad output): retrying
                                  the same input will not help

Foreign exceptions (``subprocess.CalledProcessError``/``TimeoutExpired``, ``pygit2.GitError``, ``OSError``)
are
translated into this tree in exactly one place, :func:`translating`. Messages and fields never hold a
credential: urls are stored without their user-info, and any secret known to the caller is masked.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import ClassVar
from urllib.parse import urlsplit, urlunsplit

import pygit2

__all__ = [
    "AccessDenied",
    "EmptyRepo",
    "FatalGitError",
    "GitError",
    "TransientGitError",
    "redact_url",
    "translating",
]


class GitError(Exception):
    """A git failure for one repository; ``code`` names the class of failure for results and logs."""

    code: ClassVar[str] = "git_error"

    def __init__(self, detail: str, *, repo: str = "", url: str = "") -> None:
        self.detail = detail
        self.repo = repo
        self.url = redact_url(url)
        super().__init__(detail)

    def __str__(self) -> str:
        where = " ".join(p for p in (self.repo, f"({self.url})" if self.url else "") if p)
        return f"{self.code}: {where}: {self.detail}" if where else f"{self.code}: {self.detail}"


class AccessDenied(GitError):
    """Authentication or authorization failed, or the repository does not exist. Not retried."""

    code = "access_denied"


class EmptyRepo(GitError):
    """The repository has no commits (no branch heads). ``str()`` is exactly ``"empty_repo"``."""

    code = "empty_repo"

    def __str__(self) -> str:
        return self.code


class TransientGitError(GitError):
    """A failure that may pass: network errors, a low-speed abort, a lock held by another git."""

    code = "transient"


class FatalGitError(GitError):
    """git failed in a way a retry will not fix (corrupt repository, unexpected output)."""

    code = "git_failed"


_ACCESS_DENIED = re.compile(
    r"authentication failed|could not read (username|password)|permission denied|access denied"
    r"|repository not found|returned error: 40[134]|terminal prompts disabled|invalid username or password"
    r"|host key verification failed|unable to read askpass",
    re.IGNORECASE,
)
_TRANSIENT = re.compile(
    r"could not resolve|connection refused|timed out|failed to connect|couldn't connect|rpc failed"
    r"|early eof|remote end hung up|operation too slow|transfer closed|connection reset|temporary failure"
    r"|\.lock': file exists|unable to create .*\.lock|ssl|gnutls|network is unreachable|http2"
    r"|returned error: 5\d\d|could not read from remote repository|unable to access",
    re.IGNORECASE,
)
_MISSING = re.compile(r"does not appear to be a git repository|does not exist|no such file", re.IGNORECASE)


def redact_url(url: str) -> str:
    """``url`` without user-info (``https://user:token@host/x`` → ``https://host/x``); other strings
    unchanged."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def _mask(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _classify(text: str) -> type[GitError]:
    # Refusals first (ssh says "Permission denied" then "Could not read from remote repository"), then network
    # trouble, then a missing repository (a local path that is gone reads like "does not exist").
    if _ACCESS_DENIED.search(text):
        return AccessDenied
    if _TRANSIENT.search(text):
        return TransientGitError
    if _MISSING.search(text):
        return AccessDenied
    return FatalGitError


def _describe(exc: BaseException) -> tuple[type[GitError], str]:
    if isinstance(exc, subprocess.TimeoutExpired):
        return TransientGitError, f"git {_verb(exc.cmd)} timed out after {exc.timeout:.0f}s"
    if isinstance(exc, subprocess.CalledProcessError):
        stderr = (
            exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else str(exc.stderr or "")
        )
        lines = [ln.strip() for ln in stderr.splitlines() if ln.strip() and not ln.startswith("Cloning into")]
        text = " | ".join(lines[-4:]) or f"exit status {exc.returncode}"
        return _classify(stderr), f"git {_verb(exc.cmd)} failed: {text}"
    if isinstance(exc, pygit2.GitError):
        return FatalGitError, f"libgit2: {exc}"
    if isinstance(exc, FileNotFoundError):
        return FatalGitError, f"not found: {exc.filename or exc}"
    return TransientGitError, f"{type(exc).__name__}: {exc}"


def _verb(cmd: object) -> str:
    """The git subcommand of an argv (the first word after ``git`` and its ``-c``/``-C`` options)."""
    args = [str(a) for a in cmd] if isinstance(cmd, list | tuple) else [str(cmd)]
    skip = False
    for arg in args[1:]:
        if skip:
            skip = False
        elif arg in ("-c", "-C"):
            skip = True
        elif not arg.startswith("-"):
            return arg
    return "?"


@contextmanager
def translating(*, repo: str, url: str, secrets: Sequence[str] = ()) -> Iterator[None]:
    """The one place where subprocess, libgit2 and OS failures become :class:`GitError` (``raise … from``).

    ``secrets`` (e.g. a token) are masked in the message, as a second line of defence: they are never given
    to a child's argv or stored in a url in the first place.
    """
    try:
        yield
    except GitError:
        raise
    except (subprocess.SubprocessError, pygit2.GitError, OSError) as exc:
        kind, detail = _describe(exc)
        raise kind(_mask(detail, secrets), repo=repo, url=_mask(url, secrets)) from None
