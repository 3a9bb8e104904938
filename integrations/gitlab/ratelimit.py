"""GitLab's rate limits: read ``RateLimit-*`` from every answer, keep a reserve, wait (visibly) on 429.

GitLab sends ``RateLimit-Limit``, ``RateLimit-Remaining``, ``RateLimit-Reset`` (epoch seconds) and
``RateLimit-Observed`` on answers of rate-limited paths, and ``Retry-After`` (seconds) with a 429. The limiter

- before a request: when the remaining calls are at or below the reserve (a share of the limit), waits for the
  reset; otherwise counts the call at once, so parallel threads never overshoot;
- after a 429: waits ``Retry-After``, else until ``RateLimit-Reset``, else ``DEFAULT_WAIT``.

A wait sends a pause event with the resume time to the listener (the agent), logs every ``log_every`` seconds
so nobody thinks the export hung, then sends a resume event. Waits are serialised across threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

from integrations.sdk import Logger
from integrations.sdk.ratelimit import LOG_EVERY, Quota, VisibleWaits, WaitListener, header_int

DEFAULT_WAIT = 60.0  # a 429 with neither Retry-After nor RateLimit-Reset
MAX_WAIT = 3900.0  # GitLab's windows are a minute to an hour: a wait longer than this is not believed





class RateLimiter(VisibleWaits):
    """Quota bookkeeping and waiting; ``sleep``/``clock`` are injectable for tests."""

    def __init__(
        self,
        *,
        reserve: float = 0.1,
        listener: WaitListener | None = None,
        log: Logger | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        log_every: float = LOG_EVERY,
    ) -> None:
        self.reserve = reserve
        super().__init__("GitLab", listener=listener, log=log, sleep=sleep, clock=clock, log_every=log_every)
        self.quota = Quota()
        self._lock = threading.Lock()

    def update(self, headers: Mapping[str, str]) -> None:
        """Records the quota an answer reports (answers without ``RateLimit-Remaining`` change nothing)."""
        remaining = header_int(headers.get("ratelimit-remaining"))
        if remaining is None:
            return
        with self._lock:
            q = self.quota
            q.limit = header_int(headers.get("ratelimit-limit")) or q.limit
            reset = header_int(headers.get("ratelimit-reset"))
            # Answers of parallel requests arrive out of order: within one window keep the lowest count.
            if reset is not None and reset == q.reset and q.remaining is not None:
                q.remaining = min(q.remaining, remaining)
            else:
                q.remaining = remaining
            q.reset = float(reset) if reset is not None else q.reset

    def acquire(self) -> float:
        """Seconds to wait before the next call (0: go, and the call is counted now)."""
        with self._lock:
            q = self.quota
            if q.remaining is None:
                return 0.0
            now = self._clock()
            if q.reset is not None and q.reset <= now:  # the window has passed: the quota is full again
                q.remaining, q.reset = None, None
                return 0.0
            floor = int((q.limit or 0) * self.reserve)
            if q.remaining <= floor and q.reset is not None:
                return min(q.reset - now + 1.0, MAX_WAIT)
            q.remaining -= 1
            return 0.0

    def answer_wait(self, headers: Mapping[str, str]) -> float:
        """Seconds to wait after a 429: ``Retry-After``, else until ``RateLimit-Reset``, else the default."""
        retry_after = headers.get("retry-after")
        if retry_after is not None:
            try:
                return min(max(float(retry_after), 0.0), MAX_WAIT)
            except ValueError:
                pass
        reset = header_int(headers.get("ratelimit-reset"))
        if reset is not None:
            with self._lock:
                self.quota.remaining, self.quota.reset = 0, float(reset)
            return min(max(reset - self._clock() + 1.0, 1.0), MAX_WAIT)
        return DEFAULT_WAIT
