"""Log shipping: batches of log lines, sent to the backend as gzip-compressed JSON lines.

Wire contract::

    POST {backend_url}/agent/logs/{stream}
    Content-Type: application/x-ndjson
    Content-Encoding: gzip
    <gzip of one JSON object per line, each line ending in "\\n">
    -> any 2xx

The original agent PUT the same kind of body to ``log/agent/<device id>/<message id>`` every second (or at
10 MiB), and dropped a batch whenever the backend did not answer 202. Here a batch leaves when it has
``max_batch_lines`` lines or ``max_batch_bytes`` bytes, or when its oldest line is ``flush_interval`` seconds
old. A batch that fails with ``BackendUnavailable`` goes back to the front of the buffer and is retried with
exponential backoff (honouring ``Retry-After``); a 4xx drops it (counted as rejected). Memory is bounded:
when the buffer holds more than ``max_buffer_lines`` lines or ``max_buffer_bytes`` bytes, the oldest lines
are dropped and counted in ``stats.dropped_lines``. ``close`` flushes what it can within its timeout.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections import deque
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from pinpoint_agent.backend._errors import BackendError, BackendUnavailable
from pinpoint_agent.backend._http import send

__all__ = ["LOGS_PATH", "LogShipper", "ShipperStats"]

LOGS_PATH = "/agent/logs"


@dataclass(frozen=True)
class ShipperStats:
    """Counters of a ``LogShipper``."""

    sent_lines: int
    sent_batches: int
    dropped_lines: int
    rejected_lines: int
    buffered_lines: int
    last_error: str | None


def _encode(line: Mapping[str, Any]) -> bytes:
    try:
        return orjson.dumps(line, default=str, option=orjson.OPT_NON_STR_KEYS) + b"\n"
    except TypeError:
        return orjson.dumps({"event": "unserialisable log line", "repr": repr(line)[:2000]}) + b"\n"


class LogShipper:
    """Ships log lines (dicts) to the backend from a background thread; see the module docstring."""

    def __init__(
        self,
        client: httpx.Client,
        *,
        backend_url: str,
        stream: str = "agent",
        max_batch_lines: int = 1000,
        max_batch_bytes: int = 1024 * 1024,
        flush_interval: float = 2.0,
        max_buffer_lines: int = 10_000,
        max_buffer_bytes: int = 8 * 1024 * 1024,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        self._client = client
        self._url = f"{backend_url.rstrip('/')}{LOGS_PATH}/{quote(stream, safe='')}"
        self._max_batch_lines = max(1, max_batch_lines)
        self._max_batch_bytes = max(1, max_batch_bytes)
        self._interval = flush_interval
        self._max_lines = max(1, max_buffer_lines)
        self._max_bytes = max(1, max_buffer_bytes)
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max

        self._cond = threading.Condition()
        self._buffer: deque[bytes] = deque()
        self._buffer_bytes = 0
        self._inflight = 0
        self._oldest_at = 0.0
        self._flush_requested = False
        self._closing = False
        self._close_deadline = 0.0
        self._backoff = 0.0
        self._backoff_until = 0.0
        self._sent_lines = 0
        self._sent_batches = 0
        self._dropped = 0
        self._rejected = 0
        self._last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name="log-shipper", daemon=True)
        self._thread.start()

    # --- producer side -------------------------------------------------------------------------------
    def ship(self, line: Mapping[str, Any]) -> None:
        """Queue one log line; never blocks on the network, never raises."""
        data = _encode(line)
        with self._cond:
            if self._closing:
                self._dropped += 1
                return
            if not self._buffer:
                self._oldest_at = time.monotonic()
            self._buffer.append(data)
            self._buffer_bytes += len(data)
            self._trim()
            if (
                len(self._buffer) == 1
                or len(self._buffer) >= self._max_batch_lines
                or self._buffer_bytes >= self._max_batch_bytes
            ):
                self._cond.notify_all()

    def __call__(self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> Any:
        """A structlog processor: ships a copy of the event and passes it on unchanged."""
        self.ship(dict(event_dict, level=event_dict.get("level", method_name)))
        return event_dict

    def flush(self, timeout: float = 10.0) -> bool:
        """Send everything buffered now; ``True`` when the buffer emptied within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._flush_requested = True
            self._cond.notify_all()
            while self._buffer or self._inflight:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._thread.is_alive():
                    return False
                self._cond.wait(remaining)
            return True

    def close(self, timeout: float = 10.0) -> None:
        """Flush within ``timeout`` seconds, then stop; lines still unsent are counted as dropped."""
        with self._cond:
            if not self._closing:
                self._closing = True
                self._close_deadline = time.monotonic() + timeout
            self._cond.notify_all()
        self._thread.join(timeout + 1.0)

    def __enter__(self) -> LogShipper:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def stats(self) -> ShipperStats:
        """A snapshot of the counters."""
        with self._cond:
            return ShipperStats(
                sent_lines=self._sent_lines,
                sent_batches=self._sent_batches,
                dropped_lines=self._dropped,
                rejected_lines=self._rejected,
                buffered_lines=len(self._buffer) + self._inflight,
                last_error=self._last_error,
            )

    # --- shipper thread --------------------------------------------------------------------------------
    def _trim(self) -> None:
        while len(self._buffer) > self._max_lines or (self._buffer_bytes > self._max_bytes and self._buffer):
            self._buffer_bytes -= len(self._buffer.popleft())
            self._dropped += 1

    def _batch_ready(self, now: float) -> bool:
        if not self._buffer:
            return False
        return (
            self._closing
            or self._flush_requested
            or len(self._buffer) >= self._max_batch_lines
            or self._buffer_bytes >= self._max_batch_bytes
            or now - self._oldest_at >= self._interval
        )

    def _next_batch(self) -> list[bytes] | None:
        """Wait (holding the lock) until a batch should go; ``None`` when the thread should stop."""
        while True:
            now = time.monotonic()
            if self._closing and (not self._buffer or now >= self._close_deadline):
                self._dropped += len(self._buffer)
                self._buffer.clear()
                self._buffer_bytes = 0
                self._cond.notify_all()
                return None
            if not self._buffer and self._flush_requested:
                self._flush_requested = False
                self._cond.notify_all()
            wake_at = self._close_deadline if self._closing else now + 3600.0
            if now < self._backoff_until:
                self._cond.wait(min(self._backoff_until, wake_at) - now)
                continue
            if self._batch_ready(now):
                break
            if self._buffer:
                wake_at = min(wake_at, self._oldest_at + self._interval)
            self._cond.wait(max(0.0, wake_at - now))
        batch: list[bytes] = []
        size = 0
        while self._buffer and len(batch) < self._max_batch_lines:
            nxt = self._buffer[0]
            if batch and size + len(nxt) > self._max_batch_bytes:
                break
            batch.append(self._buffer.popleft())
            size += len(nxt)
        self._buffer_bytes -= size
        self._inflight = len(batch)
        self._oldest_at = time.monotonic()
        return batch

    def _send(self, batch: list[bytes]) -> None:
        body = gzip.compress(b"".join(batch), compresslevel=6)
        headers = {"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"}
        send(self._client, "POST", self._url, content=body, headers=headers)

    def _run(self) -> None:
        while True:
            with self._cond:
                batch = self._next_batch()
            if batch is None:
                return
            error: Exception | None = None
            try:
                self._send(batch)
            except BackendError as exc:
                error = exc
            except Exception as exc:  # noqa: BLE001 - a bug here must not kill log shipping; counted below
                error = exc
            with self._cond:
                self._inflight = 0
                if error is None:
                    self._sent_lines += len(batch)
                    self._sent_batches += 1
                    self._backoff = 0.0
                elif isinstance(error, BackendUnavailable):
                    self._last_error = str(error)
                    self._buffer.extendleft(reversed(batch))
                    self._buffer_bytes += sum(len(b) for b in batch)
                    self._trim()
                    self._backoff = min(self._backoff_max, max(self._backoff_initial, self._backoff * 2))
                    delay = max(self._backoff, min(error.retry_after or 0.0, self._backoff_max))
                    self._backoff_until = time.monotonic() + delay
                else:
                    self._last_error = f"{type(error).__name__}: {error}"
                    self._rejected += len(batch)
                self._cond.notify_all()
