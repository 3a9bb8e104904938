"""Upload of an export in 5 MiB parts and the report of its result, against the fake backend."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from pinpoint_agent.backend import (
    PART_SIZE,
    BackendRejected,
    BackendUnavailable,
    EnrolledConfig,
    ExportReport,
    RetryPolicy,
    UploadVerificationFailed,
    report_export_result,
    upload_export,
)
from pinpoint_agent.testing.fake_backend import FakeBackend

MakeExport = Callable[..., dict[str, bytes]]
MiB = 1024 * 1024


def _unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_twelve_mib_export_goes_in_three_parts(
    backend: FakeBackend, client: httpx.Client, root: Path, make_export: MakeExport, fast_retry: RetryPolicy
) -> None:
    """A ~12 MiB export is PUT as parts .0, .1, .2 (5 MiB max) that concatenate and unzip to the files."""
    files = make_export(root, "exp-1", files=6, file_size=2 * MiB)
    result = upload_export(
        client, root=root, export_id="exp-1", upload_url=backend.upload_url("job-1"), retry=fast_retry
    )
    parts = backend.parts("job-1")
    assert sorted(parts) == [0, 1, 2]
    assert all(len(parts[i]) == PART_SIZE for i in (0, 1))
    assert result.parts == 3 and result.files == 6
    assert result.bytes == sum(len(p) for p in parts.values())
    assert result.duration > 0
    assert _unzip(backend.assembled("job-1")) == files
    assert list((root / "temp").iterdir()) == []  # the temporary zip is gone
    put = [r for r in backend.requests if r.method == "PUT"]
    assert {r.headers["Content-Type"] for r in put} == {"application/zip"}
    assert all(r.headers["Authorization"] == backend.api_key for r in put)


def test_unfinished_session_files_are_not_uploaded(
    backend: FakeBackend, client: httpx.Client, root: Path, make_export: MakeExport, fast_retry: RetryPolicy
) -> None:
    """Files still being written (*.temp.gz) stay out of the zip."""
    files = make_export(root, "exp-1", files=2, file_size=1000)
    (root / "exports" / "exp-1" / "sourcecode.Commit" / "1700000009_9.temp.gz").write_bytes(b"partial")
    upload_export(client, root=root, export_id="exp-1", upload_url=backend.upload_url(), retry=fast_retry)
    assert _unzip(backend.assembled()) == files


def test_empty_export_uploads_nothing(
    backend: FakeBackend, client: httpx.Client, root: Path, fast_retry: RetryPolicy
) -> None:
    """An export folder without finished files returns parts == 0 and sends no request."""
    (root / "exports" / "exp-0").mkdir(parents=True)
    before = len(backend.requests)
    result = upload_export(
        client, root=root, export_id="exp-0", upload_url=backend.upload_url(), retry=fast_retry
    )
    assert (result.parts, result.bytes) == (0, 0)
    assert len(backend.requests) == before


def test_503_on_a_part_is_retried(
    backend: FakeBackend, client: httpx.Client, root: Path, make_export: MakeExport, fast_retry: RetryPolicy
) -> None:
    """A 503 (and a dropped connection) on part uploads are retried and the upload completes intact."""
    files = make_export(root, "exp-1", files=3, file_size=2 * MiB)
    backend.fail_next(1, status=503, path_prefix="/upload/")
    backend.drop_next(1, path_prefix="/upload/")
    result = upload_export(
        client, root=root, export_id="exp-1", upload_url=backend.upload_url(), retry=fast_retry
    )
    assert result.parts == 2
    assert _unzip(backend.assembled()) == files
    statuses = sorted(r.status for r in backend.requests if r.method == "PUT")
    assert statuses == [0, 202, 202, 503]  # 0: connection dropped without an answer


def test_429_with_retry_after_is_retried(
    backend: FakeBackend, client: httpx.Client, root: Path, make_export: MakeExport, fast_retry: RetryPolicy
) -> None:
    """A 429 is retriable (unlike other 4xx) and its Retry-After is honoured up to the policy's maximum."""
    make_export(root, "exp-1", files=1, file_size=1000)
    backend.fail_next(1, status=429, retry_after=0.01, path_prefix="/upload/")
    assert upload_export(
        client, root=root, export_id="exp-1", upload_url=backend.upload_url(), retry=fast_retry
    ).parts
    assert [r.status for r in backend.requests if r.method == "PUT"] == [429, 202]


def test_repeated_failures_end_in_a_typed_error_without_credentials(
    backend: FakeBackend,
    client: httpx.Client,
    config: EnrolledConfig,
    root: Path,
    make_export: MakeExport,
    fast_retry: RetryPolicy,
) -> None:
    """When every attempt fails, BackendUnavailable names the part url but not the api key or the token."""
    make_export(root, "exp-1", files=1, file_size=1000)
    backend.fail_next(100, status=500, path_prefix="/upload/")
    url = backend.upload_url("job-9") + "?X-Token=very-secret-token"
    with pytest.raises(BackendUnavailable) as info:
        upload_export(client, root=root, export_id="exp-1", upload_url=url, retry=fast_retry)
    err = info.value
    assert err.status == 500
    assert err.url == backend.upload_url("job-9") + ".0?…"
    text = f"{err} {err.url} {err!r}"
    assert "very-secret-token" not in text and config.api_key.get_secret_value() not in text
    assert len([r for r in backend.requests if r.method == "PUT"]) == fast_retry.attempts
    assert list((root / "temp").iterdir()) == []


def test_4xx_on_a_part_is_not_retried(
    backend: FakeBackend, client: httpx.Client, root: Path, make_export: MakeExport, fast_retry: RetryPolicy
) -> None:
    """A 403 on a part fails at once with BackendRejected."""
    make_export(root, "exp-1", files=1, file_size=1000)
    backend.fail_next(5, status=403, path_prefix="/upload/")
    with pytest.raises(BackendRejected) as info:
        upload_export(client, root=root, export_id="exp-1", upload_url=backend.upload_url(), retry=fast_retry)
    assert info.value.status == 403
    assert len([r for r in backend.requests if r.method == "PUT"]) == 1


def test_slow_server_times_out_and_is_retried(
    backend: FakeBackend, config: EnrolledConfig, root: Path, make_export: MakeExport, fast_retry: RetryPolicy
) -> None:
    """A part whose answer is slower than the client's timeout is retried and the upload completes."""
    from pinpoint_agent.backend import make_client

    files = make_export(root, "exp-1", files=1, file_size=1000)
    backend.slow_next(1, seconds=0.6, path_prefix="/upload/")
    with make_client(config, timeout=0.3) as impatient:
        upload_export(
            impatient, root=root, export_id="exp-1", upload_url=backend.upload_url(), retry=fast_retry
        )
    assert _unzip(backend.assembled()) == files


def test_size_mismatch_is_detected(
    backend: FakeBackend, client: httpx.Client, root: Path, make_export: MakeExport, fast_retry: RetryPolicy
) -> None:
    """A part whose stored size differs from the bytes sent raises UploadVerificationFailed with sizes."""
    make_export(root, "exp-1", files=1, file_size=1000)
    backend.misreport_size_next(1, delta=-7)
    with pytest.raises(UploadVerificationFailed) as info:
        upload_export(client, root=root, export_id="exp-1", upload_url=backend.upload_url(), retry=fast_retry)
    err = info.value
    assert err.part == 0 and err.stored == err.expected - 7


def test_unknown_export_is_a_config_error(client: httpx.Client, root: Path, backend: FakeBackend) -> None:
    """Uploading an export folder that does not exist raises ConfigError, and path tricks are refused."""
    from pinpoint_agent.backend import ConfigError

    with pytest.raises(ConfigError, match="no export folder"):
        upload_export(client, root=root, export_id="nope", upload_url=backend.upload_url())
    with pytest.raises(ConfigError, match="invalid export id"):
        upload_export(client, root=root, export_id="../x", upload_url=backend.upload_url())


def test_result_report_arrives(
    backend: FakeBackend,
    client: httpx.Client,
    config: EnrolledConfig,
    root: Path,
    make_export: MakeExport,
    fast_retry: RetryPolicy,
) -> None:
    """After an upload, the export report (retried once on 502) reaches the backend with parts and size."""
    make_export(root, "exp-1", files=2, file_size=1000)
    upload = upload_export(
        client, root=root, export_id="exp-1", upload_url=backend.upload_url(), retry=fast_retry
    )
    started = datetime(2024, 1, 1, tzinfo=UTC)
    report = ExportReport.with_upload(
        upload,
        job_id="job-1",
        export_id="exp-1",
        success=True,
        started_at=started,
        ended_at=datetime.now(UTC),
        result={"integrations": [{"id": "i1", "error": ""}]},
    )
    backend.fail_next(1, status=502, path_prefix="/agent/export/result")
    report_export_result(client, backend_url=config.backend_url, report=report, retry=fast_retry)
    (body,) = backend.results
    assert body["job_id"] == "job-1" and body["success"] is True
    assert body["upload"] == {"url": backend.upload_url(), "parts": 1, "bytes": upload.bytes}
    assert body["result"]["integrations"][0]["id"] == "i1"
    assert body["started_at"].startswith("2024-01-01T00:00:00")
