"""Runs an interactive flow run the service claimed, in this process, with Prefect's own flow engine.

The run keeps everything a Prefect run has (states, logs, artifacts in the UI); what differs from a worker
is only where it runs: in a thread of the service instead of a new process (a process start and the flow's
imports cost seconds; a warm plugin would be lost with the process). Exports run in a process of their
own (``_export_process``): they are long, and SIGTERM must be able to stop one cleanly.

Interactive runs use ``QuickEngine``: Prefect's ``FlowRunEngine`` without the suspension watcher, which
opens an events websocket and a thread per run (about 0.3 s) to notice ``suspend_flow_run`` calls; these
flows never suspend. Pinned to Prefect 3.9.1 (``FlowRunEngine`` is public but its hooks are not promised).
"""

from __future__ import annotations

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


def run_in_process(flow: Flow[..., Any], flow_run: FlowRun, parameters: dict[str, Any]) -> State:
    """Runs ``flow_run`` to a final state (as ``prefect.flow_engine.run_flow`` does) and returns it."""
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
