"""Mirrors: clone then fetch, re-clone of a broken mirror, empty repos, and credentials that never leak."""

from __future__ import annotations

import base64
import os
import socket
import stat
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from pinpoint_agent.git import (
    BRANCH,
    COMMIT,
    AccessDenied,
    EmptyRepo,
    TransientGitError,
    mirror_path,
    process_repo,
    update_mirror,
)

from .conftest import Collector, GitRepo, fetch_for

TOKEN = "s3cr3t-T0KEN-value"


def test_mirror_path_is_escaped_and_unique(tmp_path: Path) -> None:
    """The mirror folder is <ref_type-unique_name escaped>-<repo_id> directly under the cache root."""
    path = mirror_path(tmp_path, fetch_for("x"))
    assert path == tmp_path / "github-acme_widgets-repo1"


def test_clone_then_fetch_after_upstream_change(rich: GitRepo, tmp_path: Path) -> None:
    """The first call clones a mirror, a later call fetches new upstream commits (file:// url)."""
    fetch = fetch_for(rich.path, url=f"file://{rich.path}")
    mirror = update_mirror(fetch, tmp_path / "cache")
    assert (mirror / "HEAD").exists() and not (mirror / ".git").exists()
    first = Collector()
    result = process_repo(fetch, mirror, customer_id="c", checkpoint=None, emit=first)
    sha = rich.commit("upstream change", {"up.txt": "1\n"})
    assert update_mirror(fetch, tmp_path / "cache") == mirror
    second = Collector()
    process_repo(fetch, mirror, customer_id="c", checkpoint=result.checkpoint, emit=second)
    assert [c["sha"] for c in second.get(COMMIT)] == [sha]
    assert "core.longpaths" in (mirror / "config").read_text().replace("longpaths = true", "core.longpaths")


def test_broken_mirror_is_cloned_again(rich: GitRepo, tmp_path: Path) -> None:
    """A mirror whose objects are gone (git log -n 1 fails) is deleted and cloned again."""
    fetch = fetch_for(rich.path)
    mirror = update_mirror(fetch, tmp_path / "cache")
    for obj in [p for p in (mirror / "objects").rglob("*") if p.is_file()]:
        obj.chmod(stat.S_IWUSR | stat.S_IRUSR)
        obj.unlink()
    (mirror / "marker").write_text("from the broken mirror")
    assert update_mirror(fetch, tmp_path / "cache") == mirror
    assert not (mirror / "marker").exists()
    out = Collector()
    process_repo(fetch, mirror, customer_id="c", checkpoint=None, emit=out)
    assert len(out.get(COMMIT)) == int(rich.git("rev-list", "--count", "--branches"))


def test_empty_repo_is_reported_as_empty_repo(make_repo: object, tmp_path: Path) -> None:
    """A repository without commits raises EmptyRepo, reported as "empty_repo", from mirror and processing."""
    empty = make_repo("empty")  # type: ignore[operator]
    with pytest.raises(EmptyRepo) as exc:
        update_mirror(fetch_for(empty.path), tmp_path / "cache")
    assert str(exc.value) == "empty_repo" and exc.value.code == "empty_repo"
    with pytest.raises(EmptyRepo):
        process_repo(fetch_for(empty.path), empty.path, customer_id="c", checkpoint=None, emit=Collector())


def test_missing_repository_is_access_denied_without_retry(tmp_path: Path) -> None:
    """A repository that does not exist is AccessDenied, raised on the first try (no backoff sleeping)."""
    with pytest.raises(AccessDenied) as exc:
        update_mirror(fetch_for(tmp_path / "nope"), tmp_path / "cache", backoff=30)
    assert exc.value.repo == "acme/widgets"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def git_spy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Puts a ``git`` first on PATH that records each child's argv, then runs the real git."""
    real = next(Path(d) / "git" for d in os.environ["PATH"].split(os.pathsep) if (Path(d) / "git").is_file())
    spy_dir = tmp_path / "spy"
    spy_dir.mkdir()
    log = tmp_path / "argv.log"
    (spy_dir / "git").write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\nexec "{real}" "$@"\n')
    (spy_dir / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{spy_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def test_token_never_in_error_config_or_argv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a token (given or inside the url) and an unreachable https host, the token is in no error or
    argv."""
    argv_log = git_spy(tmp_path, monkeypatch)
    port = closed_port()
    for url, credentials in (
        (f"https://127.0.0.1:{port}/acme/widgets.git", TOKEN),
        (f"https://user:{TOKEN}@127.0.0.1:{port}/acme/widgets.git", None),
    ):
        fetch = fetch_for("unused", url=url)
        with pytest.raises(TransientGitError) as exc:
            update_mirror(fetch, tmp_path / "cache", credentials=credentials, retries=2, backoff=0)
        assert (
            TOKEN not in str(exc.value) and TOKEN not in repr(exc.value.args) and TOKEN not in exc.value.url
        )
        assert "127.0.0.1" in str(exc.value)
        assert exc.value.__cause__ is None and exc.value.__context__ is not None
    assert argv_log.read_text().count("clone --mirror") == 4  # 2 urls x 2 tries, each seen by the spy
    assert TOKEN not in argv_log.read_text()
    leftovers = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert all(TOKEN not in p.read_text(errors="replace") for p in leftovers)


class _AuthRecorder(BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        auth = self.headers.get("Authorization")
        if auth:
            type(self).seen.append(base64.b64decode(auth.split()[1]).decode())
            self.send_response(403)
        else:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_token_reaches_the_server_through_askpass_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """git answers a 401 with the token from the askpass helper; refusal is AccessDenied; config stays
    clean."""
    argv_log = git_spy(tmp_path, monkeypatch)
    server = HTTPServer(("127.0.0.1", 0), _AuthRecorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        fetch = fetch_for("unused", url=f"http://127.0.0.1:{server.server_port}/acme/widgets.git")
        with pytest.raises(AccessDenied) as exc:
            update_mirror(fetch, tmp_path / "cache", credentials=TOKEN, backoff=30)
    finally:
        server.shutdown()
    assert _AuthRecorder.seen and _AuthRecorder.seen[0] == f"x-access-token:{TOKEN}"
    assert TOKEN not in str(exc.value) and TOKEN not in argv_log.read_text()
    assert not mirror_path(tmp_path / "cache", fetch).exists()


def test_fetch_keeps_credential_free_url_in_config(rich: GitRepo, tmp_path: Path) -> None:
    """A url given with user-info is stored in the mirror config without it."""
    fetch = fetch_for(rich.path, url=f"file://{rich.path}")
    mirror = update_mirror(fetch, tmp_path / "cache", credentials=TOKEN)
    config = (mirror / "config").read_text()
    assert f"url = file://{rich.path}" in config and TOKEN not in config


def test_default_branch_moved_upstream_is_followed(rich: GitRepo, tmp_path: Path) -> None:
    """After the remote switches its default branch, the next fetch points the mirror's HEAD at it; the
    rerun emits only the new default's commits not sent before, and the Branch objects swap their default."""
    fetch = fetch_for(rich.path, url=f"file://{rich.path}")
    mirror = update_mirror(fetch, tmp_path / "cache")
    first = Collector()
    result = process_repo(fetch, mirror, customer_id="c", checkpoint=None, emit=first)
    assert {b["name"] for b in first.get(BRANCH) if b["default"]} == {"main"}
    rich.git("checkout", "-q", "-b", "trunk", "main")
    new = rich.commit("on trunk", {"trunk.txt": "t\n"})
    assert update_mirror(fetch, tmp_path / "cache") == mirror
    head = (mirror / "HEAD").read_text().strip()
    assert head == "ref: refs/heads/trunk"
    second = Collector()
    again = process_repo(fetch, mirror, customer_id="c", checkpoint=result.checkpoint, emit=second)
    assert again.incremental and not again.skipped
    assert [c["sha"] for c in second.get(COMMIT)] == [new]
    branches = {b["name"]: b for b in second.get(BRANCH)}
    assert branches["trunk"]["default"] and not branches["main"]["default"]
    assert branches["main"]["merged"] and branches["main"]["behind_default_count"] == 1
    assert again.checkpoint["default"] == "trunk"
    third = Collector()
    assert process_repo(fetch, mirror, customer_id="c", checkpoint=again.checkpoint, emit=third).skipped


def test_remote_default_missing_from_mirror_leaves_head(rich: GitRepo, tmp_path: Path) -> None:
    """A remote HEAD naming no branch (an unborn default) leaves the mirror's HEAD where it was."""
    fetch = fetch_for(rich.path, url=f"file://{rich.path}")
    mirror = update_mirror(fetch, tmp_path / "cache")
    rich.git("symbolic-ref", "HEAD", "refs/heads/unborn")
    update_mirror(fetch, tmp_path / "cache")
    assert (mirror / "HEAD").read_text().strip() == "ref: refs/heads/main"
