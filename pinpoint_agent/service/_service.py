"""The ``run`` service: serves the command deployments and runs their flow runs in this process.

    poller thread      scheduled runs of our deployments → refuse (too old), hand an interactive run to a
                       worker, start the next export if none runs; every ``events_poll_interval`` (1 s), or
                       ``poll_interval`` (100 ms) while the event stream is down; a run the events thread
                       announces is read by its id at once
    events thread      Prefect's event stream: announces each run of ours Prefect schedules (``_events``)
    worker threads     interactive runs, at once and side by side, each on a warm plugin
    export thread      one export at a time, in a process of its own; the others stay Scheduled in Prefect
                       (the queue survives restarts); SIGTERM stops it: sessions roll back, the run goes back
                       to the queue
    upkeep thread      warm plugin health checks (restart on crash) and the heartbeat every 30 s
    main thread        waits for SIGTERM/SIGINT, then stops everything in order
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from uuid import UUID

import structlog
from prefect.client.schemas.objects import FlowRun
from prefect.context import SyncClientContext
from prefect.settings import PREFECT_CLIENT_MAX_RETRIES, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

from pinpoint_agent import __version__
from pinpoint_agent.errors import ConfigError, FatalError
from pinpoint_agent.interactive import plugin_source
from pinpoint_agent.prefect_compat import call_parameters, quick_flow, run_in_process
from pinpoint_agent.prefect_server import revive
from pinpoint_agent.root import Root
from pinpoint_agent.service._api import DEFAULT_DEPLOYMENT_NAME, Api, ApiUnavailable, heartbeat_variable
from pinpoint_agent.service._api import now as _now
from pinpoint_agent.service._commands import COMMANDS, Command
from pinpoint_agent.service._events import ScheduledRuns
from pinpoint_agent.service._plugins import WarmPlugins
from pinpoint_agent.service._rules import ACCEPTED_TAG, refusal

log = structlog.get_logger("pinpoint_agent.service")

READY_EVERY = 10.0  # seconds between marking the deployments polled (Prefect counts them not ready after 60 s)
REVIVE_AFTER = 3.0  # seconds the API is down before the root's local Prefect server, if gone, is started again
REVIVE_EVERY = 30.0  # seconds between two such attempts


@dataclass
class Settings:
    """Timings of the service; each can be set with ``PINPOINT_<NAME>`` in the environment."""

    poll_interval: float = 0.1  # seconds between looks for new runs while Prefect's event stream is down
    events_poll_interval: float = 1.0  # ... while it is up (an event wakes the poller at once)
    heartbeat_interval: float = 30.0
    plugin_check_interval: float = 10.0  # warm plugin health checks
    plugin_idle_seconds: float = 1800.0  # a warm plugin unused this long is stopped
    workers: int = 8  # interactive runs at once
    stop_grace: float = 30.0  # seconds SIGTERM waits for running work
    deployment_name: str = DEFAULT_DEPLOYMENT_NAME

    @classmethod
    def from_env(cls) -> Settings:
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = os.environ.get(f"PINPOINT_{f.name.upper()}")
            if raw is not None:
                try:
                    values[f.name] = type(getattr(cls, f.name))(raw)
                except ValueError:
                    raise ConfigError(f"PINPOINT_{f.name.upper()} must be a {f.type}, not {raw!r}") from None
        return cls(**values)


@dataclass
class _Export:
    run: FlowRun
    thread: threading.Thread
    process: subprocess.Popen[bytes] | None = None
    started: float = field(default_factory=time.monotonic)


class Service:
    def __init__(self, root: Root, settings: Settings | None = None, *, log_format: str = "text",
                 log_level: str = "info") -> None:
        self.root = root
        self.log_format, self.log_level = log_format, log_level
        self.settings = settings or Settings.from_env()
        self.stopping = threading.Event()
        self._poke = threading.Event()  # set: look now (runs were announced, the stream closed, or stopping)
        self._announced: deque[UUID] = deque()  # runs the event stream announced, not yet read
        self.events = ScheduledRuns(self._announce, lambda: list(self._served))
        self.plugins = WarmPlugins(idle_seconds=self.settings.plugin_idle_seconds)
        self._served: dict[UUID, Command] = {}
        self._quick_flows = {name: quick_flow(c.flow, root.temp / "prefect-results")  # as the workers run them
                             for name, c in COMMANDS.items() if c.interactive}
        self._inflight: set[UUID] = set()
        self._inflight_lock = threading.Lock()
        self._work: queue.Queue[tuple[Command, FlowRun] | None] = queue.Queue()
        self._export: _Export | None = None
        self._waiting_exports: set[UUID] = set()
        self._api_down_since: float | None = None
        self._next_revive = 0.0
        self._counts = {"done": 0, "refused": 0}

    # -- lifecycle ---------------------------------------------------------------------------------------
    def run(self) -> int:
        """Serves until SIGTERM/SIGINT; returns the exit code. Call from the main thread."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda signum, _frame: self._on_signal(signum))
        log.info("service starting", version=__version__, root=str(self.root.path), pid=os.getpid(),
                 api=os.environ.get("PREFECT_API_URL"), poll_interval=self.settings.poll_interval)
        threads = [threading.Thread(target=self._poll_loop, name="poller", daemon=True),
                   threading.Thread(target=self._upkeep_loop, name="upkeep", daemon=True)]
        threads += [threading.Thread(target=self._worker_loop, name=f"worker-{i}", daemon=True)
                    for i in range(self.settings.workers)]
        for t in threads:
            t.start()
        self.events.start()
        while not self.stopping.wait(0.5):
            pass
        self._shutdown(threads)
        return 0

    def _on_signal(self, signum: int) -> None:
        if not self.stopping.is_set():
            log.info("stopping", signal=signal.Signals(signum).name)
        self.stopping.set()
        self._poke.set()

    def _shutdown(self, threads: list[threading.Thread]) -> None:
        deadline = time.monotonic() + self.settings.stop_grace
        export = self._export
        if export is not None and export.thread.is_alive():
            log.info("stopping the running export; its open sessions roll back and it runs again later",
                     flow_run=export.run.name)
            self._stop_export(export, deadline)
        self.events.stop()
        for _ in range(self.settings.workers):
            self._work.put(None)
        for t in threads:
            t.join(max(deadline - time.monotonic(), 0.1))
        self.plugins.close()
        log.info("service stopped", unfinished=sorted(t.name for t in threads if t.is_alive()))

    # -- finding runs -----------------------------------------------------------------------------------
    def _poll_loop(self) -> None:
        # The poll fails fast (no client-side retries with growing backoff): this loop notices an outage,
        # says so and polls again every few seconds; runs in flight keep the client's retries.
        with temporary_settings({PREFECT_CLIENT_MAX_RETRIES: 0}), SyncClientContext.get_or_create() as ctx:
            api = Api(ctx.client)
            backoff = self.settings.poll_interval  # while the API is down: grows to 5 s
            next_ready = next_poll = 0.0
            first = True
            while not self.stopping.is_set():
                self._poke.clear()
                announced = []
                while self._announced:
                    announced.append(self._announced.popleft())
                try:
                    if not self._served:
                        self._served = api.register(self.settings.deployment_name, self.root.path)
                        log.info("serving deployments", deployments=sorted(
                            f"{c.name}/{self.settings.deployment_name}" for c in self._served.values()))
                        if first:  # interactive runs are ours alone: any still open were cut off by a kill
                            first = False
                            interactive = [i for i, c in self._served.items() if c.interactive]
                            for run in api.crash_abandoned(interactive, "the agent stopped while this ran"):
                                log.warning("marked a run of a killed service crashed", flow_run=run.name)
                    if announced and time.monotonic() < next_poll:
                        runs = api.due(announced)
                    else:  # the timer, a closed stream, or events so many that a poll is due anyway
                        runs = api.scheduled(list(self._served))
                        next_poll = time.monotonic() + (self.settings.events_poll_interval if self.events.live.is_set()
                                                        else self.settings.poll_interval)
                    for run in runs:
                        if self.stopping.is_set():
                            break
                        self._consider(api, run)
                    if time.monotonic() >= next_ready:
                        next_ready = time.monotonic() + READY_EVERY
                        if not api.mark_ready(list(self._served)):
                            log.warning("the deployments are gone from the Prefect API; registering them again")
                            self._served = {}
                            continue
                    self._api_up()
                    backoff = self.settings.poll_interval
                except ApiUnavailable as exc:
                    backoff = self._api_down(exc, backoff)
                    next_poll = time.monotonic() + backoff
                except Exception:  # noqa: BLE001 (a bug must not end the service; it is logged)
                    log.exception("poll failed")
                    next_poll = time.monotonic() + 1.0
                self._poke.wait(max(next_poll - time.monotonic(), 0.0))

    def _announce(self, run_id: UUID | None) -> None:
        if run_id is not None:
            self._announced.append(run_id)
        self._poke.set()

    def _api_down(self, exc: ApiUnavailable, wait: float) -> float:
        if self._api_down_since is None:
            self._api_down_since = time.monotonic()
            log.warning("Prefect API unreachable; retrying", error=str(exc))
        self._served = {}  # registered again when it answers (it may be a new server)
        if self._revive_local_server():
            return self.settings.poll_interval  # it answers now: poll at once (a mutation is stale after 15 s)
        return min(max(wait * 2, 0.5), 5.0)

    def _revive_local_server(self) -> bool:
        """The root's own Prefect server (the default without PREFECT_API_URL) is gone: start it again at the
        same address, so this process's clients and the backend's find it where they did. True if it did."""
        now = time.monotonic()
        assert self._api_down_since is not None
        if now - self._api_down_since < REVIVE_AFTER or now < self._next_revive:
            return False
        self._next_revive = now + REVIVE_EVERY
        url = os.environ.get("PREFECT_API_URL", "")
        try:
            if revive(self.root.prefect_home, url):
                log.warning("the local Prefect server had stopped; started it again", api=url)
                return True
        except FatalError as exc:
            log.error("could not start the local Prefect server again", error=str(exc))
        return False

    def _api_up(self) -> None:
        if self._api_down_since is not None:
            log.info("Prefect API reachable again", seconds_down=round(time.monotonic() - self._api_down_since, 1))
            self._api_down_since = None

    def _consider(self, api: Api, run: FlowRun) -> None:
        with self._inflight_lock:
            if run.id in self._inflight:
                return
        command = self._served.get(run.deployment_id) if run.deployment_id else None
        if command is None:
            return
        due = run.expected_start_time or run.created
        assert due is not None
        message = refusal(command.name, command.max_age, due=due, tags=run.tags, now=_now())
        if message:
            api.refuse(run, message)
            self._counts["refused"] += 1
            log.warning("request refused", command=command.name, flow_run=run.name, id=str(run.id), reason=message)
            return
        if command.interactive:
            with self._inflight_lock:
                self._inflight.add(run.id)
            self._work.put((command, run))
            return
        api.tag(run, ACCEPTED_TAG)  # accepted: waiting in the queue never makes it too old
        if self._export is not None and self._export.thread.is_alive():
            if run.id not in self._waiting_exports:
                self._waiting_exports.add(run.id)
                log.info("export queued behind the running one", flow_run=run.name, id=str(run.id))
            return
        if not api.claim(run):
            return  # the deployment's slot is held elsewhere (a worker, or a lease of a killed service)
        self._waiting_exports.discard(run.id)
        with self._inflight_lock:
            self._inflight.add(run.id)
        thread = threading.Thread(target=self._export_main, args=(command, run), name="export", daemon=True)
        self._export = _Export(run, thread)
        thread.start()

    # -- running them -----------------------------------------------------------------------------------
    def _worker_loop(self) -> None:
        # No per-run Prefect heartbeat thread for short runs (joining it costs up to a second per run).
        with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}), \
                SyncClientContext.get_or_create() as ctx:
            plugin_source.set(self.plugins.lease)
            api = Api(ctx.client)
            while True:
                item = self._work.get()
                if item is None:
                    return
                command, run = item
                self._execute(api, command, run)

    def _export_main(self, command: Command, run: FlowRun) -> None:
        export = self._export
        assert export is not None
        with SyncClientContext.get_or_create() as ctx:
            api = Api(ctx.client)
            started = time.monotonic()
            try:
                export.process = subprocess.Popen(  # noqa: S603
                    [sys.executable, "-m", "pinpoint_agent.service._export_process", str(run.id),
                     str(self.root.path), self.log_format, self.log_level],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                log.info("run started", command=command.name, flow_run=run.name, id=str(run.id),
                         pid=export.process.pid, log=str(self.root.command_log("export")))
                code = export.process.wait()
                log.info("run finished", command=command.name, flow_run=run.name, exit_code=code,
                         ms=round((time.monotonic() - started) * 1000))
                if self.stopping.is_set() and code != 0:
                    api.requeue(run, "the agent stopped during this export: its open sessions were rolled "
                                     "back; it runs again when the agent is back")
                    log.warning("export stopped with the service; it runs again when the service is back",
                                flow_run=run.name)
                elif code != 0:
                    current = api.read(run.id)
                    if current.state is not None and not current.state.is_final():
                        api.fail(run, f"the export process ended with exit code {code}; see "
                                      f"{self.root.command_log('export')}")
            except ApiUnavailable as exc:
                log.error("export lost the Prefect API", flow_run=run.name, error=str(exc))
            except Exception:  # noqa: BLE001 (a bug here must not end the service)
                log.exception("export failed in the service", flow_run=run.name)
            finally:
                with self._inflight_lock:
                    self._inflight.discard(run.id)

    def _stop_export(self, export: _Export, deadline: float) -> None:
        """SIGTERM (again every few seconds: one may land where the flow cannot act on it), SIGKILL last."""
        proc = export.process
        while proc is not None and proc.poll() is None and time.monotonic() < deadline:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(min(5.0, max(deadline - time.monotonic(), 0.1)))
            except subprocess.TimeoutExpired:
                continue
        if proc is not None and proc.poll() is None:
            log.error("the export did not stop in time; killing it (a rerun picks up where it was)")
            proc.kill()
            proc.wait()
        export.thread.join(5)

    def _execute(self, api: Api, command: Command, run: FlowRun) -> None:
        started = time.monotonic()
        try:
            try:
                params = call_parameters(command.flow, run)
            except Exception as exc:  # noqa: BLE001 (parameters that do not fit the flow)
                api.fail(run, f"bad parameters: {exc}")
                log.error("run failed before it started", command=command.name, flow_run=run.name, error=str(exc))
                return
            log.info("run started", command=command.name, flow_run=run.name, id=str(run.id),
                     since_created_ms=round((_now() - run.created).total_seconds() * 1000) if run.created else None)
            state = run_in_process(self._quick_flows[command.name], run, params)
            self._counts["done"] += 1
            log.info("run finished", command=command.name, flow_run=run.name, state=state.name,
                     ms=round((time.monotonic() - started) * 1000))
        except ApiUnavailable as exc:
            log.error("run lost the Prefect API", command=command.name, flow_run=run.name, error=str(exc))
        except Exception:  # noqa: BLE001 (the engine reports flow errors itself; this is a bug here)
            log.exception("run failed in the service", command=command.name, flow_run=run.name)
        finally:
            with self._inflight_lock:
                self._inflight.discard(run.id)

    # -- upkeep -----------------------------------------------------------------------------------------
    def _upkeep_loop(self) -> None:
        next_beat = time.monotonic()
        with SyncClientContext.get_or_create() as ctx:
            api = Api(ctx.client)
            while not self.stopping.wait(min(self.settings.plugin_check_interval, self.settings.heartbeat_interval)):
                try:
                    self.plugins.check()
                    if time.monotonic() >= next_beat:
                        next_beat = time.monotonic() + self.settings.heartbeat_interval
                        self._heartbeat(api)
                except Exception:  # noqa: BLE001
                    log.exception("upkeep failed")
            # (the first heartbeat goes out after one interval; the "service starting" line marks the start)

    def _heartbeat(self, api: Api) -> None:
        export = self._export
        beat = {"at": _now().isoformat(), "host": socket.gethostname(), "pid": os.getpid(), "version": __version__,
                "api_reachable": self._api_down_since is None,
                "export": str(export.run.id) if export and export.thread.is_alive() else None,
                "queued_exports": len(self._waiting_exports), "running": len(self._inflight),
                "warm_plugins": self.plugins.pids(), "event_stream": self.events.live.is_set(),
                "events": self.events.received, **self._counts}
        log.info("heartbeat", **{k: v for k, v in beat.items() if k not in ("at", "host", "version")})
        try:
            api.heartbeat(heartbeat_variable(self.settings.deployment_name), beat)
        except ApiUnavailable as exc:
            log.warning("heartbeat not sent: Prefect API unreachable", error=str(exc))


def serve(root: Path | None, settings: Settings | None = None, *, log_format: str = "text",
          log_level: str = "info") -> int:
    return Service(Root(root), settings, log_format=log_format, log_level=log_level).run()
