"""Jira's limits: how long an answer says to wait, pacing near the limit, and visible waits.

Jira Cloud answers 429 with ``Retry-After`` (seconds) and, with its newer points-based limits, also
``X-RateLimit-Limit``, ``-Remaining``, ``-Reset`` (an ISO 8601 time), ``X-RateLimit-NearLimit: true`` (under
20% of the budget left), ``RateLimit-Reason`` (which limit: burst, quota, per-issue writes) and
``Beta-Retry-After`` while a limit is only announced. Data Center's rate limiting answers 429 with
``Retry-After`` and ``X-RateLimit-*`` too, and an overloaded node answers 503 (retried by the client).

``Limiter``
- bounds the requests in flight to one Jira host (``slots``), whatever the number of export threads;
- spaces requests ``near_limit_interval`` apart while Jira says it is near the limit;
- ``wait(seconds, reason)`` sleeps with a pause event (resume time) before and a resume event after, and a log
  line every ``log_every`` seconds. Waits are serialised: when several threads are limited, one waits and
  tells the agent, the others wait behind it and then go.
"""

from __future__ import annotations

import email.utils
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime

from integrations.sdk import Logger
from integrations.sdk.ratelimit import LOG_EVERY, VisibleWaits, WaitListener

DEFAULT_WAIT = 10.0  # a 429 without any hint: Atlassian advises backing off; start at 10 s
MAX_WAIT = 3600.0



def _seconds(value: str | None, now: float) -> float | None:
    """``Retry-After``: delta seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - now, 0.0)


def _iso_seconds(value: str | None, now: float) -> float | None:
    """``X-RateLimit-Reset``: an ISO 8601 time (``2025-03-01T12:00Z``)."""
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when.timestamp() - now, 0.0)


def limited_wait(status: int, headers: Mapping[str, str], now: float, attempt: int = 1) -> float | None:
    """Seconds to wait for a 429 (``None`` for any other status): ``Retry-After``, then ``Beta-Retry-After``,
    then ``X-RateLimit-Reset``, else an exponential default."""
    if status != 429:
        return None
    for value in (_seconds(headers.get("retry-after"), now), _seconds(headers.get("beta-retry-after"), now),
                  _iso_seconds(headers.get("x-ratelimit-reset"), now)):
        if value is not None:
            return min(max(value, 0.5), MAX_WAIT)
    return float(min(DEFAULT_WAIT * 2.0 ** (attempt - 1), MAX_WAIT))


class Limiter(VisibleWaits):
    """Slots, pacing and waits for one Jira host; ``sleep``/``clock`` are injectable for tests."""

    def __init__(
        self,
        *,
        max_in_flight: int = 8,
        listener: WaitListener | None = None,
        log: Logger | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        near_limit_interval: float = 0.25,
        log_every: float = LOG_EVERY,
    ) -> None:
        self.max_in_flight = max_in_flight
        super().__init__("Jira", listener=listener, log=log, sleep=sleep, clock=clock, log_every=log_every)
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._lock = threading.Lock()
        self._near_limit = False
        self._next_at = 0.0
        self.near_limit_interval = near_limit_interval
        self.in_flight = 0
        self.peak_in_flight = 0

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Holds one of the host's request slots (and waits out any wait another thread is in)."""
        with self._wait_lock:  # a wait in progress holds this: nobody starts a request meanwhile
            pass
        self._pace()
        with self._slots:
            with self._lock:
                self.in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            try:
                yield
            finally:
                with self._lock:
                    self.in_flight -= 1

    def _pace(self) -> None:
        with self._lock:
            if not self._near_limit:
                return
            now = self._clock()
            delay = self._next_at - now
            self._next_at = max(now, self._next_at) + self.near_limit_interval
        if delay > 0:
            self._sleep(delay)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Reads ``X-RateLimit-NearLimit`` (or a low ``-Remaining``) from an answer: pace or stop pacing."""
        near = headers.get("x-ratelimit-nearlimit", "").lower() == "true"
        if not near:
            try:
                limit, remaining = int(headers["x-ratelimit-limit"]), int(headers["x-ratelimit-remaining"])
                near = limit > 0 and remaining < limit * 0.2
            except (KeyError, ValueError):
                near = False
        with self._lock:
            if near and not self._near_limit:
                self.log.info("jira says the rate limit is near: pacing requests",
                              reason=headers.get("ratelimit-reason", ""))
            self._near_limit = near

    @property
    def near_limit(self) -> bool:
        return self._near_limit
