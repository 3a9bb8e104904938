"""The plain-Python steps of an export, which the ``export`` flow composes into Prefect tasks.

    job = ExportJob.begin(root, agent_config, reprocess_historical=…)
    outcome = run_integration(job, entry, git_submit=…, cancel=…)     # one per integration, in parallel
    git = process_git_repo(job, git_job)                               # one per queued repo, in parallel
    result = job.finish(outcomes, git_results)                          # the result JSON

With a backend (``commit_on_done=False``) nothing a session staged becomes current until the flow calls
``job.state.commit_export(job.export_id)`` after the upload; ``discard_export`` drops it after a failed one.

The state store is the agent config's ``state_url`` (else ``$PINPOINT_STATE_URL``, else SQLite under the root).
``run_integration`` claims the integration (``state.claim``: one export of it at a time, on every machine that
shares the store) and keeps it until ``job.state.close()``, i.e. past the upload and the commit.

Errors of one integration are caught here and reported in its result; setup errors propagate.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from pinpoint_agent.backend import BackendTarget, resolve_target
from pinpoint_agent.config import AgentConfig
from pinpoint_agent.errors import PinpointError
from pinpoint_agent.host import Cancelled, IntegrationHost
from pinpoint_agent.host.callbacks import BackendOAuth, oauth_ref_type
from pinpoint_agent.protocol import CallConfig, GitRepoRequest, IntegrationConfig
from pinpoint_agent.root import Root
from pinpoint_agent.sessions import SessionInfo, SessionManager
from pinpoint_agent.state import IntegrationBusy, StateStore
from pinpoint_agent.stores import open_state

log = structlog.get_logger(__name__)

MAX_FAILED_REPOS = 5


@dataclass
class GitJob:
    """A repo an integration queued with ExportGitRepo."""

    integration: IntegrationConfig
    manager: SessionManager
    request: GitRepoRequest


@dataclass
class GitOutcome:
    integration_key: str
    repo_id: str
    unique_name: str
    error: str = ""
    skipped: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    duration_ns: int = 0


@dataclass
class IntegrationOutcome:
    entry: IntegrationConfig
    manager: SessionManager
    incremental: bool
    duration_ns: int = 0
    error: str = ""
    projects: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ExportJob:
    root: Root
    agent: AgentConfig
    state: StateStore
    export_id: str
    reprocess_historical: bool = False
    integrations_dir: Path | None = None
    commit_on_done: bool = True
    started_ns: int = field(default_factory=time.monotonic_ns)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    git_slots: threading.BoundedSemaphore = field(init=False)

    def __post_init__(self) -> None:
        # Bounded git concurrency for the whole export, across integrations.
        self.git_slots = threading.BoundedSemaphore(self.agent.git_max_concurrent)

    @property
    def export_dir(self) -> Path:
        return self.root.exports / self.export_id

    @classmethod
    def begin(cls, root: Root, agent: AgentConfig, *, reprocess_historical: bool = False,
              integrations_dir: Path | None = None, export_id: str | None = None,
              commit_on_done: bool = True) -> ExportJob:
        """Prepares the root (temp wiped, half-written files removed, stale staged state dropped)."""
        root.prepare()
        state = open_state(root, agent.state_url.get_secret_value())
        state.discard_export(None)  # anything staged by a killed earlier run (of an integration nobody exports now)
        eid = export_id or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:8]
        return cls(root, agent, state, eid, reprocess_historical, integrations_dir, commit_on_done)

    def manager(self, entry: IntegrationConfig, *, git_submit: Callable[[GitJob], None] | None = None,
                on_progress: Callable[[SessionInfo], None] | None = None) -> SessionManager:
        manager: SessionManager

        def queue_git(request: GitRepoRequest) -> None:
            if git_submit is None or self.agent.skip_git:
                log.info("git processing skipped", integration=entry.display_key, repo=request.unique_name)
                return
            git_submit(GitJob(entry, manager, request))

        manager = SessionManager(entry, export_id=self.export_id, state=self.state, export_dir=self.export_dir,
                                 reprocess_historical=self.reprocess_historical, commit_on_done=self.commit_on_done,
                                 git_queue=queue_git, on_progress=on_progress, async_commit=True)
        manager.oauth = oauth_for(self.root, self.agent, entry)
        return manager

    def finish(self, outcomes: list[IntegrationOutcome], git: list[GitOutcome]) -> dict[str, Any]:
        """The export result JSON (the original agent's shape), with git results on their projects."""
        self.state.wait_commits()  # the result reports committed state only
        by_repo: dict[tuple[str, str], GitOutcome] = {(g.integration_key, g.repo_id): g for g in git}
        integrations = []
        for o in outcomes:
            key = o.entry.display_key
            repo_outcomes = [g for g in git if g.integration_key == key]
            known = {p["id"] for p in o.projects}
            for p in o.projects:
                g = by_repo.get((key, p["id"]))
                p["has_git_repo"] = g is not None
                p["git_error"] = g.error if g else ""
            for g in repo_outcomes:  # repos queued without a matching project still get reported
                if g.repo_id not in known:
                    o.projects.append({"id": g.repo_id, "ref_id": "", "name": g.unique_name, "error": "",
                                       "has_git_repo": True, "git_error": g.error})
            failed = [g for g in repo_outcomes if g.error]
            error = self.state.lost_claim(o.entry.state_key) or o.error  # lost: nothing since was committed
            if not error and len(failed) > MAX_FAILED_REPOS:
                error = f"git processing failed for {len(failed)} repos (more than {MAX_FAILED_REPOS})"
            integrations.append({"id": o.entry.id, "name": o.entry.name, "error": error, "projects": o.projects,
                                 "duration": o.duration_ns, "incremental": o.incremental,
                                 "objects": o.manager.objects_by_model()})
        return {"duration": time.monotonic_ns() - self.started_ns, "export_id": self.export_id,
                "integrations": integrations}


def merge_child_results(export_id: str, duration_ns: int,
                        children: list[tuple[Any, str, str, dict[str, Any] | None]]) -> dict[str, Any]:
    """The result JSON of a fanned-out export from its children's: ``(entry, run name, final state, result)``
    each. A child that published no result is its integration's error."""
    integrations: list[dict[str, Any]] = []
    child_exports = []
    for entry, run_name, state, result in children:
        if result is None:
            integrations.append({"id": str(entry.id), "name": entry.name, "projects": [], "duration": 0,
                                 "incremental": False, "objects": {},
                                 "error": f"the child export run {run_name} ended {state or 'without a state'} "
                                          "with no result (see it in the Prefect UI)"})
            continue
        integrations.extend(result.get("integrations") or [])
        child_exports.append({"flow_run": run_name, "export_id": result.get("export_id"),
                              **({"upload": result["upload"]} if "upload" in result else {})})
    return {"duration": duration_ns, "export_id": export_id, "integrations": integrations,
            "children": child_exports}


def oauth_for(root: Root, agent: AgentConfig, entry: IntegrationConfig) -> BackendOAuth | None:
    """Access tokens for an entry with a refresh token, from the backend's refresh endpoint (None: the entry
    does not use OAuth, or no backend is configured; the plugin's request is then refused clearly)."""
    target = backend_target(root, agent) if entry.use_oauth and entry.refresh_token else None
    return BackendOAuth(target, oauth_ref_type(entry.name), entry.refresh_token) if target is not None else None


def backend_target(root: Root, agent: AgentConfig) -> BackendTarget | None:
    """Where an export forwards to: the agent config's backend, else the enrolled ``config.json``, else nowhere
    (precedence and the upload url's source: ``pinpoint_agent.backend._forward``)."""
    extra = agent.model_extra or {}
    return resolve_target(root.path, backend_url=agent.backend_url, api_key=agent.api_key.get_secret_value(),
                          customer_id=agent.customer_id, upload_url=str(extra.get("upload_url") or ""),
                          job_id=str(extra.get("job_id") or ""))


def run_integration(job: ExportJob, entry: IntegrationConfig, manager: SessionManager, *,
                    cancel: threading.Event | None = None) -> IntegrationOutcome:
    """Starts the integration, runs its export through the callbacks, and always reaps the process."""
    started = time.monotonic_ns()
    bound = log.bind(integration=entry.display_key)
    try:
        # Held until the store closes (after the upload and commit): the flow's job.state.close().
        job.state.claim(entry.state_key)
    except IntegrationBusy as exc:
        bound.warning("export refused", error=str(exc))
        return IntegrationOutcome(entry, manager, False, time.monotonic_ns() - started, str(exc))
    incremental = not job.reprocess_historical and job.state.has_tokens(entry.state_key + "/")
    outcome = IntegrationOutcome(entry, manager, incremental)
    bound.info("export started", incremental=incremental)
    try:
        with IntegrationHost.start(entry, manager, root=job.root.path, integrations_dir=job.integrations_dir) as host:
            result = host.export(
                CallConfig(integration=entry, customer_id=job.agent.customer_id,
                           reprocess_historical=job.reprocess_historical),
                timeout=job.agent.export_timeout, idle_timeout=job.agent.idle_timeout, cancel=cancel)
        outcome.projects = [{"id": p.id, "ref_id": p.ref_id, "name": p.name, "error": p.error}
                            for p in result.projects]
    except Cancelled as exc:
        outcome.error = str(exc)
        raise
    except PinpointError as exc:
        outcome.error = str(exc)
        bound.error("export failed", error=str(exc))
    finally:
        open_sessions = manager.rollback_open()
        if open_sessions:
            bound.warning("rolled back sessions the integration left open", sessions=open_sessions)
        outcome.duration_ns = time.monotonic_ns() - started
    bound.info("export finished", objects=manager.objects_by_model(), error=outcome.error or None,
               seconds=round(outcome.duration_ns / 1e9, 3))
    return outcome
