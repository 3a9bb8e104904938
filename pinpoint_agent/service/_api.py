"""The service's calls to the Prefect API: serve the deployments, claim and refuse runs, heartbeats.

Every call goes out from the agent (it sits behind the customer's firewall); the Prefect client's own
retries cover short blips, the service loop covers outages. Prefect's HTTP errors are translated here,
and only here, into ``ApiUnavailable``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.actions import VariableCreate, VariableUpdate
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterDeploymentId,
    FlowRunFilterNextScheduledStartTime,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import FlowRun, State, StateType
from prefect.client.schemas.sorting import FlowRunSort
from prefect.exceptions import Abort, ObjectAlreadyExists, ObjectNotFound, PrefectHTTPStatusError
from prefect.states import AwaitingRetry, Cancelled, Crashed, Failed, Pending

from pinpoint_agent.prefect_compat import parameter_schema, propose_state
from pinpoint_agent.service._commands import COMMANDS, Command

DEFAULT_DEPLOYMENT_NAME = "agent"  # deployments are <command>/<name>
HEARTBEAT_VARIABLE = "pinpoint_agent_heartbeat"
PROJECT_DIR = Path(__file__).resolve().parents[2]  # the checkout: where the entrypoints' paths start


def heartbeat_variable(deployment_name: str) -> str:
    """The Prefect variable an agent's heartbeat goes to: ``pinpoint_agent_heartbeat`` for the default
    deployment name, ``pinpoint_agent_heartbeat_<name>`` for another, so agents sharing a Prefect server
    each keep their own (variable names allow lower-case letters, digits and underscores)."""
    if deployment_name == DEFAULT_DEPLOYMENT_NAME:
        return HEARTBEAT_VARIABLE
    return f"{HEARTBEAT_VARIABLE}_{re.sub(r'[^a-z0-9_]', '_', deployment_name.lower())}"


class ApiUnavailable(Exception):  # noqa: N818 (a condition the loop waits out, not a bug)
    """The Prefect API did not answer (down, restarting, unreachable, 5xx)."""


def translate(exc: BaseException) -> BaseException:
    if isinstance(exc, httpx.HTTPError | OSError):
        return ApiUnavailable(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, PrefectHTTPStatusError) and exc.response.status_code >= 500:
        return ApiUnavailable(f"HTTP {exc.response.status_code} from {exc.request.url}")
    return exc


class Api:
    def __init__(self, client: SyncPrefectClient) -> None:
        self.client = client

    def _do(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (httpx.HTTPError, OSError, PrefectHTTPStatusError) as exc:
            raise translate(exc) from exc

    def register(self, deployment_name: str, root: Path) -> dict[UUID, Command]:
        """Creates (or updates) one deployment per command; returns them by deployment id."""
        served: dict[UUID, Command] = {}
        for command in COMMANDS.values():
            flow_id = self._do(self.client.create_flow_from_name, command.name)
            deployment_id = self._do(
                self.client.create_deployment, flow_id=flow_id, name=deployment_name, entrypoint=command.entrypoint,
                path=str(PROJECT_DIR), parameter_openapi_schema=parameter_schema(command.flow).model_dump_for_openapi(),
                parameters={"pinpoint_root": str(root)}, tags=["pinpoint-agent"],
                description=f"{command.flow.description or command.name} Served by `pinpoint-agent run`: requests "
                            f"older than {command.max_age:g}s are refused" +
                            ("." if command.interactive else "; one export runs at a time, the others wait."),
                concurrency_limit=None if command.interactive else 1, paused=False)
            served[deployment_id] = command
        return served

    def scheduled(self, deployment_ids: list[UUID]) -> list[FlowRun]:
        """Runs of these deployments that are Scheduled and due, oldest first. A read-only query: Prefect's
        ``get_scheduled_flow_runs`` also writes (marks the deployments polled), which at 10 polls a second
        makes a SQLite server answer "database is locked"; ``mark_ready`` does that now and then."""
        runs: list[FlowRun] = self._do(
            self.client.read_flow_runs,
            flow_run_filter=FlowRunFilter(
                deployment_id=FlowRunFilterDeploymentId(any_=deployment_ids),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])),
                next_scheduled_start_time=FlowRunFilterNextScheduledStartTime(before_=now())),  # type: ignore[arg-type]
            sort=FlowRunSort.EXPECTED_START_TIME_ASC, limit=50)
        return runs

    def due(self, flow_run_ids: list[UUID]) -> list[FlowRun]:
        """Those of these runs (announced by events) that are still Scheduled and due; one read by id each."""
        runs = []
        for flow_run_id in flow_run_ids:
            try:
                run = self.read(flow_run_id)
            except ObjectNotFound:
                continue
            start = run.next_scheduled_start_time or run.expected_start_time
            if run.state is not None and run.state.is_scheduled() and (start is None or start <= now()):
                runs.append(run)
        return runs

    def crash_abandoned(self, deployment_ids: list[UUID], message: str) -> list[FlowRun]:
        """Runs of these deployments left Pending or Running (by a service that was killed): Crashed."""
        runs: list[FlowRun] = self._do(
            self.client.read_flow_runs,
            flow_run_filter=FlowRunFilter(
                deployment_id=FlowRunFilterDeploymentId(any_=deployment_ids),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PENDING, StateType.RUNNING]))),
            limit=200)
        for run in runs:
            self._propose(Crashed(message=message), run.id, force=True)
        return runs

    def mark_ready(self, deployment_ids: list[UUID]) -> bool:
        """Marks the deployments polled (the UI shows them Ready), as a runner's poll does; False when they
        are gone (a server restarted with a new database): the service registers them again."""
        try:
            self._do(self.client.read_deployment, deployment_ids[0])
        except ObjectNotFound:
            return False
        self._do(self.client.get_scheduled_flow_runs_for_deployments, deployment_ids=deployment_ids,
                 scheduled_before=now(), limit=1)
        return True

    def read(self, flow_run_id: UUID) -> FlowRun:
        run: FlowRun = self._do(self.client.read_flow_run, flow_run_id)
        return run

    def _propose(self, state: State, flow_run_id: UUID, *, force: bool = False) -> State | None:
        """The state the server settled on, or None when it refused the transition."""
        try:
            result: State = self._do(propose_state, self.client, state, flow_run_id, force=force)
            return result
        except Abort:
            return None

    def claim(self, run: FlowRun) -> bool:
        """Scheduled → Pending, as Prefect's runner claims a run; False when the server refuses (for an
        export: the deployment's concurrency slot is taken; the run stays queued)."""
        state = self._propose(Pending(), run.id)
        return state is not None and state.is_pending()

    def refuse(self, run: FlowRun, message: str) -> None:
        self._propose(Cancelled(message=message), run.id)

    def fail(self, run: FlowRun, message: str) -> None:
        self._propose(Failed(message=message), run.id)

    def requeue(self, run: FlowRun, message: str) -> None:
        """Back to Scheduled (Prefect's AwaitingRetry), unless the run ended after all."""
        current = self.read(run.id)
        if current.state is None or not current.state.is_completed():
            self._propose(AwaitingRetry(scheduled_time=now(), message=message), run.id, force=True)

    def tag(self, run: FlowRun, tag: str) -> None:
        if tag not in run.tags:
            self._do(self.client.update_flow_run, run.id, tags=[*run.tags, tag])
            run.tags.append(tag)

    def heartbeat(self, variable: str, value: dict[str, Any]) -> None:
        try:
            self._do(self.client.create_variable, VariableCreate(name=variable, value=value))
        except ObjectAlreadyExists:
            self._do(self.client.update_variable, VariableUpdate(name=variable, value=value))


def now() -> datetime:
    return datetime.now(UTC)
