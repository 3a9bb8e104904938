"""`pinpoint-agent enroll` through the real CLI process against the fake backend on loopback."""

from __future__ import annotations

import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pinpoint_agent.backend import load_config, open_secret_store
from pinpoint_agent.testing.fake_backend import FakeBackend

KEY = "enroll-key-" + "a1b2c3d4e5f6" * 2
SECRET = "ghp_backend_sent_" + "Z9y8X7w6" * 3


@pytest.fixture
def fake() -> Iterator[FakeBackend]:
    with FakeBackend(api_key=KEY, codes=("good-code",), enroll_secrets={"github/gh1": SECRET}) as backend:
        yield backend


def enroll_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pinpoint_agent.cli", "enroll", *args], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)


def assert_one_error_line(proc: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    for fragment in fragments:
        assert fragment in lines[0]


def test_enroll_writes_private_config_and_encrypts_backend_secrets(fake: FakeBackend, tmp_path: Path) -> None:
    """A good code gives a 0600 config.json, one line on stdout without the key, and the backend's secrets only
    encrypted on disk (readable back through the local key)."""
    root = tmp_path / "root"
    proc = enroll_cli("good-code", "--backend-url", fake.url + "/", "--pinpoint-root", str(root))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("\n") == 1 and "customer-1" in proc.stdout and str(root / "config.json") in proc.stdout
    assert KEY not in proc.stdout + proc.stderr
    config = load_config(root)
    assert config.api_key.get_secret_value() == KEY and config.backend_url == fake.url
    for name in ("config.json", "secrets.json"):
        assert stat.S_IMODE((root / name).stat().st_mode) == 0o600
    for f in root.rglob("*"):
        assert SECRET.encode() not in f.read_bytes()
    assert open_secret_store(root).get("github/gh1") == SECRET


def test_bad_code_is_one_line_and_writes_nothing(fake: FakeBackend, tmp_path: Path) -> None:
    """A code the backend refuses is one error line, exit 1, and no config.json."""
    root = tmp_path / "root"
    proc = enroll_cli("wrong-code", "--backend-url", fake.url, "--pinpoint-root", str(root))
    assert_one_error_line(proc, "enroll code rejected", "403")
    assert not (root / "config.json").exists()


def test_unreachable_backend_is_one_line(tmp_path: Path) -> None:
    """A backend nobody listens on is one error line naming the url, exit 1, and no config.json."""
    with socket.socket() as s:  # a port that was free a moment ago: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = tmp_path / "root"
    proc = enroll_cli("good-code", "--backend-url", f"http://127.0.0.1:{port}", "--pinpoint-root", str(root))
    assert_one_error_line(proc, "unreachable", f"127.0.0.1:{port}/agent/enroll")
    assert not (root / "config.json").exists()


def test_existing_config_is_not_overwritten_and_the_code_not_spent(fake: FakeBackend, tmp_path: Path) -> None:
    """A second enroll on an enrolled root is refused before the code reaches the backend."""
    root = tmp_path / "root"
    assert enroll_cli("good-code", "--backend-url", fake.url, "--pinpoint-root", str(root)).returncode == 0
    before = (root / "config.json").read_bytes()
    fake.add_code("second-code")
    proc = enroll_cli("second-code", "--backend-url", fake.url, "--pinpoint-root", str(root))
    assert_one_error_line(proc, "already enrolled")
    assert (root / "config.json").read_bytes() == before
    assert [e["code"] for e in fake.enrollments] == ["good-code"]


@pytest.mark.parametrize(("args", "fragment"), [
    (("good-code", "--backend-url", "ftp://example.com"), "http(s) url"),
    (("good-code",), "--backend-url"),
    (("  ", "--backend-url", "http://127.0.0.1:9"), "enroll code is empty"),
])
def test_bad_arguments_are_one_line(tmp_path: Path, args: tuple[str, ...], fragment: str) -> None:
    """A bad url, a missing --backend-url or an empty code: one error line, exit 1, nothing written."""
    root = tmp_path / "root"
    assert_one_error_line(enroll_cli(*args, "--pinpoint-root", str(root)), fragment)
    assert not root.exists()
