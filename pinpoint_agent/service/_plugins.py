"""Warm integration processes for the interactive commands.

One plugin process per integration entry (``name@TYPE@id``) and integrations folder, started by the first
command that needs it and reused after that: a call on a warm plugin costs a gRPC round trip instead of a
process start. The config travels with every call, so a changed config needs no restart; so does where OAuth
access tokens come from (the entry's refresh token and the agent's backend, set on each lease).

- Before each use the process is checked (cheap: has it exited?); a dead one is replaced at once.
- ``check()`` (every few seconds, from the service) asks each idle plugin's health service and restarts
  one that crashed or stopped answering; one unused for ``idle_seconds`` is stopped.
- ``close()`` stops them all (the plugin is asked to shut down, then reaped).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from pinpoint_agent.exporter import oauth_for
from pinpoint_agent.host import IntegrationHost
from pinpoint_agent.interactive import Target
from pinpoint_agent.protocol import IntegrationConfig
from pinpoint_agent.root import Root

log = structlog.get_logger(__name__)

_Key = tuple[str, str]


@dataclass
class _Warm:
    entry: IntegrationConfig
    root: Path
    integrations_dir: Path | None
    host: IntegrationHost | None = None
    users: int = 0
    last_used: float = field(default_factory=time.monotonic)
    starts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)  # one start at a time per entry


class WarmPlugins:
    def __init__(self, *, idle_seconds: float = 1800.0) -> None:
        self.idle_seconds = idle_seconds
        self._lock = threading.Lock()
        self._plugins: dict[_Key, _Warm] = {}
        self._closed = False

    @contextmanager
    def lease(self, target: Target) -> Iterator[IntegrationHost]:
        """A running plugin for ``target`` (started or restarted if needed), kept running afterwards."""
        key = (target.entry.display_key, str(target.integrations_dir or ""))
        with self._lock:
            if self._closed:
                raise RuntimeError("the service is stopping")
            warm = self._plugins.get(key)
            if warm is None:
                warm = self._plugins[key] = _Warm(target.entry, target.root, target.integrations_dir)
            warm.users += 1
        try:
            with warm.lock:
                if warm.host is None or warm.host.process.exited() is not None:
                    self._restart(warm, "crashed" if warm.host is not None else "")
                host = warm.host
                assert host is not None
                # OAuth as for a one-shot command: each call's entry and agent config say where access tokens
                # come from (stateless; two calls at once on one entry set the same thing)
                host.callbacks.oauth = oauth_for(Root(target.root), target.agent, target.entry)
            yield host
        finally:
            with self._lock:
                warm.users -= 1
                warm.last_used = time.monotonic()

    def _restart(self, warm: _Warm, why: str) -> None:
        """(Re)starts the plugin; the caller holds ``warm.lock``."""
        old, warm.host = warm.host, None
        if old is not None:
            code = old.close()
            log.warning("warm plugin restarted", integration=warm.entry.display_key, reason=why, exit_code=code)
        started = time.monotonic()
        warm.host = IntegrationHost.start(warm.entry, root=warm.root, integrations_dir=warm.integrations_dir)
        warm.starts += 1
        log.info("warm plugin started", integration=warm.entry.display_key, pid=warm.host.process.proc.pid,
                 ms=round((time.monotonic() - started) * 1000))

    def check(self) -> None:
        """Health-checks idle plugins: restarts crashed ones, stops ones unused for too long."""
        with self._lock:
            items = list(self._plugins.items())
        for key, warm in items:
            if not warm.lock.acquire(blocking=False):
                continue  # being started right now
            try:
                if warm.host is None:
                    continue
                idle = time.monotonic() - warm.last_used
                if warm.users == 0 and idle > self.idle_seconds:
                    warm.host.close()
                    warm.host = None
                    with self._lock:
                        self._plugins.pop(key, None)
                    log.info("warm plugin stopped after idling", integration=warm.entry.display_key,
                             idle_seconds=round(idle))
                elif warm.host.process.exited() is not None or (warm.users == 0 and not warm.host.healthy()):
                    try:
                        self._restart(warm, "health check failed")
                    except Exception as exc:  # noqa: BLE001 (the next lease tries again)
                        log.error("warm plugin restart failed", integration=warm.entry.display_key, error=str(exc))
            finally:
                warm.lock.release()

    def pids(self) -> dict[str, int]:
        """Process ids of the running plugins, by integration (for heartbeats and tests)."""
        with self._lock:
            return {k[0]: w.host.process.proc.pid for k, w in self._plugins.items()
                    if w.host is not None and w.host.process.exited() is None}

    def close(self) -> None:
        with self._lock:
            self._closed = True
            plugins = list(self._plugins.values())
            self._plugins.clear()
        for warm in plugins:
            with warm.lock:
                if warm.host is not None:
                    warm.host.close()
                    warm.host = None
