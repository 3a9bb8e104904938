"""The error tree: git's messages map to what the caller should do, and failures mid-stream surface
cleanly."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pinpoint_agent.git import AccessDenied, FatalGitError, GitError, TransientGitError, process_repo
from pinpoint_agent.git._errors import redact_url, translating

from .conftest import Collector, GitRepo, fetch_for


@pytest.mark.parametrize(
    ("stderr", "kind"),
    [
        ("fatal: Authentication failed for 'https://h/x.git/'", AccessDenied),
        ("remote: Repository not found.\nfatal: repository 'https://h/x.git/' not found", AccessDenied),
        (
            "git@h: Permission denied (publickey).\nfatal: Could not read from remote repository.",
            AccessDenied,
        ),
        ("fatal: unable to access 'https://h/x.git/': The requested URL returned error: 403", AccessDenied),
        (
            "fatal: unable to access 'https://h/': Failed to connect to h port 443: Connection refused",
            TransientGitError,
        ),
        ("error: RPC failed; curl 18 transfer closed\nfatal: early EOF", TransientGitError),
        ("fatal: unable to access 'https://h/': Could not resolve host: h", TransientGitError),
        ("fatal: bad object 1234", FatalGitError),
    ],
)
def test_stderr_is_classified(stderr: str, kind: type[GitError]) -> None:
    """Each typical git failure message becomes the error class that tells the caller what to do."""
    with pytest.raises(kind) as exc, translating(repo="acme/x", url="https://u:tok@h/x.git", secrets=["tok"]):
        raise subprocess.CalledProcessError(128, ["git", "-c", "a=b", "fetch"], b"", stderr.encode())
    assert (
        exc.value.url == "https://h/x.git"
        and "tok" not in str(exc.value)
        and "git fetch failed" in str(exc.value)
    )


def test_redact_url() -> None:
    """User-info is dropped from urls; other strings pass unchanged."""
    assert redact_url("https://a:b@h:1/x") == "https://h:1/x"
    assert redact_url("/local/path") == "/local/path"


def test_corrupt_objects_fail_cleanly_mid_stream(rich: GitRepo, no_leaked_processes: None) -> None:
    """A repository with missing objects raises a GitError (not a hang or a raw exception) and leaves no
    process."""
    subprocess.run(["git", "gc", "-q"], cwd=rich.path, check=True)
    for pack in (rich.path / ".git" / "objects" / "pack").glob("*.pack"):
        data = bytearray(pack.read_bytes())
        data[len(data) // 2 : len(data) // 2 + 4000] = bytes(4000)
        pack.chmod(0o644)
        pack.write_bytes(bytes(data))
    with pytest.raises(GitError):
        process_repo(fetch_for(rich.path), rich.path, customer_id="c", checkpoint=None, emit=Collector())


def test_emit_failure_stops_workers(rich: GitRepo, no_leaked_processes: None) -> None:
    """An exception raised by emit propagates unchanged and the git workers are reaped."""

    def emit(model: str, objects: list[dict[str, object]]) -> None:
        raise RuntimeError("sink full")

    with pytest.raises(RuntimeError, match="sink full"):
        process_repo(fetch_for(rich.path), rich.path, customer_id="c", checkpoint=None, emit=emit)


def test_not_a_repository(tmp_path: Path) -> None:
    """Processing a folder that is not a repository raises a GitError naming the repo."""
    with pytest.raises(GitError) as exc:
        process_repo(fetch_for(tmp_path), tmp_path, customer_id="c", checkpoint=None, emit=Collector())
    assert exc.value.repo == "acme/widgets"
