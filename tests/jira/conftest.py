"""Fixtures for the Jira integration: running fake Jiras (Cloud and Data Center), an in-process client, and a
full agent export (real plugin process, real session manager, state store and output files)."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from integrations.jira.auth import make_auth
from integrations.jira.client import JiraClient
from integrations.jira.config import parse_config
from integrations.jira.ratelimit import Limiter
from pinpoint_agent.config import AgentConfig
from pinpoint_agent.exporter import ExportJob, run_integration
from pinpoint_agent.protocol import IntegrationConfig, IntegrationType
from pinpoint_agent.root import Root
from tests.jira.fake_jira import FakeJira

CUSTOMER = "c1"


@pytest.fixture
def cloud() -> Iterator[FakeJira]:
    with FakeJira(cloud=True) as fake:
        yield fake


@pytest.fixture
def dc() -> Iterator[FakeJira]:
    with FakeJira(cloud=False) as fake:
        yield fake


@pytest.fixture(params=["cloud", "dc"])
def fake(request: pytest.FixtureRequest) -> Iterator[FakeJira]:
    """Each test using it runs against both flavours."""
    with FakeJira(cloud=request.param == "cloud") as f:
        yield f


class RecordingWaits:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def paused(self, message: str, until: Any) -> None:
        self.events.append(("pause", message))

    def resumed(self, message: str) -> None:
        self.events.append(("resume", message))


def make_client(fake: FakeJira, waits: RecordingWaits | None = None, **config: Any) -> JiraClient:
    cfg = parse_config(fake.config(**config))
    http = httpx.Client(timeout=10)
    return JiraClient(http, cfg.url, make_auth(cfg), limiter=Limiter(listener=waits), backoff=0.01)


@dataclass
class AgentRun:
    root: Path
    result: dict[str, Any]
    events: list[tuple[str, str]]
    objects: dict[str, list[dict[str, Any]]]

    @property
    def integration(self) -> dict[str, Any]:
        return dict(self.result["integrations"][0])


def read_objects(export_dir: Path) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for f in sorted(export_dir.rglob("*.json.gz")):
        out.setdefault(f.parent.name, []).extend(
            orjson.loads(line) for line in gzip.decompress(f.read_bytes()).splitlines())
    return out


def agent_export(root: Path, config: dict[str, Any], *, name: str = "jira",
                 reprocess_historical: bool = False) -> AgentRun:
    """Runs the jira plugin through ``run_integration`` with the real session manager."""
    job = ExportJob.begin(Root(root), AgentConfig(customer_id=CUSTOMER), reprocess_historical=reprocess_historical)
    entry = IntegrationConfig(id="j1", name=name, type=IntegrationType.WORK, config=config)
    events: list[tuple[str, str]] = []
    manager = job.manager(entry, git_submit=lambda job: None)
    manager.pause = lambda message, resume_date: events.append(("pause", resume_date))  # type: ignore[method-assign]
    manager.resume = lambda message: events.append(("resume", message))  # type: ignore[method-assign]
    try:
        outcome = run_integration(job, entry, manager)
        result = job.finish([outcome], [])
    finally:
        job.state.close()
    return AgentRun(root, result, events, read_objects(job.export_dir))
