"""Upload of one export, as the original Go agent did, and the report of its result.

What the original did (pinpt/agent ``cmd/cmdupload`` + go-common ``upload``): zip every ``*.gz`` file of the
export folder (paths relative to it, plus the export log), read the zip in parts of 5 MiB and ``PUT`` part
``n`` to ``<upload_url>.<n>`` with **n counting from 0**, 3 parts in flight, the api key in a bare
``Authorization`` header; success was HTTP 202; any other status was retried up to 20 times with a linear
150 ms·i backoff, a network error failed at once; the "size check" only compared the bytes read with the zip's
size. It then sent an ``ExportResponse`` (job id, success, error, start/end dates, upload url, part count,
size, per-integration results) to the backend.

What we do (the contract of this module):

- Zip: ``<root>/exports/<export id>/**/*.gz`` except in-progress ``*.temp.gz``, entries named by their path
  relative to the export folder (``<model>/<unix>_<session>.json.gz``), sorted, stored without recompression
  (the files are gzip already), plus ``export.log`` when a log file is given. Built in ``<root>/temp/`` and
  deleted afterwards. An export with no files uploads nothing and returns ``parts == 0``.
- Parts: ``PUT <upload_url>.<n>``, n = 0, 1, 2…; ``.n`` is appended to the url's *path*, so a query string
  (presigned token) stays intact. Body: the part's bytes, ``Content-Type: application/zip``,
  ``Content-Length``. ``make_client`` adds the api key only when the upload url is on the backend's origin.
- Answer: any 2xx with a JSON body ``{"size": <bytes stored for this part>}``. A missing or different size
  raises ``UploadVerificationFailed`` (not retried: the whole upload is the unit to retry). The sum of the
  parts must equal the zip's size.
- Retries (tenacity, per part): network errors, timeouts, 5xx, 408, 429 (honouring ``Retry-After``); any
  other 4xx fails at once with ``BackendRejected``. Errors carry the url without query string.
- Result: ``POST {backend_url}/agent/export/result`` with ``ExportReport`` as JSON; 2xx is success. The part
  count and total size in it tell the backend that the upload is complete.
"""

from __future__ import annotations

import secrets
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydantic import BaseModel, Field

from pinpoint_agent.backend._errors import ConfigError, UploadVerificationFailed
from pinpoint_agent.backend._files import ensure_private_dir
from pinpoint_agent.backend._http import DEFAULT_RETRY, RetryPolicy, redact_url, send, with_retries
from pinpoint_agent.root import Root

__all__ = [
    "UploadInfo",
    "EXPORT_RESULT_PATH",
    "PART_SIZE",
    "ExportReport",
    "UploadResult",
    "part_url",
    "report_export_result",
    "upload_export",
    "zip_export",
]

PART_SIZE = 5 * 1024 * 1024
EXPORT_RESULT_PATH = "/agent/export/result"


@dataclass(frozen=True)
class UploadResult:
    """What an upload did: the (redacted) url, parts sent, bytes sent, files zipped, seconds taken."""

    url: str
    parts: int
    bytes: int
    files: int
    duration: float


class UploadInfo(BaseModel):
    """The upload part of an export report."""

    url: str = Field(description="Upload url without query string.")
    parts: int = Field(description="Number of parts PUT, numbered from 0.")
    bytes: int = Field(description="Total size of the zip, i.e. of all parts.")


class ExportReport(BaseModel):
    """Body of ``POST /agent/export/result``: how an export went and where its data is."""

    job_id: str = Field(description="Job id of the backend's export request.")
    export_id: str = Field(description="Folder name under <root>/exports.")
    success: bool = Field(description="False when the export or its upload failed as a whole.")
    error: str | None = Field(default=None, description="One-line error when success is false.")
    started_at: datetime = Field(description="When the export started.")
    ended_at: datetime = Field(description="When the export and upload ended.")
    upload: UploadInfo | None = Field(default=None, description="None when nothing was uploaded.")
    result: dict[str, Any] = Field(default_factory=dict, description="The export command's result JSON.")

    @classmethod
    def with_upload(cls, upload: UploadResult, **fields: Any) -> ExportReport:
        """Build a report whose ``upload`` section comes from an ``UploadResult``."""
        info = UploadInfo(url=upload.url, parts=upload.parts, bytes=upload.bytes) if upload.parts else None
        return cls(upload=info, **fields)


def part_url(upload_url: str, n: int) -> str:
    """``<upload_url>.<n>`` with ``.n`` on the path, keeping any query string."""
    parts = urlsplit(upload_url)
    return urlunsplit((parts.scheme, parts.netloc, f"{parts.path}.{n}", parts.query, parts.fragment))


def _export_files(export_dir: Path) -> list[Path]:
    return sorted(p for p in export_dir.rglob("*.gz") if p.is_file() and not p.name.endswith(".temp.gz"))


def zip_export(export_dir: Path, zip_path: Path, *, log_file: Path | None = None) -> int:
    """Zip the finished ``*.gz`` files of ``export_dir`` into ``zip_path``; return how many were added."""
    files = _export_files(export_dir)
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_STORED) as archive:
        for path in files:
            archive.write(path, path.relative_to(export_dir).as_posix())
        if log_file is not None and files:
            archive.write(log_file, "export.log")
    return len(files)


def _read_parts(path: Path, part_size: int) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as handle:
        n = 0
        while chunk := handle.read(part_size):
            yield n, chunk
            n += 1


def _put_part(client: httpx.Client, url: str, n: int, data: bytes) -> None:
    response = send(client, "PUT", url, content=data, headers={"Content-Type": "application/zip"})
    shown = redact_url(url)
    try:
        stored = response.json()["size"]
        if not isinstance(stored, int):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise UploadVerificationFailed(
            f"upload server did not report the stored size of part {n} ({shown})",
            url=shown,
            part=n,
            expected=len(data),
            stored=None,
        ) from None
    if stored != len(data):
        raise UploadVerificationFailed(
            f"upload server stored {stored} bytes of part {n} but {len(data)} were sent ({shown})",
            url=shown,
            part=n,
            expected=len(data),
            stored=stored,
        )


def _upload_file(
    client: httpx.Client,
    zip_path: Path,
    upload_url: str,
    *,
    part_size: int,
    concurrency: int,
    retry: RetryPolicy,
) -> tuple[int, int]:
    total = 0
    parts = 0
    executor = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="upload")
    pending: set[Future[None]] = set()
    try:
        for n, data in _read_parts(zip_path, part_size):
            while len(pending) >= max(1, concurrency):
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    future.result()  # raises the part's error, which stops the upload
            url = part_url(upload_url, n)
            job = partial(_put_part, client, url, n, data)
            pending.add(executor.submit(with_retries, retry, job))
            total += len(data)
            parts += 1
        for future in pending:
            future.result()
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
    return parts, total


def upload_export(
    client: httpx.Client,
    *,
    root: Path | str,
    export_id: str,
    upload_url: str,
    log_file: Path | None = None,
    part_size: int = PART_SIZE,
    concurrency: int = 3,
    retry: RetryPolicy = DEFAULT_RETRY,
) -> UploadResult:
    """Zip ``<root>/exports/<export_id>/`` and upload it in parts to ``<upload_url>.<n>`` (n from 0).

    Raises ``ConfigError`` (no such export), ``BackendUnavailable`` (retries exhausted), ``BackendRejected``
    (4xx), ``UploadVerificationFailed`` (stored size differs).
    """
    started = time.monotonic()
    if not export_id or "/" in export_id or export_id in (".", ".."):
        raise ConfigError(f"invalid export id {export_id!r}")
    layout = Root(root)
    export_dir = layout.exports / export_id
    if not export_dir.is_dir():
        raise ConfigError(f"no export folder {export_dir}", path=str(export_dir))
    tmp_dir = layout.temp
    ensure_private_dir(tmp_dir)
    zip_path = tmp_dir / f"upload-{export_id}-{secrets.token_hex(4)}.zip"
    try:
        files = zip_export(export_dir, zip_path, log_file=log_file)
        if files == 0:
            return UploadResult(redact_url(upload_url), 0, 0, 0, time.monotonic() - started)
        zip_size = zip_path.stat().st_size
        parts, sent = _upload_file(
            client, zip_path, upload_url, part_size=part_size, concurrency=concurrency, retry=retry
        )
    finally:
        zip_path.unlink(missing_ok=True)
    if sent != zip_size:  # the original's only check; cheap, so keep it
        raise UploadVerificationFailed(
            f"sent {sent} bytes but the zip has {zip_size}",
            url=redact_url(upload_url),
            part=None,
            expected=zip_size,
            stored=sent,
        )
    return UploadResult(redact_url(upload_url), parts, sent, files, time.monotonic() - started)


def report_export_result(
    client: httpx.Client, *, backend_url: str, report: ExportReport, retry: RetryPolicy = DEFAULT_RETRY
) -> None:
    """``POST {backend_url}/agent/export/result`` with ``report``; retried like a part upload."""
    url = backend_url.rstrip("/") + EXPORT_RESULT_PATH
    body = report.model_dump(mode="json")
    with_retries(retry, lambda: send(client, "POST", url, json=body))
