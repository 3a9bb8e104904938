"""GitHub's quotas: read them from every answer, keep a reserve, and wait (visibly) when they run out.

GitHub sends ``X-RateLimit-Limit``, ``-Remaining``, ``-Reset`` (epoch seconds) and ``-Resource`` (``core``,
``graphql``, ``search``…) on every answer. The limiter keeps one ``Quota`` per resource and

- before a request: when the remaining calls are at or below the reserve (a share of the limit), waits for
  the reset; otherwise counts the call against the quota at once, so parallel threads never overshoot;
- after a 403/429: tells whether it is a rate limit (primary: remaining 0; secondary: ``Retry-After`` or the
  "secondary rate limit" message) and how long to wait.

A wait sends a pause event with the resume time to the listener (the agent), logs every ``log_every``
seconds so nobody thinks the export hung, then sends a resume event. Waits are serialised: when several
threads hit the limit, one waits and tells the agent, the others wait behind it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

from integrations.sdk import Logger
from integrations.sdk.ratelimit import LOG_EVERY, Quota, VisibleWaits, WaitListener, header_int

SECONDARY_DEFAULT_WAIT = 60.0  # GitHub: "wait at least one minute" when it gives no Retry-After
MAX_WAIT = 3900.0  # the primary quota resets hourly; a reset further away than this is not believed





class RateLimiter(VisibleWaits):
    """Quota bookkeeping and waiting; ``sleep``/``clock`` are injectable for tests."""

    def __init__(
        self,
        *,
        reserve: float = 0.2,
        listener: WaitListener | None = None,
        log: Logger | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        log_every: float = LOG_EVERY,
    ) -> None:
        self.reserve = reserve
        super().__init__("GitHub", listener=listener, log=log, sleep=sleep, clock=clock, log_every=log_every)
        self._quotas: dict[str, Quota] = {}
        self._lock = threading.Lock()

    def quota(self, resource: str) -> Quota:
        with self._lock:
            return self._quotas.setdefault(resource, Quota())

    def update(self, resource: str, headers: Mapping[str, str]) -> str:
        """Records the quota an answer reports; returns the resource it names (or ``resource``)."""
        name = headers.get("x-ratelimit-resource") or resource
        remaining = header_int(headers.get("x-ratelimit-remaining"))
        if remaining is None:
            return name
        with self._lock:
            q = self._quotas.setdefault(name, Quota())
            q.limit = header_int(headers.get("x-ratelimit-limit")) or q.limit
            reset = header_int(headers.get("x-ratelimit-reset"))
            # Answers of parallel requests arrive out of order: within one window keep the lowest count.
            if reset is not None and q.reset is not None and reset == q.reset and q.remaining is not None:
                q.remaining = min(q.remaining, remaining)
            else:
                q.remaining = remaining
            q.reset = float(reset) if reset is not None else q.reset
        return name

    def acquire(self, resource: str) -> float:
        """Seconds to wait before the next call of ``resource`` (0: go, and the call is counted now)."""
        with self._lock:
            q = self._quotas.setdefault(resource, Quota())
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

    def answer_wait(
        self, resource: str, status: int, headers: Mapping[str, str], message: str
    ) -> float | None:
        """For a 403/429 answer: seconds to wait if it is a rate limit, ``None`` if it is not one."""
        if status not in (403, 429):
            return None
        retry_after = headers.get("retry-after")
        if retry_after is not None:
            try:
                return min(max(float(retry_after), 0.0), MAX_WAIT)
            except ValueError:
                pass
        if headers.get("x-ratelimit-remaining") == "0":
            reset = header_int(headers.get("x-ratelimit-reset"))
            if reset is not None:
                with self._lock:
                    q = self._quotas.setdefault(resource, Quota())
                    q.remaining, q.reset = 0, float(reset)
                return min(max(reset - self._clock() + 1.0, 1.0), MAX_WAIT)
            return SECONDARY_DEFAULT_WAIT
        lowered = message.lower()
        if status == 429 or "rate limit" in lowered or "abuse" in lowered:
            return SECONDARY_DEFAULT_WAIT
        return None
