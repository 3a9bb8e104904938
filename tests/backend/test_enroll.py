"""Enrollment, config.json and the client factory against the fake backend."""

from __future__ import annotations

import json
import os
import socket
import stat
from pathlib import Path

import pytest

from pinpoint_agent.backend import (
    BackendRejected,
    BackendUnavailable,
    ConfigError,
    EnrollCodeRejected,
    EnrolledConfig,
    RetryPolicy,
    enroll,
    load_config,
    make_client,
)
from pinpoint_agent.testing.fake_backend import FakeBackend

FAST = RetryPolicy(attempts=4, initial=0.01, maximum=0.05)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_enroll_writes_private_config(backend: FakeBackend, root: Path, config: EnrolledConfig) -> None:
    """Enroll sends the documented request and writes a 0600 config.json holding key, ids and local key."""
    path = root / "config.json"
    assert _mode(path) == 0o600
    assert [p.name for p in root.iterdir()] == ["config.json"]  # no temp file left behind
    data = json.loads(path.read_text())
    assert data["api_key"] == backend.api_key
    assert data["customer_id"] == backend.customer_id
    assert data["channel"] == backend.channel
    assert data["backend_url"] == backend.url
    assert len(bytes.fromhex(data["encryption_key"])) == 32
    (request,) = backend.enrollments
    assert request["code"] == "good-code"
    assert request["device_id"] == data["device_id"] == config.device_id
    assert {"hostname", "os", "version"} <= request.keys()


def test_config_is_created_private_under_permissive_umask(backend: FakeBackend, root: Path) -> None:
    """config.json is 0600 even when the process umask would allow group and world access."""
    old = os.umask(0)
    try:
        with make_client(timeout=5.0) as c:
            enroll("good-code", backend_url=backend.url, root=root, client=c, retry=FAST)
    finally:
        os.umask(old)
    assert _mode(root / "config.json") == 0o600


def test_enroll_refuses_to_overwrite(backend: FakeBackend, root: Path, config: EnrolledConfig) -> None:
    """A second enroll fails with ConfigError before contacting the backend and leaves the config intact."""
    before = (root / "config.json").read_bytes()
    backend.add_code("second-code")
    requests_before = len(backend.requests)
    with make_client(timeout=5.0) as c, pytest.raises(ConfigError, match="already enrolled"):
        enroll("second-code", backend_url=backend.url, root=root, client=c, retry=FAST)
    assert (root / "config.json").read_bytes() == before
    assert len(backend.requests) == requests_before


def test_bad_code_is_one_clear_error(backend: FakeBackend, root: Path) -> None:
    """A code the backend refuses raises EnrollCodeRejected (no retry, one line, no config written)."""
    with make_client(timeout=5.0) as c, pytest.raises(EnrollCodeRejected) as info:
        enroll("wrong-code", backend_url=backend.url, root=root, client=c, retry=FAST)
    assert info.value.status == 403
    assert "\n" not in str(info.value) and "rejected" in str(info.value)
    assert "wrong-code" not in str(info.value)
    assert len(backend.requests) == 1
    assert not (root / "config.json").exists()


def test_unreachable_backend_is_one_clear_error(root: Path) -> None:
    """Enrolling against a closed port raises BackendUnavailable naming the url, and writes nothing."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with make_client(timeout=2.0) as c, pytest.raises(BackendUnavailable) as info:
        enroll("good-code", backend_url=f"http://127.0.0.1:{port}", root=root, client=c, retry=FAST)
    assert f"127.0.0.1:{port}/agent/enroll" in str(info.value)
    assert "\n" not in str(info.value)
    assert not (root / "config.json").exists()


def test_enroll_retries_a_transient_503(backend: FakeBackend, root: Path) -> None:
    """A 503 on enroll is retried and the enrollment then succeeds."""
    backend.fail_next(1, status=503)
    with make_client(timeout=5.0) as c:
        config = enroll("good-code", backend_url=backend.url, root=root, client=c, retry=FAST)
    assert config.customer_id == backend.customer_id
    assert [r.status for r in backend.requests] == [503, 200]


def test_lost_answer_is_retried_idempotently(backend: FakeBackend, root: Path) -> None:
    """A lost enroll answer (dropped connection) is retried with the same device id and succeeds."""
    backend.drop_next(1)
    with make_client(timeout=5.0) as c:
        config = enroll("good-code", backend_url=backend.url, root=root, client=c, retry=FAST)
    assert config.api_key.get_secret_value() == backend.api_key


def test_load_config_round_trip_hides_secrets(root: Path, config: EnrolledConfig) -> None:
    """load_config returns the enrolled config with the api key as a SecretStr that does not print."""
    loaded = load_config(root)
    assert loaded == config
    assert config.api_key.get_secret_value() not in repr(loaded)
    assert config.api_key.get_secret_value() not in str(loaded.model_dump())


def test_load_config_missing(root: Path) -> None:
    """A missing config raises ConfigError telling the user to enroll."""
    with pytest.raises(ConfigError, match="enroll"):
        load_config(root)


def test_load_config_corrupt(root: Path, config: EnrolledConfig) -> None:
    """A config that is not JSON, or lacks fields, raises ConfigError naming the file."""
    path = root / "config.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(root)
    path.write_text(json.dumps({"customer_id": "c"}))
    with pytest.raises(ConfigError, match="api_key"):
        load_config(root)


def test_load_config_not_private(root: Path, config: EnrolledConfig) -> None:
    """A config readable by group or others raises ConfigError with the chmod fix."""
    (root / "config.json").chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_config(root)


def test_api_key_goes_only_to_the_backend_origin(backend: FakeBackend, config: EnrolledConfig) -> None:
    """make_client sends the api key to the backend's origin and not to another origin (same server)."""
    with make_client(config, timeout=5.0) as c:
        ok = c.post(backend.url + "/agent/export/result", json={})
        other = c.post(backend.url.replace("127.0.0.1", "localhost") + "/agent/export/result", json={})
    assert ok.status_code == 202
    assert other.status_code == 401
    assert "Authorization" not in backend.requests[-1].headers


def test_rejected_error_never_shows_the_key(backend: FakeBackend, config: EnrolledConfig) -> None:
    """A 4xx answer raises BackendRejected whose text has the redacted url but not the api key or token."""
    from pinpoint_agent.backend._http import send

    with make_client(config, timeout=5.0) as c, pytest.raises(BackendRejected) as info:
        send(c, "GET", backend.url + "/nope?token=s3cret")
    assert info.value.status == 404
    assert "s3cret" not in str(info.value) and backend.api_key not in str(info.value)
    assert info.value.url == backend.url + "/nope?…"


def test_errors_join_the_agent_error_tree(root: Path) -> None:
    """Backend errors are PinpointErrors of the right kind, so the CLI prints them as one line and exits 1."""
    from pinpoint_agent import errors

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with make_client(timeout=2.0) as c, pytest.raises(errors.RetriableError):
        enroll("x", backend_url=f"http://127.0.0.1:{port}", root=root, client=c, retry=FAST)
    with pytest.raises(errors.ConfigError):
        load_config(root)
    assert issubclass(EnrollCodeRejected, errors.FatalError)
