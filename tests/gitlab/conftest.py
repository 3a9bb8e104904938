"""Fixtures for the GitLab integration: a running fake GitLab, an in-process client, and a full agent export
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

from integrations.gitlab.client import GitLabClient, TokenAuth
from integrations.gitlab.config import parse_config
from integrations.gitlab.ratelimit import RateLimiter
from pinpoint_agent.config import AgentConfig
from pinpoint_agent.exporter import ExportJob, GitJob, run_integration
from pinpoint_agent.protocol import IntegrationConfig, IntegrationType
from pinpoint_agent.root import Root
from tests.gitlab.fake_gitlab import USER_TOKEN, FakeGitLab

CUSTOMER = "c1"


@pytest.fixture
def fake() -> Iterator[FakeGitLab]:
    with FakeGitLab() as gl:
        yield gl


@pytest.fixture
def gl_config(fake: FakeGitLab) -> dict[str, Any]:
    """A plain user's token on the fake group; per_page 2 so every list takes several pages."""
    return {"url": fake.url, "access_token": USER_TOKEN, "groups": ["acme"], "per_page": 2}


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
def client(fake: FakeGitLab, gl_config: dict[str, Any], waits: RecordingWaits) -> Iterator[GitLabClient]:
    cfg = parse_config(gl_config)
    with httpx.Client(timeout=10) as http:
        yield GitLabClient(
            http, cfg.api, TokenAuth(cfg.token), limiter=RateLimiter(listener=waits), per_page=2, backoff=0.01
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


def agent_export(
    root: Path,
    config: dict[str, Any],
    *,
    kind: IntegrationType = IntegrationType.SOURCECODE,
    use_oauth: bool = False,
    oauth_tokens: list[str] | None = None,
    refresh_token: str = "",
    agent: dict[str, Any] | None = None,
) -> AgentRun:
    """Runs the gitlab plugin through ``run_integration`` with the real session manager; with ``use_oauth``
    the manager hands out ``oauth_tokens`` one per ``OAuthNewAccessToken`` call, or with a ``refresh_token``
    the agent's own OAuth exchange (``agent`` holds the agent config's extra keys, e.g. ``oauth_url``)."""
    job = ExportJob.begin(Root(root), AgentConfig(customer_id=CUSTOMER, **(agent or {})))
    entry = IntegrationConfig(
        id="gl1", name="gitlab", type=kind, config=config, use_oauth=use_oauth, refresh_token=refresh_token
    )
    git: list[GitJob] = []
    events: list[tuple[str, str]] = []
    manager = job.manager(entry, git_submit=git.append)
    manager.pause = lambda message, resume_date: events.append(("pause", resume_date))  # type: ignore[method-assign]
    manager.resume = lambda message: events.append(("resume", message))  # type: ignore[method-assign]
    if oauth_tokens is not None:
        handed = list(oauth_tokens)
        manager.oauth_access_token = lambda: handed.pop(0) if len(handed) > 1 else handed[0]  # type: ignore[method-assign]
    try:
        outcome = run_integration(job, entry, manager)
        result = job.finish([outcome], [])
    finally:
        job.state.close()
    return AgentRun(root, result, git, events, job.export_dir, read_objects(job.export_dir))


@pytest.fixture
def agent_root(tmp_path: Path) -> Path:
    return tmp_path / "root"
