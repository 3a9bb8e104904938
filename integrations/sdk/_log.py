"""Plugin logging: one JSON object per line on stderr (``level``, ``event``, ``timestamp`` and fields),
which the agent copies into the integration's log file and its own log.

Hand-rolled on the stdlib rather than structlog on purpose: importing structlog pulls in rich and costs an
integration ~130 ms of cold start; this needs a few lines.
"""

from __future__ import annotations

import os
import sys
import threading
import traceback
from datetime import UTC, datetime
from typing import Any

import orjson

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
_lock = threading.Lock()
_context: dict[str, Any] = {}
_min_level = _LEVELS["info"]


def configure_logging(level: str | None = None) -> None:
    global _min_level
    _min_level = _LEVELS.get((level or os.environ.get("PINPOINT_LOG_LEVEL", "info")).lower(), 20)


def bind(**fields: Any) -> None:
    """Adds fields to every later line of this process (e.g. the integration's display key)."""
    _context.update(fields)


class Logger:
    """``log.info("event", key=value)`` — the subset of structlog's API integrations use."""

    def __init__(self, **fields: Any) -> None:
        self._fields = fields

    def bind(self, **fields: Any) -> Logger:
        return Logger(**self._fields, **fields)

    def _emit(self, level: str, event: str, exc_info: bool = False, **fields: Any) -> None:
        if _LEVELS[level] < _min_level:
            return
        line = {"timestamp": datetime.now(UTC).isoformat(), "level": level, "event": event,
                **_context, **self._fields, **fields}
        if exc_info and sys.exc_info()[0] is not None:
            line["exception"] = traceback.format_exc()
        data = orjson.dumps(line, default=str) + b"\n"
        with _lock:
            sys.stderr.buffer.write(data) if hasattr(sys.stderr, "buffer") else sys.stderr.write(data.decode())
            sys.stderr.flush()

    def debug(self, event: str, **fields: Any) -> None:
        self._emit("debug", event, **fields)

    def info(self, event: str, **fields: Any) -> None:
        self._emit("info", event, **fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._emit("warning", event, **fields)

    def error(self, event: str, **fields: Any) -> None:
        self._emit("error", event, **fields)

    def exception(self, event: str, **fields: Any) -> None:
        self._emit("error", event, exc_info=True, **fields)


def get_logger(**fields: Any) -> Logger:
    return Logger(**fields)
