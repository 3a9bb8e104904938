"""Fixtures for the GitHub integration: a running fake GitHub, an in-process client, and a full agent export
(real plugin process, real session manager, state store and output files)."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from integrations.github.client import GitHubClient
from integrations.github.config import parse_config
from integrations.github.ratelimit import RateLimiter
from pinpoint_agent.config import AgentConfig
from pinpoint_agent.exporter import ExportJob, GitJob, run_integration
from pinpoint_agent.protocol import IntegrationConfig, IntegrationType
from pinpoint_agent.root import Root
from tests.github.fake_github import TOKEN, FakeGitHub

CUSTOMER = "c1"


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub() as gh:
        yield gh


@pytest.fixture
def gh_config(fake: FakeGitHub) -> dict[str, Any]:
    """The integration config for the fake org; per_page 2 so every list takes several pages."""
    return {"url": fake.url, "api_key": TOKEN, "organization": "acme", "per_page": 2}


class RecordingWaits:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def paused(self, message: str, until: Any) -> None:
        self.events.append(("pause", message))

    def resumed(self, message: str) -> None:
        self.events.append(("resume", message))


@pytest.fixture
def waits() -> RecordingWaits:
    return RecordingWaits()


@pytest.fixture
def client(fake: FakeGitHub, gh_config: dict[str, Any], waits: RecordingWaits) -> Iterator[GitHubClient]:
    cfg = parse_config(gh_config)
    with httpx.Client(timeout=10) as http:
        yield GitHubClient(
            http, cfg.api(), cfg.token, limiter=RateLimiter(listener=waits), per_page=2, backoff=0.01
        )


@dataclass
class AgentRun:
    """One export through the agent's export path: result JSON, git jobs, pause/resume events, output."""

    root: Path
    result: dict[str, Any]
    git: list[GitJob]
    events: list[tuple[str, str]]
    export_dir: Path
    objects: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def integration(self) -> dict[str, Any]:
        return dict(self.result["integrations"][0])


def read_objects(export_dir: Path) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for f in sorted(export_dir.rglob("*.json.gz")):
        out.setdefault(f.parent.name, []).extend(
            orjson.loads(line) for line in gzip.decompress(f.read_bytes()).splitlines()
        )
    return out


def agent_export(root: Path, config: dict[str, Any], *, reprocess_historical: bool = False) -> AgentRun:
    """Runs the github plugin through ``run_integration`` with the real session manager."""
    job = ExportJob.begin(
        Root(root), AgentConfig(customer_id=CUSTOMER), reprocess_historical=reprocess_historical
    )
    entry = IntegrationConfig(id="gh1", name="github", type=IntegrationType.SOURCECODE, config=config)
    git: list[GitJob] = []
    events: list[tuple[str, str]] = []
    manager = job.manager(entry, git_submit=git.append)
    manager.pause = lambda message, resume_date: events.append(("pause", resume_date))  # type: ignore[method-assign]
    manager.resume = lambda message: events.append(("resume", message))  # type: ignore[method-assign]
    try:
        outcome = run_integration(job, entry, manager)
        result = job.finish([outcome], [])
    finally:
        job.state.close()
    return AgentRun(root, result, git, events, job.export_dir, read_objects(job.export_dir))


@pytest.fixture
def agent_root(tmp_path: Path) -> Path:
    return tmp_path / "root"
