"""Backend client of the agent: enrollment, secrets at rest, export upload, result report, log shipping.

Plain Python (no Prefect). Every call receives its ``httpx.Client``; production builds it with
``make_client(config)`` (timeouts, user agent, api key in ``Authorization`` for the backend's origin only).
``pinpoint_agent.testing.fake_backend.FakeBackend`` is a behaving fake of every endpoint below.

Endpoints (details in each module's docstring)::

    POST {backend_url}/agent/enroll          {code, device_id, hostname, os, version}
                                             -> {api_key, customer_id, channel, secrets?}
    POST {backend_url}/agent/export/upload-url {export_id, job_id} -> {upload_url}
    PUT  <upload_url>.<n>  (n = 0, 1, …)     5 MiB part of the export zip -> {"size": <bytes stored>}
    POST {backend_url}/agent/export/result   ExportReport JSON -> 2xx
    POST {backend_url}/agent/logs/{stream}   gzip JSON lines -> 2xx

Errors (one tree, grouped by what the caller should do)::

    BackendError                    base; raised as itself only for an answer we cannot understand
    ├── ConfigError                 bad local input/config: fix and rerun (CLI: one line, exit 1)
    ├── BackendUnavailable          retriable: network, timeout, 5xx, 408, 429; carries retry_after, url
    ├── BackendRejected             4xx: fatal; carries status, url, detail
    │   └── EnrollCodeRejected      the enroll code was refused
    └── UploadVerificationFailed    the stored size differs from the size sent

Two configs, two names: ``EnrolledConfig`` is ``<root>/config.json`` (what ``enroll`` wrote);
``pinpoint_agent.config.AgentConfig`` is one command's ``--agent-config-json``. ``resolve_target`` decides which
backend an export forwards to (precedence in ``_forward``'s docstring).

``httpx`` exceptions are translated in exactly one place (``_http.send``). Urls in errors have no query
string or user info; the api key is never in a url or an error.
"""

from pinpoint_agent.backend._config import EnrolledConfig, config_path, load_config, save_config
from pinpoint_agent.backend._enroll import enroll
from pinpoint_agent.backend._errors import (
    BackendError,
    BackendRejected,
    BackendUnavailable,
    ConfigError,
    EnrollCodeRejected,
    UploadVerificationFailed,
)
from pinpoint_agent.backend._forward import (
    UPLOAD_URL_PATH,
    BackendTarget,
    deliver_export,
    report_failure,
    request_upload_url,
    resolve_target,
    ship_logs,
    upload_section,
)
from pinpoint_agent.backend._http import BackendCredentials, RetryPolicy, make_client, redact_url
from pinpoint_agent.backend._logs import LogShipper, ShipperStats
from pinpoint_agent.backend._secrets import SecretBox, SecretStore, open_secret_store
from pinpoint_agent.backend._upload import (
    PART_SIZE,
    ExportReport,
    UploadInfo,
    UploadResult,
    part_url,
    report_export_result,
    upload_export,
    zip_export,
)

__all__ = [
    "PART_SIZE",
    "UPLOAD_URL_PATH",
    "BackendCredentials",
    "BackendError",
    "BackendRejected",
    "BackendTarget",
    "BackendUnavailable",
    "ConfigError",
    "EnrollCodeRejected",
    "EnrolledConfig",
    "ExportReport",
    "LogShipper",
    "RetryPolicy",
    "SecretBox",
    "SecretStore",
    "ShipperStats",
    "UploadInfo",
    "UploadResult",
    "UploadVerificationFailed",
    "config_path",
    "deliver_export",
    "enroll",
    "load_config",
    "make_client",
    "open_secret_store",
    "part_url",
    "redact_url",
    "report_export_result",
    "report_failure",
    "request_upload_url",
    "resolve_target",
    "save_config",
    "ship_logs",
    "upload_export",
    "upload_section",
    "zip_export",
]
