"""The backend commands the service serves: each is its flow from ``flows/`` (the same flow the CLI runs and
a Prefect worker runs from ``prefect.yaml``), with how the service treats its runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prefect import Flow

from flows.export import export
from flows.mutate import mutate
from flows.onboard import export_onboard_data
from flows.validate_config import validate_config
from flows.webhook import webhook


@dataclass(frozen=True)
class Command:
    """One backend command as the service serves it."""

    flow: Flow[..., Any]
    entrypoint: str  # path:attribute of the flow, as in prefect.yaml
    max_age: float  # seconds: a request older than this when the agent first sees it is refused
    interactive: bool  # runs at once, beside others, on a warm plugin (else: one at a time, queued)

    @property
    def name(self) -> str:
        return self.flow.name


COMMANDS: dict[str, Command] = {c.name: c for c in (
    Command(export, "flows/export.py:export", max_age=300.0, interactive=False),
    Command(validate_config, "flows/validate_config.py:validate_config", max_age=300.0, interactive=True),
    Command(export_onboard_data, "flows/onboard.py:export_onboard_data", max_age=300.0, interactive=True),
    Command(mutate, "flows/mutate.py:mutate", max_age=15.0, interactive=True),
    Command(webhook, "flows/webhook.py:webhook", max_age=300.0, interactive=True),
)}
