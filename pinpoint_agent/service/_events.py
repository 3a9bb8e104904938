"""Tells the poller the moment Prefect schedules a run of one of our deployments.

The service learns of new runs by polling (the agent only makes outbound connections). Polling fast costs
the Prefect server a query every interval even when nothing happens; polling slowly adds the interval to
every interactive command. Prefect also streams its events out over a websocket (``/api/events/out``, an
outbound connection too): ``create_flow_run`` emits ``prefect.flow-run.Scheduled`` before it answers the
caller. This listener subscribes to those events and hands the run's id to the poller, which reads that
run (one request by id, half the cost of the poll's query) and starts it if it is still Scheduled and due.
The poll stays the one source of truth (an event lost in a reconnect costs one poll interval, never a
run); the events only shorten the wait. While the stream is down the service polls fast again.

Prefect's subscriber is async; it runs on an event loop in a thread of its own. It is asked not to
reconnect by itself (its retries would hide a dropped stream): this loop reconnects, says so in the log,
and meanwhile the service polls fast.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Collection
from uuid import UUID

import structlog
from prefect.events.clients import get_events_subscriber
from prefect.events.filters import EventFilter, EventNameFilter

log = structlog.get_logger("pinpoint_agent.service")

SCHEDULED_EVENT = "prefect.flow-run.Scheduled"
RETRY_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)  # waits between failed subscriptions (the last one repeats)


class ScheduledRuns:
    """Calls ``announce(run id)`` for each run Prefect schedules for a deployment in ``deployments()``, and
    ``announce(None)`` (poll everything now) when the stream closes or cannot open.

    ``live`` is set while the subscription is open; the service polls fast while it is not."""

    def __init__(self, announce: Callable[[UUID | None], None], deployments: Callable[[], Collection[UUID]]) -> None:
        self._announce = announce
        self._deployments = deployments
        self.live = threading.Event()
        self.received = 0  # runs announced (for the heartbeat)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self._main, name="events", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        loop, task = self._loop, self._task
        if loop is not None and task is not None:
            loop.call_soon_threadsafe(task.cancel)
        self._thread.join(timeout)

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._task = loop.create_task(self._listen())
            loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        finally:
            self.live.clear()
            loop.close()

    async def _listen(self) -> None:
        failures = 0
        while True:
            try:
                async with get_events_subscriber(filter=EventFilter(event=EventNameFilter(name=[SCHEDULED_EVENT])),
                                                 reconnection_attempts=0) as events:
                    self.live.set()
                    log.info("listening to Prefect's event stream for new runs" if not failures else
                             "Prefect event stream open again; polling slowly")
                    failures = 0
                    async for event in events:
                        ours = {f"prefect.deployment.{d}" for d in self._deployments()}
                        prefix, _, run_id = event.resource.id.rpartition(".")
                        if prefix == "prefect.flow-run" and any(r.id in ours for r in event.related):
                            self.received += 1
                            self._announce(UUID(run_id))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 (the poll covers any failure here; it is only slower)
                if not failures:
                    log.warning("no Prefect event stream; polling fast until it is back",
                                error=f"{type(exc).__name__}: {exc}"[:300])
                failures += 1
            finally:
                self.live.clear()
                self._announce(None)  # the stream was closed or never opened: poll now, then at the fast interval
            await asyncio.sleep(RETRY_SECONDS[min(failures, len(RETRY_SECONDS)) - 1] if failures else 1.0)
