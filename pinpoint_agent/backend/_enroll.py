"""Enrollment: trade a one-time enroll code for an api key and write ``<root>/config.json``.

Wire contract::

    POST {backend_url}/agent/enroll            (no Authorization: the code is the credential)
    {"code": "...", "device_id": "<uuid4>", "hostname": "...", "os": "linux", "version": "0.1.0"}

    200/201 {"api_key": "...", "customer_id": "...", "channel": "stable",
             "secrets": {"<name>": "<value>", ...}}                     (optional; extra keys ignored)
    4xx     the code is unknown, used or expired          -> EnrollCodeRejected
    5xx/408/429, network error, timeout                   -> retried, then BackendUnavailable

The backend must treat a repeated request with the same ``code`` and ``device_id`` as the same enrollment
(answer the same key), because a request whose answer was lost is retried.

``secrets`` (e.g. integration tokens the backend already holds for this customer) never touch the disk in clear:
they go to ``<root>/secrets.json`` encrypted with the new local key (``SecretStore``), read back with
``open_secret_store(root)``.
"""

from __future__ import annotations

import os
import platform
import socket
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
from pydantic import SecretStr

from pinpoint_agent.backend._config import EnrolledConfig, config_path, save_config
from pinpoint_agent.backend._errors import BackendError, BackendRejected, ConfigError, EnrollCodeRejected
from pinpoint_agent.backend._http import AGENT_VERSION, RetryPolicy, send, with_retries
from pinpoint_agent.backend._secrets import SecretBox, SecretStore

__all__ = ["ENROLL_PATH", "enroll"]

ENROLL_PATH = "/agent/enroll"
_ENROLL_RETRY = RetryPolicy(attempts=3, initial=0.5, maximum=5.0)


def _normalise_backend_url(backend_url: str) -> str:
    url = backend_url.strip().rstrip("/")
    parsed = httpx.URL(url) if url else None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigError(f"backend url must be an http(s) url, got {backend_url!r}")
    if parsed.userinfo or parsed.query:
        raise ConfigError("backend url must not contain credentials or a query string")
    return url


def _local_key(root: Path | str) -> str:
    """The key a root that was used before enrolling already encrypts its secret store with (``secret.key``,
    see ``pinpoint_agent.secrets``): enrolled, the store stays readable."""
    try:
        return (Path(root) / "secret.key").read_text().strip()
    except OSError:
        return ""


def enroll(
    code: str,
    *,
    backend_url: str,
    root: Path | str,
    client: httpx.Client,
    retry: RetryPolicy = _ENROLL_RETRY,
) -> EnrolledConfig:
    """Register this agent with the backend and write ``<root>/config.json`` (0600).

    Raises ``ConfigError`` (empty code, bad url, already enrolled), ``EnrollCodeRejected`` (backend said 4xx),
    ``BackendUnavailable`` (unreachable or 5xx after ``retry``), ``BackendError`` (unusable answer).
    """
    code = code.strip()
    if not code:
        raise ConfigError("enroll code is empty")
    base = _normalise_backend_url(backend_url)
    path = config_path(root)
    if path.exists():  # checked before the code is spent; save_config checks again atomically
        raise ConfigError(
            f"{path} already exists: this agent is already enrolled (remove the file to enroll again)",
            path=str(path),
        )
    device_id = str(uuid.uuid4())
    payload = {
        "code": code,
        "device_id": device_id,
        "hostname": socket.gethostname(),
        "os": platform.system().lower(),
        "version": AGENT_VERSION,
    }
    url = base + ENROLL_PATH
    try:
        response = with_retries(retry, lambda: send(client, "POST", url, json=payload))
    except BackendRejected as exc:
        raise EnrollCodeRejected(
            f"enroll code rejected by the backend (HTTP {exc.status})"
            + (f": {exc.detail}" if exc.detail else ""),
            url=exc.url,
            status=exc.status,
            detail=exc.detail,
        ) from exc
    try:
        answer = response.json()
        api_key = str(answer["api_key"])
        customer_id = str(answer["customer_id"])
        channel = str(answer.get("channel") or "stable")
        secrets = answer.get("secrets") or {}
        if not isinstance(secrets, dict) or not all(isinstance(v, str) for v in secrets.values()):
            raise TypeError("secrets must map names to strings")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BackendError(
            f"backend answered {ENROLL_PATH} without api_key/customer_id (protocol mismatch?)"
        ) from exc
    if not api_key or not customer_id:
        raise BackendError(f"backend answered {ENROLL_PATH} with an empty api_key or customer_id")
    config = EnrolledConfig(
        api_key=SecretStr(api_key),
        customer_id=customer_id,
        device_id=device_id,
        channel=channel,
        backend_url=base,
        encryption_key=SecretStr(_local_key(root) or os.urandom(32).hex()),
        enrolled_at=datetime.now(UTC),
    )
    save_config(root, config)
    if secrets:
        store = SecretStore(root, SecretBox(config.encryption_key_bytes()))
        for name, value in secrets.items():
            store.put(str(name), value)
    return config
