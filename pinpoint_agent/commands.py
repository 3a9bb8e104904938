"""What the CLI commands do around their flows: parse and check every input (a bad one is one line and
exit 1, before anything is written or started), prepare the root and logs, make sure a Prefect API is there,
hand the flow references to the inputs (never the credentials themselves) and run it in this process."""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from pinpoint_agent.config import (
    AgentConfig,
    IntegrationEntry,
    backend_name,
    load_agent_config,
    load_entries,
    parse_delivery,
    parse_mutation,
)
from pinpoint_agent.errors import ConfigError
from pinpoint_agent.host import resolve_command
from pinpoint_agent.interactive import single_integration
from pinpoint_agent.log import register_secret, setup
from pinpoint_agent.prefect_server import idle_stop_seconds
from pinpoint_agent.protocol import OnboardObjectType
from pinpoint_agent.root import Root
from pinpoint_agent.secrets import RunSecrets, is_ref, mask_config, mask_headers
from pinpoint_agent.state import state_url
from pinpoint_agent.stores import open_state

LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")
# Prefect's own console lines (with task tracebacks) stay off the terminal; its logs still reach the API and
# the UI. What the user reads are the agent's lines and the one-line errors.
PREFECT_CONSOLE = {"PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL"}


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


@dataclass
class Inputs:
    """A command's inputs, parsed and checked."""

    root: Root
    agent: AgentConfig
    entries: list[IntegrationEntry]
    integrations_dir: Path


# -- checks (nothing is written or started before they pass) ------------------------------------------
def check_logging(log_format: str, log_level: str) -> None:
    if log_format not in LOG_FORMATS:
        raise ConfigError(f"--log-format must be text or json, not {log_format!r}")
    if log_level.lower() not in LOG_LEVELS:
        raise ConfigError(f"--log-level must be one of {', '.join(LOG_LEVELS)}, not {log_level!r}")


def check_output_file(path: Path | None) -> None:
    """The result file can be written: its folder exists and is writable, and it is not a folder itself."""
    if path is None:
        return
    if path.is_dir():
        raise ConfigError(f"--output-file {path} is a folder; name a file")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ConfigError(f"--output-file: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ConfigError(f"--output-file {path} cannot be written (permission denied)")


def check_state(root: Root, url: str = "") -> None:
    """A state store that SQLite cannot read is one clear line with the way out, not errors in a result
    (a PostgreSQL store checks itself when it opens)."""
    path = root.path / "state" / "state.db"
    if state_url(url) or not path.exists():
        return
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60)
        try:
            verdict = db.execute("PRAGMA quick_check(1)").fetchone()[0]
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        verdict = str(exc)
    if verdict != "ok":
        verdict = " ".join(str(verdict).replace("*", "").split())[:120]
        raise ConfigError(f"the state store {path} is corrupt ({verdict}); move it aside "
                          f"(mv {path} {path}.corrupt) and the next export rebuilds it from scratch (historical)")


def _inputs(args: CommandArgs, *, single: str | None = None) -> Inputs:
    check_logging(args.log_format, args.log_level)
    agent = load_agent_config(args.agent_json, args.agent_file)
    register_secret(agent.api_key.get_secret_value())
    entries = load_entries(args.integrations_json, args.integrations_file)
    for entry in entries:
        if isinstance(entry.config, dict):
            mask_config(entry.config)
        elif not is_ref(entry.config):
            raise ConfigError(f"integration {entry.name}: config must be a JSON object or a secret-store: "
                              "reference")
    if single is not None:
        single_integration(entries, single)
    check_output_file(args.output_file)
    idle_stop_seconds()  # a bad PINPOINT_PREFECT_IDLE_STOP is refused before a server is started with it
    root = Root(args.pinpoint_root)
    idir = args.integrations_dir or root.path / "integrations"
    for entry in entries:  # unknown integration or missing binary: refused before anything is written
        resolve_command(backend_name(entry.name, entry.config if isinstance(entry.config, dict) else {}), idir)
    return Inputs(root, agent, entries, idir)


def _start(command: str, root: Root, log_format: str, log_level: str, output_file: Path | None) -> None:
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
    setup(command, root.logs, fmt=log_format, level=log_level.lower(),
          stream=sys.stdout if output_file is not None else sys.stderr)
    from pinpoint_agent.prefect_server import ensure_api

    for k, v in PREFECT_CONSOLE.items():
        os.environ.setdefault(k, v)
    api = ensure_api(root.prefect_home)
    structlog.get_logger(__name__).info("prefect", ui=api.removesuffix("/api"))


def _params(inputs: Inputs, run: RunSecrets) -> dict[str, Any]:
    """The flow's parameters: configs as references to the store, never as given."""
    return {"integrations": run.integrations(inputs.entries), "agent_config": run.agent(inputs.agent),
            "pinpoint_root": str(inputs.root.path), "integrations_dir": str(inputs.integrations_dir)}


@contextmanager
def _short_run() -> Iterator[None]:
    """An interactive command's flow run without Prefect's heartbeat thread: it lasts seconds, and the
    thread costs it the opening of an events connection at start and up to a second at the end."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


# -- the commands ----------------------------------------------------------------------------------------
def run_export(args: CommandArgs, *, reprocess_historical: bool) -> dict[str, Any]:
    inputs = _inputs(args)
    from pinpoint_agent.exporter import backend_target

    backend_target(inputs.root, inputs.agent)  # half a backend config or an unusable config.json: refused now
    check_state(inputs.root, inputs.agent.state_url.get_secret_value())
    # The root is cleaned (temp/, half-written output) by the flow once it holds the export lock.
    _start("export", inputs.root, args.log_format, args.log_level, args.output_file)
    from flows.export import export
    from pinpoint_agent.display import progress_display

    with RunSecrets(inputs.root.path) as run, \
            progress_display(enabled=args.log_format == "text" and sys.stderr.isatty()):
        result: dict[str, Any] = export(**_params(inputs, run), reprocess_historical=reprocess_historical)
    return result


def run_validate_config(args: CommandArgs) -> dict[str, Any]:
    inputs = _inputs(args, single="validate-config")
    _start("validate-config", inputs.root, args.log_format, args.log_level, args.output_file)
    from flows.validate_config import validate_config

    with RunSecrets(inputs.root.path) as run, _short_run():
        result: dict[str, Any] = validate_config(**_params(inputs, run))
    return result


def run_export_onboard_data(args: CommandArgs, object_type: str) -> dict[str, Any]:
    kind = OnboardObjectType.parse(object_type)
    inputs = _inputs(args, single="export-onboard-data")
    _start("export-onboard-data", inputs.root, args.log_format, args.log_level, args.output_file)
    from flows.onboard import export_onboard_data

    with RunSecrets(inputs.root.path) as run, _short_run():
        result: dict[str, Any] = export_onboard_data(**_params(inputs, run), object_type=kind.name.lower())
    return result


def run_mutate(args: CommandArgs, mutation: str) -> dict[str, Any]:
    change = parse_mutation(mutation)
    inputs = _inputs(args, single="mutate")
    _start("mutate", inputs.root, args.log_format, args.log_level, args.output_file)
    from flows.mutate import mutate

    with RunSecrets(inputs.root.path) as run, _short_run():
        result: dict[str, Any] = mutate(**_params(inputs, run), mutation=change)
    return result


def run_webhook(args: CommandArgs, data: str) -> dict[str, Any]:
    delivery = parse_delivery(data)
    inputs = _inputs(args, single="webhook")
    _start("webhook", inputs.root, args.log_format, args.log_level, args.output_file)
    from flows.webhook import webhook

    mask_headers(delivery.headers)
    with RunSecrets(inputs.root.path) as run, _short_run():  # headers may hold the hook's secret: stored too
        result: dict[str, Any] = webhook(**_params(inputs, run), data=run.put("delivery", delivery.model_dump()))
    return result


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
    if not state_url():  # the root's SQLite store ($PINPOINT_STATE_URL names a shared one)
        if not (root.path / "state" / "state.db").exists():
            raise ConfigError(f"no state in {root.path}: nothing to drop")
        check_state(root)
    key = integration if "@" in integration else f"{integration}@SOURCECODE"
    state = open_state(root)
    try:
        return state.forget(key)
    finally:
        state.close()


def run_service(pinpoint_root: Path | None, *, log_format: str, log_level: str) -> int:
    """``run``: logs to ``<root>/logs/run``, the Prefect API (PREFECT_API_URL or the root's local server),
    then the service until SIGTERM."""
    check_logging(log_format, log_level)
    idle_stop_seconds()
    root = Root(pinpoint_root)
    _start("run", root, log_format, log_level, None)
    from pinpoint_agent.service._service import serve

    return serve(root.path, log_format=log_format, log_level=log_level.lower())
