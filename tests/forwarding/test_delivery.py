"""The plain functions behind forwarding: which backend, the upload url, delivery, retry rule, log shipping."""

from __future__ import annotations

import io
import os
import threading
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import structlog
from prefect.states import Failed

from pinpoint_agent.backend import (
    BackendError,
    BackendRejected,
    BackendUnavailable,
    ConfigError,
    EnrolledConfig,
    RetryPolicy,
    deliver_export,
    make_client,
    request_upload_url,
    resolve_target,
    ship_logs,
    upload_section,
)
from pinpoint_agent.log import setup
from pinpoint_agent.testing.fake_backend import FakeBackend
from tasks.upload import only_retriable
from tests.forwarding.conftest import API_KEY

STARTED = datetime(2026, 1, 1, tzinfo=UTC)


def _export_files(root: Path, export_id: str) -> None:
    folder = root / "exports" / export_id / "sourcecode.Repo"
    folder.mkdir(parents=True)
    (folder / "1700000000_1.json.gz").write_bytes(os.urandom(3000))
    (folder / "1700000001_2.temp.gz").write_bytes(b"half written")  # in progress: never uploaded


def test_no_backend_anywhere_means_local_only(root: Path) -> None:
    """Without backend settings and without config.json there is no target (local files only)."""
    assert resolve_target(root) is None


def test_enrolled_config_is_the_backend_and_gives_the_customer(enrolled: EnrolledConfig, root: Path) -> None:
    """config.json is used when the agent config names no backend; the default customer becomes the enrolled one."""
    target = resolve_target(root, customer_id="local")
    assert target is not None and target.backend_url == enrolled.backend_url
    assert target.customer_id == "cust-fwd" and target.source.endswith("config.json")
    assert API_KEY not in repr(target)


def test_agent_config_backend_wins_over_config_json(enrolled: EnrolledConfig, root: Path) -> None:
    """backend_url+api_key in the agent config beat config.json, with the agent config's customer id."""
    target = resolve_target(root, backend_url="http://other.example/", api_key="k" * 12, customer_id="c2",
                            upload_url="http://up.example/x", job_id="j1")
    assert target is not None
    assert (target.backend_url, target.customer_id, target.source) == ("http://other.example", "c2", "agent config")
    assert (target.upload_url, target.job_id) == ("http://up.example/x", "j1")


@pytest.mark.parametrize("given", [{"backend_url": "http://b.example"}, {"api_key": "abcdefgh"}])
def test_half_a_backend_is_a_config_error(root: Path, given: dict[str, str]) -> None:
    """backend_url without api_key (or the reverse) is refused rather than silently exporting locally."""
    with pytest.raises(ConfigError, match="go together"):
        resolve_target(root, **given)


def test_other_customer_than_enrolled_is_refused(enrolled: EnrolledConfig, root: Path) -> None:
    """An explicit customer id that differs from the enrolled customer cannot send to that customer's backend."""
    with pytest.raises(ConfigError, match="differs from the enrolled customer"):
        resolve_target(root, customer_id="someone-else")


def test_unusable_config_json_is_an_error_not_a_local_export(enrolled: EnrolledConfig, root: Path) -> None:
    """A config.json readable by others stops the export instead of being ignored."""
    (root / "config.json").chmod(0o644)
    with pytest.raises(ConfigError, match="0600"):
        resolve_target(root)


def test_delivery_asks_for_the_url_uploads_finished_files_and_reports(
    backend: FakeBackend, enrolled: EnrolledConfig, root: Path, fast_retry: RetryPolicy
) -> None:
    """deliver_export gets the url from the backend, uploads only finished files, then reports success."""
    target = resolve_target(root)
    assert target is not None
    _export_files(root, "e1")
    with make_client(target, timeout=5.0) as client:
        result = deliver_export(client, target, root=root, export_id="e1", result={"x": 1}, started_at=STARTED,
                                retry=fast_retry)
    with zipfile.ZipFile(io.BytesIO(backend.assembled("e1"))) as archive:
        assert archive.namelist() == ["sourcecode.Repo/1700000000_1.json.gz"]
    assert upload_section(result) == {"url": backend.upload_url("e1"), "parts": 1, "bytes": result.bytes,
                                      "files": 1, "error": ""}
    (report,) = backend.results
    assert report["success"] and report["result"] == {"x": 1} and report["job_id"] == "e1"


def test_backend_down_raises_retriable_and_the_task_retries_only_that(
    backend: FakeBackend, enrolled: EnrolledConfig, root: Path, fast_retry: RetryPolicy
) -> None:
    """A backend that keeps answering 503 ends in BackendUnavailable, which the upload task retries; a 4xx
    and a broken answer are not retried."""
    target = resolve_target(root)
    assert target is not None
    _export_files(root, "e2")
    backend.fail_next(100, status=503, path_prefix="/upload/")
    with make_client(target, timeout=5.0) as client, pytest.raises(BackendUnavailable) as down:
        deliver_export(client, target, root=root, export_id="e2", result={}, started_at=STARTED, retry=fast_retry)
    assert backend.results == []  # nothing reported as delivered
    assert only_retriable(None, None, Failed(data=down.value))  # type: ignore[arg-type]
    refused = BackendRejected("no", url="u", status=403)
    assert not only_retriable(None, None, Failed(data=refused))  # type: ignore[arg-type]
    assert not only_retriable(None, None, Failed(data=BackendError("odd answer")))  # type: ignore[arg-type]


def test_upload_url_answer_without_url_is_an_error(enrolled: EnrolledConfig, root: Path) -> None:
    """An upload-url answer the agent cannot use is a BackendError, not a crash or an upload elsewhere."""
    target = resolve_target(root)
    assert target is not None
    for body in ({"nope": 1}, {"upload_url": "file:///etc/passwd"}, [1]):
        transport = httpx.MockTransport(lambda request, body=body: httpx.Response(200, json=body))
        with make_client(target, transport=transport) as client, pytest.raises(BackendError, match="upload_url"):
            request_upload_url(client, target, export_id="e3")


def test_logs_inside_the_block_are_shipped_masked_and_the_chain_is_restored(
    backend: FakeBackend, enrolled: EnrolledConfig, root: Path, tmp_path: Path
) -> None:
    """The export's lines (its context, or its integrations' plugin lines from plain threads) reach
    /agent/logs/export with the export id and the api key masked; other threads' lines and lines after the
    block are not shipped, and the structlog chain is as before."""
    saved = structlog.get_config()
    try:
        setup("export", tmp_path / "logs", fmt="json", stream=io.StringIO())
        target = resolve_target(root)  # registers the key with the masker
        assert target is not None
        before = list(structlog.get_config()["processors"])
        log = structlog.get_logger("test")
        with make_client(target, timeout=5.0) as client:
            with ship_logs(client, target, export_id="e9", integrations=["mock@SOURCECODE@m1"],
                           flush_interval=0.05):
                log.info("inside", detail=f"key is {API_KEY}")
                plain = [threading.Thread(target=log.info, args=("service heartbeat",)),
                         threading.Thread(target=lambda: log.info("plugin line", integration="mock@SOURCECODE@m1"))]
                for t in plain:
                    t.start()
                    t.join()
            log.info("after")
        assert structlog.get_config()["processors"] == before
    finally:
        structlog.configure(**saved)
    lines = backend.log_lines
    assert [line["event"] for line in lines] == ["inside", "plugin line"]
    assert lines[0]["export_id"] == "e9" and API_KEY not in lines[0]["detail"] and lines[0]["level"] == "info"
    assert API_KEY not in (tmp_path / "logs" / "export").read_text()
