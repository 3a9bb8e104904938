"""What the CLI commands do, before and around their flows: validate inputs (nothing is written for bad
input), prepare the root and logs, make sure a Prefect API is there, then run the flow in-process."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import structlog

from pinpoint_agent.config import load_agent_config, load_integrations
from pinpoint_agent.errors import ConfigError
from pinpoint_agent.host import resolve_command
from pinpoint_agent.interactive import parse_mutation, parse_webhook, single_integration
from pinpoint_agent.log import register_config_secrets, register_secret, setup
from pinpoint_agent.protocol import IntegrationConfig, OnboardObjectType
from pinpoint_agent.resident import refresh_prefect_settings
from pinpoint_agent.root import Root
from pinpoint_agent.secretref import hide
from pinpoint_agent.state import StateStore

# Prefect's own console lines (with task tracebacks) stay off the terminal; its logs still reach the API and
# the UI. What the user reads are the agent's lines and the one-line errors.
PREFECT_CONSOLE = {"PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL"}


def _prefect(root: Root) -> None:
    """Prefect settings for a one-shot command, then the root's reusable local server (or PREFECT_API_URL)."""
    from pinpoint_agent.prefect_server import ensure_api

    for k, v in PREFECT_CONSOLE.items():
        os.environ.setdefault(k, v)
    api = ensure_api(root.prefect_home)
    refresh_prefect_settings()  # in a resident runner's worker Prefect was imported before these were set
    structlog.get_logger(__name__).info("prefect", ui=api.removesuffix("/api"))


def run_export(agent_json: str | None, agent_file: Path | None, integrations_json: str | None,
               integrations_file: Path | None, *, reprocess_historical: bool, pinpoint_root: Path | None,
               integrations_dir: Path | None, log_format: str, log_level: str,
               output_file: Path | None) -> dict[str, Any]:
    args = CommandArgs(agent_json, agent_file, integrations_json, integrations_file, pinpoint_root,
                       integrations_dir, log_format, log_level, output_file)
    root, params = _params(args, lambda entries: entries)
    _check_backend(root, args)
    # The root is cleaned (temp/, half-written output) by the flow once it holds the export lock.
    _start("export", root, args)
    from flows.export import export
    from pinpoint_agent.display import progress_display

    with progress_display(enabled=log_format == "text" and sys.stderr.isatty()):
        result: dict[str, Any] = export(**params, reprocess_historical=reprocess_historical)
    return result


def _check_backend(root: Root, args: CommandArgs) -> None:
    """Half a backend in the agent config or an unusable config.json: exit 1 before anything runs."""
    from pinpoint_agent.exporter import backend_target

    backend_target(root, load_agent_config(args.agent_json, args.agent_file))


def run_enroll(code: str, backend_url: str, pinpoint_root: Path | None) -> str:
    """Trades a one-time enroll code for ``<root>/config.json`` (0600); returns the line to print.
    Secrets the backend sends with it go to ``<root>/secrets.json``, encrypted with the new local key."""
    import httpx

    from pinpoint_agent.backend import enroll, make_client

    root = Root(pinpoint_root)
    setup("enroll", None, level="error", stream=sys.stderr)
    try:
        with make_client(timeout=httpx.Timeout(30.0, connect=10.0)) as client:
            config = enroll(code, backend_url=backend_url, root=root.path, client=client)
    except OSError as exc:
        raise ConfigError(f"cannot write the agent config under {root.path}: {exc.strerror or exc}") from exc
    return (f"enrolled as device {config.device_id} of customer {config.customer_id} "
            f"(channel {config.channel}); config written to {root.config_file}")


def forget_integration(integration: str, pinpoint_root: Path | None) -> int:
    root = Root(pinpoint_root)
    if not (root.path / "state" / "state.db").exists():
        raise ConfigError(f"no state in {root.path}: nothing to drop")
    key = integration if "@" in integration else f"{integration}@SOURCECODE"
    state = StateStore.open_root(root)
    try:
        return state.forget(key)
    finally:
        state.close()


# -- interactive commands (validate-config, export-onboard-data, mutate, webhook) ----------------------
@dataclass
class CommandArgs:
    """The parameters every hidden command takes, as the CLI received them."""

    agent_json: str | None
    agent_file: Path | None
    integrations_json: str | None
    integrations_file: Path | None
    pinpoint_root: Path | None
    integrations_dir: Path | None
    log_format: str
    log_level: str
    output_file: Path | None


def _params(args: CommandArgs, choose: Callable[[list[IntegrationConfig]], list[IntegrationConfig]]
            ) -> tuple[Root, dict[str, Any]]:
    """Checks the common inputs (nothing is written yet) and returns the root and the flow's parameters,
    with every secret replaced by a reference (flow parameters are stored in Prefect)."""
    agent = load_agent_config(args.agent_json, args.agent_file)
    entries = choose(load_integrations(args.integrations_json, args.integrations_file))
    if args.log_format not in ("text", "json"):
        raise ConfigError(f"--log-format must be text or json, not {args.log_format!r}")
    root = Root(args.pinpoint_root)
    idir = args.integrations_dir or root.path / "integrations"
    for entry in entries:
        resolve_command(entry.name, idir)  # unknown integration or missing binary: exit before writing anything
        register_config_secrets(entry.config)
        register_secret(entry.refresh_token)
    register_secret(agent.api_key.get_secret_value())
    if args.output_file is not None and not args.output_file.parent.is_dir():
        raise ConfigError(f"--output-file: folder {args.output_file.parent} does not exist")
    integrations = [{"id": e.id, "name": e.name, "type": int(e.type),
                     "config": {**e.config, **({"refresh_token": e.refresh_token} if e.refresh_token else {})}}
                    for e in entries]
    return root, {
        "integrations": hide(integrations),
        "agent_config": hide(agent.model_dump(mode="json") | {"api_key": agent.api_key.get_secret_value(),
                                                              "state_url": agent.state_url.get_secret_value()}),
        "pinpoint_root": str(root.path), "integrations_dir": str(idir)}


def _interactive_params(command: str, args: CommandArgs) -> tuple[Root, dict[str, Any]]:
    return _params(args, lambda entries: [single_integration(entries, command)])


def _start(command: str, root: Root, args: CommandArgs) -> None:
    """Root folders, the command's log and the Prefect API. Unlike ``Root.prepare`` this leaves ``temp/`` and
    export output alone: an interactive command may run beside an export on the same root."""
    try:
        for d in (root.logs / "integrations", root.temp):
            d.mkdir(parents=True, exist_ok=True)
        probe = root.path / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"cannot use {root.path} as the agent root: {exc.strerror or exc}") from exc
    setup(command, root.logs, fmt=args.log_format, level=args.log_level,
          stream=sys.stdout if args.output_file is not None else sys.stderr)
    _prefect(root)


@contextmanager
def _short_run() -> Iterator[None]:
    """An interactive command's flow run without Prefect's heartbeat thread: it lasts seconds, and the
    thread costs it the opening of an events connection at start and up to a second at the end."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def run_validate_config(args: CommandArgs) -> dict[str, Any]:
    root, params = _interactive_params("validate-config", args)
    _start("validate-config", root, args)
    from flows.validate_config import validate_config

    with _short_run():
        result: dict[str, Any] = validate_config(**params)
    return result


def run_export_onboard_data(args: CommandArgs, object_type: str) -> dict[str, Any]:
    kind = OnboardObjectType.parse(object_type)
    root, params = _interactive_params("export-onboard-data", args)
    _start("export-onboard-data", root, args)
    from flows.onboard import export_onboard_data

    with _short_run():
        result: dict[str, Any] = export_onboard_data(**params, object_type=kind.name.lower())
    return result


def run_mutate(args: CommandArgs, mutation: str) -> dict[str, Any]:
    change = parse_mutation(mutation)
    root, params = _interactive_params("mutate", args)
    _start("mutate", root, args)
    from flows.mutate import mutate

    with _short_run():
        result: dict[str, Any] = mutate(**params, mutation={"fn": change.fn, "data": change.data})
    return result


def run_webhook(args: CommandArgs, data: str) -> dict[str, Any]:
    delivery = parse_webhook(data)
    root, params = _interactive_params("webhook", args)
    _start("webhook", root, args)
    from flows.webhook import webhook

    raw = orjson.loads(data)  # checked by parse_webhook; the flow takes the delivery as the backend sent it
    with _short_run():
        result: dict[str, Any] = webhook(**params, data={"headers": delivery.headers, "body": raw["body"]})
    return result


# -- the service --------------------------------------------------------------------------------------
def run_service(pinpoint_root: Path | None, *, log_format: str, log_level: str) -> int:
    """``run``: logs to ``<root>/logs/run``, the Prefect API (PREFECT_API_URL or the root's local server),
    then the service until SIGTERM."""
    if log_format not in ("text", "json"):
        raise ConfigError(f"--log-format must be text or json, not {log_format!r}")
    root = Root(pinpoint_root)
    _start("run", root, CommandArgs(None, None, None, None, pinpoint_root, None, log_format, log_level, None))
    from pinpoint_agent.service._service import serve

    return serve(root.path, log_format=log_format, log_level=log_level)
