"""Forwarding one export to the backend: which backend, the upload url, upload and report, log shipping.

Which backend (first match wins)::

    1. the command's agent config (``--agent-config-json|file``, the flow's ``agent_config``) when it names
       ``backend_url`` and ``api_key``; one without the other is a ``ConfigError``. The backend that started
       the command said where its data goes (the original agent's export was started this way).
    2. the enrolled ``<root>/config.json`` (``enroll``): the normal case for the ``run`` service and its
       deployments, whose parameters are stored in Prefect and so never carry the key.
    3. neither: no forwarding, the export stays in local files.

A ``config.json`` that exists but is unusable (mode, JSON) is a ``ConfigError``, never a silent local export.
Customer id: the agent config's, unless it is the default ``local``, in which case the enrolled one; with
``config.json`` as the backend, an explicit customer id that differs from the enrolled customer is a
``ConfigError`` (one customer's data must not reach another's account).

Upload url: the agent config's ``upload_url`` when given (the original's export request carried one, often
presigned), else asked for per export::

    POST {backend_url}/agent/export/upload-url   {"export_id": "...", "job_id": "..."}
    -> 2xx {"upload_url": "https://…"}            parts then go to <upload_url>.<n>

``deliver_export`` = upload url + ``upload_export`` + ``report_export_result`` (success). It raises when the
backend did not get everything; the caller then discards the export's staged state (see ``flows/export.py``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import structlog
from pydantic import SecretStr

from pinpoint_agent.backend._config import config_path, load_config
from pinpoint_agent.backend._errors import BackendError, ConfigError
from pinpoint_agent.backend._http import DEFAULT_RETRY, RetryPolicy, redact_url, send, with_retries
from pinpoint_agent.backend._logs import LogShipper
from pinpoint_agent.backend._upload import ExportReport, UploadResult, report_export_result, upload_export
from pinpoint_agent.log import mask, register_secret

__all__ = [
    "DEFAULT_CUSTOMER_ID",
    "UPLOAD_URL_PATH",
    "BackendTarget",
    "deliver_export",
    "report_failure",
    "request_upload_url",
    "resolve_target",
    "ship_logs",
    "upload_section",
]

UPLOAD_URL_PATH = "/agent/export/upload-url"
DEFAULT_CUSTOMER_ID = "local"  # pinpoint_agent.config.AgentConfig's default: "not said"


@dataclass(frozen=True)
class BackendTarget:
    """Where an export goes: the backend, its key, and what the command said about this export."""

    backend_url: str
    api_key: SecretStr
    customer_id: str
    source: str  # "agent config" or the path of config.json, for messages
    upload_url: str = ""
    job_id: str = ""

    def __repr__(self) -> str:  # an upload url may be presigned: its query string is a credential
        return f"BackendTarget({redact_url(self.backend_url)!r}, source={self.source!r})"


def resolve_target(
    root: Path | str,
    *,
    backend_url: str = "",
    api_key: str = "",
    customer_id: str = DEFAULT_CUSTOMER_ID,
    upload_url: str = "",
    job_id: str = "",
) -> BackendTarget | None:
    """The backend an export forwards to, by the precedence in the module docstring; ``None``: local only.

    The api key is registered with the log masker, so it cannot reach a log line from here on.
    """
    backend_url, api_key = backend_url.strip(), api_key.strip()
    if backend_url or api_key:
        if not (backend_url and api_key):
            missing = "api_key" if backend_url else "backend_url"
            raise ConfigError(f"agent config: backend_url and api_key go together ({missing} is missing)")
        register_secret(api_key)
        return BackendTarget(backend_url.rstrip("/"), SecretStr(api_key), customer_id, "agent config",
                             upload_url, job_id)
    if not config_path(root).exists():
        return None
    enrolled = load_config(root)
    register_secret(enrolled.api_key.get_secret_value())
    if customer_id not in ("", DEFAULT_CUSTOMER_ID) and customer_id != enrolled.customer_id:
        raise ConfigError(
            f"agent config customer_id {customer_id!r} differs from the enrolled customer "
            f"{enrolled.customer_id!r} in {config_path(root)}"
        )
    return BackendTarget(enrolled.backend_url, enrolled.api_key, enrolled.customer_id,
                         str(config_path(root)), upload_url, job_id)


def request_upload_url(
    client: httpx.Client, target: BackendTarget, *, export_id: str, retry: RetryPolicy = DEFAULT_RETRY
) -> str:
    """Ask the backend where this export's parts go (``POST /agent/export/upload-url``)."""
    url = target.backend_url + UPLOAD_URL_PATH
    body = {"export_id": export_id, "job_id": target.job_id or export_id}
    response = with_retries(retry, lambda: send(client, "POST", url, json=body))
    try:
        upload_url = response.json()["upload_url"]
        if not isinstance(upload_url, str) or not upload_url.startswith(("http://", "https://")):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise BackendError(f"backend answered {UPLOAD_URL_PATH} without an http(s) upload_url") from None
    return upload_url


def deliver_export(
    client: httpx.Client,
    target: BackendTarget,
    *,
    root: Path | str,
    export_id: str,
    result: dict[str, Any],
    started_at: datetime,
    log_file: Path | None = None,
    retry: RetryPolicy = DEFAULT_RETRY,
) -> UploadResult:
    """Upload ``<root>/exports/<export_id>`` and report it as a success; raise if the backend lacks any of it."""
    upload_url = target.upload_url or request_upload_url(client, target, export_id=export_id, retry=retry)
    log = structlog.get_logger(__name__).bind(export_id=export_id, url=redact_url(upload_url))
    log.info("upload started")
    uploaded = upload_export(client, root=root, export_id=export_id, upload_url=upload_url,
                             log_file=log_file if log_file is not None and log_file.is_file() else None,
                             retry=retry)
    report = ExportReport.with_upload(uploaded, job_id=target.job_id or export_id, export_id=export_id,
                                      success=True, started_at=started_at, ended_at=datetime.now(started_at.tzinfo),
                                      result=result)
    report_export_result(client, backend_url=target.backend_url, report=report, retry=retry)
    log.info("upload done", parts=uploaded.parts, bytes=uploaded.bytes, files=uploaded.files,
             seconds=round(uploaded.duration, 3))
    return uploaded


def report_failure(
    client: httpx.Client,
    target: BackendTarget,
    *,
    export_id: str,
    error: str,
    result: dict[str, Any],
    started_at: datetime,
    retry: RetryPolicy = DEFAULT_RETRY,
) -> str:
    """Tell the backend the export did not arrive (best effort); return why the report failed, or ``""``."""
    report = ExportReport(job_id=target.job_id or export_id, export_id=export_id, success=False, error=error,
                          started_at=started_at, ended_at=datetime.now(started_at.tzinfo), result=result)
    try:
        report_export_result(client, backend_url=target.backend_url, report=report, retry=retry)
    except BackendError as exc:
        return str(exc)
    return ""


def upload_section(uploaded: UploadResult | None, error: str = "") -> dict[str, Any]:
    """The ``upload`` section of the export result JSON."""
    if uploaded is None:
        return {"url": "", "parts": 0, "bytes": 0, "files": 0, "error": mask(error) or "not uploaded"}
    return {"url": uploaded.url, "parts": uploaded.parts, "bytes": uploaded.bytes, "files": uploaded.files,
            "error": ""}


@contextmanager
def ship_logs(
    client: httpx.Client,
    target: BackendTarget,
    *,
    export_id: str,
    integrations: Collection[str] = (),
    stream: str = "export",
    **options: Any,
) -> Iterator[LogShipper]:
    """Ship the export's structlog lines logged inside the block to ``/agent/logs/<stream>``, in gzip batches.

    The export's lines are those logged where ``export_id`` is bound (bound here, in structlog's contextvars,
    which Prefect copies into the task threads it starts from this one) and the lines of its integrations'
    plugin processes (``integration`` in ``integrations``: their stderr pumps run in plain threads). Other
    lines, e.g. of a service running beside the export, are not shipped. The shipping processor sits just
    before the renderer, after the agent's secret masking, and masks again (a chain set up elsewhere may lack
    it). Closing flushes what it can in ``close_timeout`` seconds (default 10); shipping never fails the export.
    """
    close_timeout = float(options.pop("close_timeout", 10.0))
    keys = frozenset(integrations)
    shipper = LogShipper(client, backend_url=target.backend_url, stream=stream, **options)

    def processor(_: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        ours = (structlog.contextvars.get_contextvars().get("export_id") == export_id
                or event.get("export_id") == export_id or event.get("integration") in keys)
        if ours:
            line = {k: mask(v) if isinstance(v, str) else v for k, v in event.items()}
            line.setdefault("level", method)
            line["export_id"] = export_id
            shipper.ship(line)
        return event

    chain = list(structlog.get_config()["processors"])
    structlog.configure(processors=[*chain[:-1], processor, *chain[-1:]])
    try:
        with structlog.contextvars.bound_contextvars(export_id=export_id):
            yield shipper
    finally:
        structlog.configure(processors=[p for p in structlog.get_config()["processors"] if p is not processor])
        shipper.close(timeout=close_timeout)
