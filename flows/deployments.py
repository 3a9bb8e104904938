"""The command flows as deployments: what ``pinpoint-agent run`` serves and what ``prefect.yaml`` deploys.

Each deployable flow is its command's flow plus one last step: the result JSON is published as a Prefect
artifact of type ``result`` on the flow run, *before* the run turns Completed, so a backend that sees the
run completed can always read the result through the API (the agent's files are out of its reach)::

    POST /api/artifacts/filter {"artifacts": {"flow_run_id": {"any_": ["<id>"]}, "type": {"any_": ["result"]}}}
    -> [{"data": <the result JSON>, ...}]

The interactive commands (validate-config, export-onboard-data, mutate, webhook) take their plugin from
``plugin_source``: by default a plugin process per run, started and reaped as the CLI does; the ``run``
service sets a source of warm plugins for its worker threads. Their bodies repeat the three lines of the
command flows in ``flows/`` (parse the input, find the target, call ``pinpoint_agent.interactive``) because
those flows start their own plugin; the service tests compare both paths' results.

Secrets: parameters may name secrets of the agent's encrypted store (``"secret-store:<name>"``), resolved
here in the flow run's process (``pinpoint_agent.service._store_refs``), so Prefect never stores a token.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from prefect import Flow
from prefect.context import FlowRunContext

from flows.export import export as export_flow
from flows.mutate import mutate as mutate_flow
from flows.onboard import export_onboard_data as onboard_flow
from flows.validate_config import validate_config as validate_config_flow
from flows.webhook import webhook as webhook_flow
from pinpoint_agent import interactive
from pinpoint_agent.host import IntegrationHost
from pinpoint_agent.protocol import OnboardObjectType
from pinpoint_agent.root import Root
from pinpoint_agent.service import _store_refs as store_refs

RESULT_ARTIFACT_TYPE = "result"

# A source of plugin processes: given the target, a context that yields a running host.
PluginSource = Callable[[interactive.Target], AbstractContextManager[IntegrationHost | None]]


@contextmanager
def _per_run(target: interactive.Target) -> Iterator[IntegrationHost | None]:
    yield None  # interactive.* starts the plugin and reaps it at the end


plugin_source: contextvars.ContextVar[PluginSource] = contextvars.ContextVar("plugin_source", default=_per_run)


def publish_result(command: str, result: Any) -> None:
    """The result JSON as an artifact of the current flow run (the backend reads it from there)."""
    ctx = FlowRunContext.get()
    if ctx is None or ctx.flow_run is None:  # called outside a flow run (a plain function call in a test)
        return
    from prefect.client.schemas.actions import ArtifactCreate

    ctx.client.create_artifact(ArtifactCreate(
        key=f"{command}-result", type=RESULT_ARTIFACT_TYPE, data=orjson.loads(orjson.dumps(result)),
        description=f"The result JSON of {command}", flow_run_id=ctx.flow_run.id))


def _deployable(original: Flow[..., Any], body: Callable[..., dict[str, Any]] | None = None) -> Flow[..., Any]:
    """``original`` (or ``body`` with its signature) followed by ``publish_result``; same name and options."""
    signature = inspect.signature(original.fn)

    @functools.wraps(original.fn)
    def deployable(*args: Any, **kwargs: Any) -> dict[str, Any]:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        params = store_refs.resolve(bound.arguments, Root(bound.arguments.get("pinpoint_root")).path)
        result: dict[str, Any] = (body or original.fn)(**params)
        publish_result(original.name, result)
        return result

    return Flow(fn=deployable, name=original.name, description=original.description,
                flow_run_name=original.flow_run_name, task_runner=original.task_runner,
                log_prints=original.log_prints, validate_parameters=original.should_validate_parameters,
                persist_result=False)  # the result is the artifact; no lookup of a result storage per run


def _interactive(command: str, original: Flow[..., Any],
                 call: Callable[[interactive.Target, dict[str, Any]], dict[str, Any]]) -> Flow[..., Any]:
    def body(**params: Any) -> dict[str, Any]:
        target = interactive.target_from_params(command, params["integrations"], params.get("agent_config"),
                                                params.get("pinpoint_root"), params.get("integrations_dir"))
        with plugin_source.get()(target) as host:
            target.host = host
            return call(target, params)

    return _deployable(original, body)


export = _deployable(export_flow)
validate_config = _interactive("validate-config", validate_config_flow,
                               lambda t, p: interactive.validate_config(t))
export_onboard_data = _interactive(
    "export-onboard-data", onboard_flow,
    lambda t, p: interactive.export_onboard_data(t, OnboardObjectType.parse(p["object_type"])))
mutate = _interactive(
    "mutate", mutate_flow,
    lambda t, p: interactive.mutate(t, interactive.parse_mutation(orjson.dumps(p["mutation"]).decode())))
webhook = _interactive(
    "webhook", webhook_flow,
    lambda t, p: interactive.webhook(t, interactive.parse_webhook(orjson.dumps(p["data"]).decode())))


@dataclass(frozen=True)
class Command:
    """One backend command as the service serves it."""

    flow: Flow[..., Any]
    entrypoint: str  # for prefect.yaml and workers: path:attribute of the deployable flow
    max_age: float  # seconds: a request older than this when the agent first sees it is refused
    interactive: bool  # runs at once, beside others, on a warm plugin (else: one at a time, queued)

    @property
    def name(self) -> str:
        return self.flow.name


COMMANDS: dict[str, Command] = {c.name: c for c in (
    Command(export, "flows/deployments.py:export", max_age=300.0, interactive=False),
    Command(validate_config, "flows/deployments.py:validate_config", max_age=300.0, interactive=True),
    Command(export_onboard_data, "flows/deployments.py:export_onboard_data", max_age=300.0, interactive=True),
    Command(mutate, "flows/deployments.py:mutate", max_age=15.0, interactive=True),
    Command(webhook, "flows/deployments.py:webhook", max_age=300.0, interactive=True),
)}
