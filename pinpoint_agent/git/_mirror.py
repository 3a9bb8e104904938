"""A bare mirror of a remote repository under the agent's cache, cloned once and fetched afterwards."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from pinpoint_agent.askpass import credential_env

from ._cmd import base_env, run
from ._errors import AccessDenied, EmptyRepo, TransientGitError, redact_url, translating
from ._model import GitFetch

__all__ = ["mirror_path", "update_mirror"]

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def mirror_path(cache_root: Path, fetch: GitFetch) -> Path:
    """``<cache_root>/<ref_type-unique_name, unsafe characters as _>-<repo_id>`` (the repo id keeps it
    unique)."""
    name = _UNSAFE.sub("_", f"{fetch.ref_type}-{fetch.unique_name}")
    return Path(cache_root) / f"{name}-{_UNSAFE.sub('_', fetch.repo_id)}"


def _split_credentials(url: str, credentials: str | None) -> tuple[str, str | None, str]:
    """(url without user-info, token, username): a password in the url counts as the token if none is
    given; ``credentials`` are a token or ``user:password``."""
    clean = redact_url(url)
    username = "x-access-token"
    if clean != url:
        userinfo = url.split("://", 1)[1].split("@", 1)[0]
        user, _, password = userinfo.partition(":")
        if password:
            username, credentials = user or username, credentials or password
        elif credentials:
            username = user or username
        else:
            clean = url  # a user name alone (ssh://git@host/...) is not a secret
    elif credentials and ":" in credentials:  # "user:password", as split off a url by the integration
        username, credentials = credentials.split(":", 1)
    return clean, credentials, username


def _healthy(path: Path, env: dict[str, str]) -> bool:
    """True when ``path`` is a repository whose newest commit can be read (or that has no refs at all)."""
    if not (path / "HEAD").exists():
        return False
    try:
        if not run(["for-each-ref", "--count=1", "--format=%(refname)"], cwd=path, env=env).strip():
            return True  # an empty remote gives an empty mirror: nothing to read, nothing broken
        run(["log", "-n", "1", "--all", "--format=%H"], cwd=path, env=env)
    except subprocess.CalledProcessError:
        return False
    return True


def _clone(url: str, path: Path, env: dict[str, str], timeout: float | None) -> None:
    tmp = path.with_name(f"{path.name}.clone-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        run(
            [
                "-c",
                "core.longpaths=true",
                "-c",
                "credential.helper=",
                "clone",
                "--mirror",
                "--quiet",
                "--",
                url,
                str(tmp),
            ],
            env=env,
            timeout=timeout,
        )
        run(["config", "core.longpaths", "true"], cwd=tmp, env=env)
        run(["config", "gc.writeCommitGraph", "true"], cwd=tmp, env=env)
        run(["commit-graph", "write", "--reachable"], cwd=tmp, env=env)
        tmp.rename(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _fetch(url: str, path: Path, env: dict[str, str], timeout: float | None) -> None:
    run(["remote", "set-url", "origin", url], cwd=path, env=env)  # the url may have moved; never credentials
    run(
        [
            "-c",
            "credential.helper=",
            "-c",
            "fetch.writeCommitGraph=true",
            "fetch",
            "--prune",
            "--quiet",
            "origin",
        ],
        cwd=path,
        env=env,
        timeout=timeout,
    )
    _follow_default(path, env, timeout)


def _follow_default(path: Path, env: dict[str, str], timeout: float | None) -> None:
    """Points the mirror's HEAD at the remote's current default branch (``fetch`` never moves a mirror's
    HEAD, so a default branch renamed or switched upstream after the clone would otherwise be missed).

    Asks the remote with ``ls-remote --symref`` (credentials through the same environment as the fetch). A
    remote that does not advertise HEAD, or names a branch the mirror lacks, leaves HEAD as it is.
    """
    out = run(
        ["-c", "credential.helper=", "ls-remote", "--symref", "origin", "HEAD"],
        cwd=path,
        env=env,
        timeout=timeout,
    )
    target = ""
    for line in out.decode(errors="replace").splitlines():
        if line.startswith("ref: ") and line.endswith("\tHEAD"):
            target = line[5:-5]
    if not target.startswith("refs/heads/"):
        return
    try:
        current = run(["symbolic-ref", "-q", "HEAD"], cwd=path, env=env).decode().strip()
    except subprocess.CalledProcessError:
        current = ""  # a detached HEAD: point it at the default branch
    if current == target:
        return
    try:
        run(["rev-parse", "--verify", "-q", target], cwd=path, env=env)
    except subprocess.CalledProcessError:
        log.warning("remote default branch %s is not in mirror %s; HEAD left at %s", target, path, current)
        return
    log.info("default branch of %s moved from %s to %s", path, current, target)
    run(["symbolic-ref", "HEAD", target], cwd=path, env=env)


def update_mirror(
    fetch: GitFetch,
    cache_root: Path,
    *,
    credentials: str | None = None,
    retries: int = 3,
    backoff: float = 2.0,
    low_speed_limit: int = 10_000,
    low_speed_time: int = 60,
    timeout: float | None = None,
) -> Path:
    """Clones ``fetch.url`` as a mirror (first run) or fetches it with prune; returns the mirror's path.

    A mirror that cannot show its newest commit is deleted and cloned again. Transient failures are tried
    ``retries`` times in all, sleeping ``backoff * 2**attempt`` seconds between tries; access denied is not
    retried. ``credentials`` (a token) travel only through the children's environment. Raises
    :class:`EmptyRepo` when the remote has no commits, else a :class:`GitError` subclass.
    """
    url, token, username = _split_credentials(fetch.url, credentials)
    path = mirror_path(cache_root, fetch)
    secrets = [s for s in (token, credentials) if s]
    with (
        translating(repo=fetch.unique_name, url=url, secrets=secrets),
        credential_env(token, username) as cred,
    ):
        env = base_env(
            {
                "GIT_HTTP_LOW_SPEED_LIMIT": str(low_speed_limit),
                "GIT_HTTP_LOW_SPEED_TIME": str(low_speed_time),
                **cred,
            }
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(max(1, retries)):
            try:
                with translating(repo=fetch.unique_name, url=url, secrets=secrets):
                    if path.exists() and not _healthy(path, env):
                        log.warning("git mirror %s is broken; cloning it again", path)
                        shutil.rmtree(path)
                    if path.exists():
                        _fetch(url, path, env, timeout)
                    else:
                        _clone(url, path, env, timeout)
                break
            except TransientGitError as exc:
                if attempt + 1 >= max(1, retries):
                    raise
                log.warning(
                    "git fetch of %s failed (try %d of %d): %s", fetch.unique_name, attempt + 1, retries, exc
                )
                time.sleep(backoff * 2**attempt)
            except AccessDenied:
                raise
        if not run(
            ["for-each-ref", "--count=1", "--format=%(refname)", "refs/heads/"], cwd=path, env=env
        ).strip():
            raise EmptyRepo("the repository has no branches", repo=fetch.unique_name, url=url)
    return path
