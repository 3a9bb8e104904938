"""Logging for every command: structlog lines on stdout (text or JSON) teed into ``<root>/logs/<command>``
(last run only). Known secret values are masked in every line before it is written anywhere."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import MutableMapping
from pathlib import Path
from typing import IO, Any

import orjson
import structlog

_secrets: set[str] = set()
_SECRET_KEYS = ("token", "api_key", "apikey", "password", "secret", "access_token", "refresh_token", "credentials",
                "upload_url", "state_url")  # a presigned upload url is a credential too; so is the state's


def register_secret(value: str) -> None:
    """A value that must never appear in a log line (tokens from configs)."""
    if value and len(value) >= 4:
        _secrets.add(value)


def is_secret_key(key: str) -> bool:
    """Whether a config key names a secret (token, api_key, password…)."""
    return any(s in key.lower() for s in _SECRET_KEYS)


def mask(text: str) -> str:
    for s in _secrets:
        if s in text:
            text = text.replace(s, "***")
    return text


def _mask_processor(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    if _secrets:
        for k, v in list(event.items()):
            if isinstance(v, str):
                event[k] = mask(v)
            elif not isinstance(v, int | float | bool | type(None)):
                event[k] = mask(str(v))
    return event


class _Tee:
    """structlog logger writing each rendered line to a stream and a file."""

    def __init__(self, stream: IO[str], file: IO[str] | None) -> None:
        self._stream, self._file = stream, file
        self._lock = threading.Lock()

    def msg(self, message: str) -> None:
        with self._lock:
            self._stream.write(message + "\n")
            self._stream.flush()
            if self._file is not None:
                self._file.write(message + "\n")
                self._file.flush()

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


_file: IO[str] | None = None


def setup(command: str, root_logs: Path | None, *, fmt: str = "text", level: str = "info",
          stream: IO[str] | None = None) -> Path | None:
    """Configures structlog for a command; returns the log file path (truncated: last run only)."""
    global _file
    if _file is not None:
        _file.close()
        _file = None
    path = None
    if root_logs is not None:
        root_logs.mkdir(parents=True, exist_ok=True)
        path = root_logs / command
        _file = open(path, "w", encoding="utf-8")  # noqa: SIM115 (lives as long as the command)
    renderer: Any = (structlog.processors.JSONRenderer(serializer=lambda o, **_: orjson.dumps(o, default=str).decode())
                     if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False, pad_event_to=0))
    lvl = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    tee = _Tee(stream or sys.stdout, _file)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _mask_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=lambda *_: tee,
        cache_logger_on_first_use=False,
    )
    return path


def write_to_file(text: str) -> None:
    """Writes to the command's log file only (e.g. a traceback the terminal should not show)."""
    if _file is not None:
        _file.write(mask(text))
        _file.flush()
