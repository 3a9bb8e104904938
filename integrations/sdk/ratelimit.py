"""Waiting out an upstream API's rate limit, visibly: the part every HTTP integration shares.

``VisibleWaits.wait(seconds, reason)`` sleeps with a pause event (with the resume time) to the listener (the
agent) before, a resume event after, and a log line every ``log_every`` seconds so nobody thinks the export
hung. Waits are serialised: when several threads are limited, one waits and tells the agent, the others wait
behind it. Each integration's limiter subclasses it and adds how its API says how long to wait (headers) and
how much quota is left (``Quota``). ``sleep`` and ``clock`` are injectable for tests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from integrations.sdk._log import Logger, get_logger

LOG_EVERY = 30.0


class WaitListener(Protocol):
    """Who hears about waits: the integration forwards these to the agent's pause/resume callbacks."""

    def paused(self, message: str, until: datetime) -> None: ...

    def resumed(self, message: str) -> None: ...


@dataclass
class Quota:
    """What an API's last answers said of a rate-limit window."""

    limit: int | None = None
    remaining: int | None = None
    reset: float | None = None  # epoch seconds


def header_int(value: str | None) -> int | None:
    """A header's integer value, or None when it is missing or not a number."""
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class VisibleWaits:
    """Serialised waits with pause/resume events and progress lines, for the API named ``service``."""

    def __init__(self, service: str, *, listener: WaitListener | None = None, log: Logger | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time,
                 log_every: float = LOG_EVERY) -> None:
        self.service = service
        self.listener = listener
        self.log = log or get_logger()
        self._sleep, self._clock, self._log_every = sleep, clock, log_every
        self._wait_lock = threading.Lock()  # held for the whole of a wait
        self.waits: list[tuple[str, float]] = []  # (reason, seconds) of every wait, for reports and tests

    def wait(self, seconds: float, reason: str) -> None:
        """Waits ``seconds`` with pause/resume events and a log line every ``log_every`` seconds."""
        with self._wait_lock:
            until = self._clock() + seconds
            resume_at = datetime.fromtimestamp(until, UTC)
            message = f"{self.service} {reason}: waiting until {resume_at.strftime('%Y-%m-%dT%H:%M:%SZ')}"
            self.waits.append((reason, seconds))
            self.log.warning("rate limited, waiting", reason=reason, seconds=round(seconds, 1),
                             resume_at=resume_at.isoformat())
            if self.listener is not None:
                self.listener.paused(message, resume_at)
            while (left := until - self._clock()) > 0:
                self._sleep(min(left, self._log_every))
                left = until - self._clock()
                if left > 0:
                    self.log.info(f"still waiting for the {self.service} rate limit", reason=reason,
                                  seconds_left=round(left, 1))
            if self.listener is not None:
                self.listener.resumed(f"{self.service} {reason}: resumed")
            self.log.info("rate limit wait over, resuming", reason=reason)
