"""Every use of Prefect beyond its public API, in one module, checked against the pinned version at import.

A Prefect upgrade means: read this module against the new release, adjust, and move ``TESTED_WITH``. With
another version installed, importing this module fails with one line that says so (set
``PINPOINT_PREFECT_UNCHECKED=1`` to try anyway).

- ``run_in_process``: the ``run`` service runs an interactive flow run it claimed in one of its threads, with
  Prefect's own flow engine (the run keeps its states, logs and artifacts; a warm plugin would be lost with a
  process per run). ``QuickEngine`` is ``FlowRunEngine`` without the suspension watcher, which opens an events
  websocket and a thread per run (about 0.3 s) to notice ``suspend_flow_run`` calls these flows never make,
  and without two API round trips (``_LeanClient``). ``FlowRunEngine`` is public; its hooks are not promised.
- ``run_claimed``: an export flow run the service claimed, in a process of its own (``run_flow``).
- ``propose_state``, ``parameter_schema``, ``call_parameters``: engine and callable helpers the service needs
  to claim runs and register deployments as Prefect's runner does.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

import prefect
from prefect import Flow
from prefect._flow_run_suspension import register_flow_run_suspension_request
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.objects import FlowRun, State
from prefect.flow_engine import FlowRunEngine, run_flow
from prefect.utilities.callables import get_call_parameters, parameter_schema, parameters_to_args_kwargs
from prefect.utilities.engine import propose_state_sync

from pinpoint_agent.errors import FatalError

TESTED_WITH = "3.9."  # the Prefect release line this module was read against

if not prefect.__version__.startswith(TESTED_WITH) and os.environ.get("PINPOINT_PREFECT_UNCHECKED") != "1":
    raise FatalError(f"pinpoint-agent was checked with Prefect {TESTED_WITH}x but Prefect {prefect.__version__} "
                     "is installed: install the pinned version (scripts/bootstrap does), or review "
                     "pinpoint_agent/prefect_compat.py for the new one (PINPOINT_PREFECT_UNCHECKED=1 tries anyway)")

__all__ = ["QuickEngine", "call_parameters", "parameter_schema", "propose_state", "quick_flow", "run_claimed",
           "run_in_process"]


class _LeanClient(SyncPrefectClient):
    """The engine's client without two round trips that change nothing for these flows: updating the run's
    flow version and retry policy (they declare no retries) and re-reading the run right after the engine
    moved it to Running (the engine holds that state already). A shallow copy of the thread's client: same
    connection pool, every other call unchanged."""

    _engine: QuickEngine

    def update_flow_run(self, flow_run_id: UUID, **kwargs: Any) -> Any:  # type: ignore[override]
        run = self._engine.flow_run
        if run is not None and flow_run_id == run.id and set(kwargs) <= {"flow_version", "empirical_policy"}:
            return None
        return super().update_flow_run(flow_run_id, **kwargs)

    def read_flow_run(self, flow_run_id: UUID) -> FlowRun:
        run = self._engine.flow_run
        if run is not None and flow_run_id == run.id and run.state is not None and run.state.is_running():
            return run
        return super().read_flow_run(flow_run_id)


class QuickEngine(FlowRunEngine[Any, Any]):
    """``FlowRunEngine`` minus the suspension watcher and two API calls (``_LeanClient``)."""

    _lean: _LeanClient | None = None

    @property
    def client(self) -> SyncPrefectClient:
        client = super().client
        if self._lean is None or self._lean.__dict__.get("_base") is not client:
            lean = copy.copy(client)
            lean.__class__ = _LeanClient
            lean.__dict__["_base"] = client
            lean._engine = self  # type: ignore[attr-defined]
            self._lean = lean  # type: ignore[assignment]
        return self._lean  # type: ignore[return-value]

    @contextmanager
    def setup_flow_run_suspension_request(self) -> Iterator[Any]:
        assert self.flow_run is not None
        request = self._get_flow_run_suspension_request()
        with register_flow_run_suspension_request(self.flow_run.id, request):
            yield request


def run_in_process(flow: Flow[..., Any], flow_run: FlowRun, parameters: dict[str, Any]) -> State:
    """Runs ``flow_run`` to a final state (as ``prefect.flow_engine.run_flow`` does) and returns it.

    ``flow`` should come from ``quick_flow``."""
    engine = QuickEngine(flow=flow, flow_run=flow_run, parameters=parameters)
    with engine.start():
        while engine.is_running():
            with engine.run_context():
                engine.call_flow_fn()
    return engine.state


def call_parameters(flow: Flow[..., Any], flow_run: FlowRun) -> dict[str, Any]:
    """The run's parameters with the flow's defaults (as ``prefect.flow_engine.run_flow`` computes them)."""
    args, kwargs = parameters_to_args_kwargs(flow.fn, dict(flow_run.parameters))
    params: dict[str, Any] = get_call_parameters(flow.fn, args, kwargs)
    return params


def quick_flow(flow: Flow[..., Any], scratch: Path) -> Flow[..., Any]:
    """``flow`` with a result storage of its own: without one, Prefect asks the server for its default
    storage at the start of every run (a round trip) though these flows persist no results. ``scratch``
    is a directory of the root; nothing is written there unless a task asks to persist its result."""
    quick: Flow[..., Any] = flow.with_options(result_storage=scratch)
    return quick


def run_claimed(flow: Flow[..., Any], flow_run: FlowRun) -> State:
    """Runs a claimed flow run to a final state with Prefect's engine (SIGTERM ends it as Crashed)."""
    state: State = run_flow(flow, flow_run=flow_run, return_type="state")  # type: ignore[assignment]
    return state


def propose_state(client: SyncPrefectClient, state: State, flow_run_id: UUID, *, force: bool = False) -> State:
    """Proposes ``state`` for a flow run as Prefect's engine does (raises ``prefect.exceptions.Abort`` when the
    server refuses the transition)."""
    result: State = propose_state_sync(client, state, flow_run_id=flow_run_id, force=force)
    return result
