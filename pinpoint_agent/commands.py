"""What the CLI commands do, before and around their flows: validate inputs (nothing is written for bad
input), prepare the root and logs, make sure a Prefect API is there, then run the flow in-process."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from pinpoint_agent.config import load_agent_config, load_integrations
from pinpoint_agent.errors import ConfigError
from pinpoint_agent.host import resolve_command
from pinpoint_agent.log import register_config_secrets, register_secret, setup
from pinpoint_agent.root import Root
from pinpoint_agent.state import StateStore


def _prefect(root: Root) -> None:
    """Prefect settings for a one-shot command, then the root's reusable local server (or PREFECT_API_URL)."""
    from pinpoint_agent.prefect_server import ensure_api

    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    ensure_api(root.prefect_home)


def run_export(agent_json: str | None, agent_file: Path | None, integrations_json: str | None,
               integrations_file: Path | None, *, reprocess_historical: bool, pinpoint_root: Path | None,
               integrations_dir: Path | None, log_format: str, log_level: str,
               output_file: Path | None) -> dict[str, Any]:
    agent = load_agent_config(agent_json, agent_file)
    entries = load_integrations(integrations_json, integrations_file)
    if log_format not in ("text", "json"):
        raise ConfigError(f"--log-format must be text or json, not {log_format!r}")
    root = Root(pinpoint_root)
    idir = integrations_dir or root.path / "integrations"
    for e in entries:
        resolve_command(e.name, idir)  # unknown integration or missing binary: exit before writing anything
        register_config_secrets(e.config)
        register_secret(e.refresh_token)
    register_secret(agent.api_key.get_secret_value())
    if output_file is not None and not output_file.parent.is_dir():
        raise ConfigError(f"--output-file: folder {output_file.parent} does not exist")
    root.prepare()
    setup("export", root.logs, fmt=log_format, level=log_level,
          stream=sys.stdout if output_file is not None else sys.stderr)
    _prefect(root)
    from flows.export import export
    from pinpoint_agent.display import progress_display

    with progress_display(enabled=log_format == "text" and sys.stderr.isatty()):
        result: dict[str, Any] = export(
            [{"id": e.id, "name": e.name, "type": int(e.type),
              "config": {**e.config, **({"refresh_token": e.refresh_token} if e.refresh_token else {})}}
             for e in entries],
            agent_config=agent.model_dump(mode="json") | {"api_key": agent.api_key.get_secret_value()},
            reprocess_historical=reprocess_historical, pinpoint_root=str(root.path),
            integrations_dir=str(idir))
    return result


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
