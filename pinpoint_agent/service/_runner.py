"""Runs a flow run the service claimed, in this process, with Prefect's own flow engine.

The run keeps everything a Prefect run has (states, logs, artifacts, task runs in the UI); what differs
from a worker is only where it runs: in a thread of the service instead of a new process (a process
start and the flow's imports cost seconds; a warm plugin would be lost with the process).

Interactive runs use ``QuickEngine``: Prefect's ``FlowRunEngine`` without the suspension watcher, which
opens an events websocket and a thread per run (about 0.3 s) to notice ``suspend_flow_run`` calls; these
flows never suspend. Pinned to Prefect 3.9.1 (``FlowRunEngine`` is public but its hooks are not promised).
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prefect import Flow
from prefect._flow_run_suspension import register_flow_run_suspension_request
from prefect.client.schemas.objects import FlowRun, State
from prefect.flow_engine import FlowRunEngine
from prefect.utilities.callables import get_call_parameters, parameters_to_args_kwargs


class QuickEngine(FlowRunEngine[Any, Any]):
    @contextmanager
    def setup_flow_run_suspension_request(self) -> Iterator[Any]:
        assert self.flow_run is not None
        request = self._get_flow_run_suspension_request()
        with register_flow_run_suspension_request(self.flow_run.id, request):
            yield request


def run_in_process(flow: Flow[..., Any], flow_run: FlowRun, parameters: dict[str, Any], *,
                   quick: bool) -> State:
    """Runs ``flow_run`` to a final state (as ``prefect.flow_engine.run_flow`` does) and returns it."""
    engine_type = QuickEngine if quick else FlowRunEngine
    engine = engine_type(flow=flow, flow_run=flow_run, parameters=parameters)
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


class ServiceStopping(BaseException):  # noqa: N818 (a signal, like KeyboardInterrupt)
    """Raised inside a running export when the service stops: its sessions roll back, it runs again later."""


def interrupt(thread: threading.Thread) -> bool:
    """Raises ``ServiceStopping`` in ``thread`` at its next Python instruction (Prefect's own timeouts
    interrupt flows in threads the same way). The export flow then cancels its integrations."""
    if thread.ident is None or not thread.is_alive():
        return False
    n = ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(ServiceStopping))
    return bool(n == 1)
