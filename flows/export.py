"""The ``export`` command as a Prefect flow: every integration in parallel, git repos as they are queued, and,
where a backend is configured, the upload before anything the export staged becomes current."""

from __future__ import annotations

import queue
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import structlog
from prefect import flow
from prefect.artifacts import create_table_artifact
from prefect.context import FlowRunContext
from prefect.futures import PrefectFuture, wait
from prefect.task_runners import ThreadPoolTaskRunner

from pinpoint_agent.backend import BackendTarget, make_client, report_failure, ship_logs, upload_section
from pinpoint_agent.config import AgentConfig, IntegrationEntry
from pinpoint_agent.errors import PinpointError
from pinpoint_agent.exporter import (
    ExportJob,
    GitJob,
    GitOutcome,
    IntegrationOutcome,
    backend_target,
    merge_child_results,
)
from pinpoint_agent.progress import notify
from pinpoint_agent.protocol import IntegrationConfig
from pinpoint_agent.root import Root
from pinpoint_agent.secrets import resolve_agent, resolve_entries
from tasks.fanout import run_children
from tasks.git import git_repo
from tasks.integration import export_integration
from tasks.progress import summary_rows
from tasks.results import publish_result
from tasks.upload import upload_export

log = structlog.get_logger(__name__)
STOP_WAIT = 30.0  # seconds an interrupted export gives its integrations to roll back
CHILD_ROOT_WAIT = 6 * 3600.0  # a fan-out child queues this long behind other exports on its worker's root


# (Prefect types task_runner generically; a ThreadPoolTaskRunner is what it expects.)
@flow(name="export", task_runner=ThreadPoolTaskRunner(max_workers=64), log_prints=False,  # type: ignore[arg-type]
      persist_result=False)
def export(integrations: list[IntegrationEntry], agent_config: dict[str, Any] | str | None = None,
           reprocess_historical: bool = False, pinpoint_root: str | None = None,
           integrations_dir: str | None = None, output_file: str | None = None,
           wait_for_root: float = 0.0) -> dict[str, Any]:
    """Exports all data of the given integrations, incrementally; returns the result JSON. With
    ``fan_out_deployment`` in the agent config and several integrations, each integration is one child run of
    that deployment (Prefect workers share them) and this run collects their results. ``wait_for_root``:
    seconds to wait while another export holds the root (children of one fan-out queue on a worker's root)."""
    root = Root(pinpoint_root)
    agent = resolve_agent(agent_config, root.path)
    if agent.fan_out_deployment and len(integrations) > 1:
        result = _fan_out(agent.fan_out_deployment, list(integrations), agent_config, reprocess_historical,
                          integrations_dir)
    else:
        result = _export_here(root, agent, resolve_entries(list(integrations), root.path), reprocess_historical,
                              integrations_dir, wait_for_root)
    create_table_artifact(summary_rows(result), key="export-summary",
                          description=f"Export {result['export_id']}: objects per integration and model")
    if output_file:
        Path(output_file).write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    return publish_result("export", result)


def _export_here(root: Root, agent: AgentConfig, entries: list[IntegrationConfig], reprocess_historical: bool,
                 integrations_dir: str | None, wait_for_root: float) -> dict[str, Any]:
    """The export of ``entries`` in this run: a task per integration, git repos as they are queued."""
    with root.exclusive("export", wait=wait_for_root):
        target = backend_target(root, agent)  # agent config's backend, else config.json, else none
        if target is not None:
            agent = agent.model_copy(update={"customer_id": target.customer_id})
        # With a backend, tokens, dedup hashes and git checkpoints stay staged until the upload succeeded.
        job = ExportJob.begin(root, agent, reprocess_historical=reprocess_historical,
                              integrations_dir=Path(integrations_dir) if integrations_dir else None,
                              commit_on_done=target is None)
        try:  # the state is closed (its claims released, its commits waited for) on every path
            with _backend_client(job, target, entries) as client:
                git_queue: queue.Queue[GitJob] = queue.Queue()
                managers = [job.manager(e, git_submit=git_queue.put, on_progress=notify) for e in entries]
                cancel = threading.Event()
                exports = [export_integration.submit(job, e, m, cancel) for e, m in zip(entries, managers, strict=True)]
                repos: list[PrefectFuture[GitOutcome]] = []
                try:
                    while True:  # git repos start while the API exports go on
                        pending = wait(exports, timeout=0.2).not_done
                        while not git_queue.empty():
                            repos.append(git_repo.submit(job, git_queue.get()))
                        if not pending:
                            break
                    wait(repos)
                except BaseException:
                    cancel.set()  # the integrations roll back their open sessions; let them before the state closes
                    wait(exports, timeout=STOP_WAIT)
                    wait(repos, timeout=STOP_WAIT)
                    raise
                outcomes = [_outcome(f, e, m) for f, e, m in zip(exports, entries, managers, strict=True)]
                git = [f.result() for f in repos]
                result = job.finish(outcomes, git)
                if target is not None and client is not None:
                    result["upload"] = _deliver(job, target, client, result)
        finally:
            job.state.close()
    return result


def _fan_out(deployment: str, integrations: list[IntegrationEntry], agent_config: dict[str, Any] | str | None,
             reprocess_historical: bool, integrations_dir: str | None) -> dict[str, Any]:
    """One child run of ``deployment`` per integration, with this run's parameters (references stay
    references); their results merged into one result JSON."""
    started = time.monotonic_ns()
    parent = FlowRunContext.get()
    parent_id = str(parent.flow_run.id) if parent is not None and parent.flow_run is not None else uuid.uuid4().hex
    children = {f"{parent_id}-{e.name}-{e.id}": {
        "integrations": [e.model_dump()], "agent_config": agent_config, "reprocess_historical": reprocess_historical,
        "wait_for_root": CHILD_ROOT_WAIT,
        **({"integrations_dir": integrations_dir} if integrations_dir else {})} for e in integrations}
    log.info("export fans out", deployment=deployment, children=len(children))
    runs = run_children(deployment, children)
    return merge_child_results(parent_id, time.monotonic_ns() - started,
                               [(e, run.name, run.state_name or "", result)
                                for e, (run, result) in zip(integrations, runs, strict=True)])


@contextmanager
def _backend_client(job: ExportJob, target: BackendTarget | None,
                    entries: list[IntegrationConfig]) -> Iterator[httpx.Client | None]:
    """The backend's client for the export, with the export's log lines shipped to it meanwhile."""
    if target is None:
        yield None
        return
    with make_client(target) as client, ship_logs(client, target, export_id=job.export_id,
                                                  integrations=[e.display_key for e in entries]):
        log.info("export forwards to the backend", backend=target.backend_url, config=target.source)
        yield client


def _deliver(job: ExportJob, target: BackendTarget, client: httpx.Client, result: dict[str, Any]) -> dict[str, Any]:
    """Upload and report the export; only then do its tokens, dedup hashes and checkpoints become current.
    After a failure they are dropped, so the next export sends the same data again. Either way the local copy
    goes: the backend holds the data, or the next export rebuilds it."""
    try:
        uploaded = upload_export(job, target, client, result)
    except Exception as exc:  # noqa: BLE001 (whatever failed, the backend lacks this export: send it all again)
        job.state.discard_export(job.export_id)
        error = str(exc) if isinstance(exc, PinpointError) else f"{type(exc).__name__}: {exc}"
        log.error("upload failed; the next export sends this data again", error=error)
        unreported = report_failure(client, target, export_id=job.export_id, error=error, result=result,
                                    started_at=job.started_at)
        if unreported:
            log.warning("could not report the failed upload", error=unreported)
        section = upload_section(None, error)
    else:
        job.state.commit_export(job.export_id)
        section = upload_section(uploaded)
    shutil.rmtree(job.export_dir, ignore_errors=True)
    return section


def _outcome(future: PrefectFuture[IntegrationOutcome], entry: Any, manager: Any) -> IntegrationOutcome:
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 (a bug in one integration's task is that integration's error)
        manager.rollback_open()
        return IntegrationOutcome(entry, manager, incremental=False, error=f"{type(exc).__name__}: {exc}")
