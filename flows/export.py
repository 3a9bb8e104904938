"""The ``export`` command as a Prefect flow: every integration in parallel, git repos as they are queued."""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Any

import orjson
from prefect import flow
from prefect.artifacts import create_table_artifact
from prefect.futures import PrefectFuture, wait
from prefect.task_runners import ThreadPoolTaskRunner

from pinpoint_agent.config import AgentConfig, load_integrations
from pinpoint_agent.exporter import ExportJob, GitJob, GitOutcome, IntegrationOutcome
from pinpoint_agent.progress import notify
from pinpoint_agent.root import Root
from tasks.git import git_repo
from tasks.integration import export_integration
from tasks.progress import summary_rows


# (Prefect types task_runner generically; a ThreadPoolTaskRunner is what it expects.)
@flow(name="export", task_runner=ThreadPoolTaskRunner(max_workers=64), log_prints=False)  # type: ignore[arg-type]
def export(integrations: list[dict[str, Any]], agent_config: dict[str, Any] | None = None,
           reprocess_historical: bool = False, pinpoint_root: str | None = None,
           integrations_dir: str | None = None, output_file: str | None = None) -> dict[str, Any]:
    """Exports all data of the given integrations, incrementally; returns the result JSON."""
    root = Root(pinpoint_root)
    agent = AgentConfig.model_validate(agent_config or {})
    entries = load_integrations(orjson.dumps(integrations).decode(), None)
    with root.exclusive("export"):
        job = ExportJob.begin(root, agent, reprocess_historical=reprocess_historical,
                              integrations_dir=Path(integrations_dir) if integrations_dir else None)
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
            cancel.set()
            raise
        outcomes = [_outcome(f, e, m) for f, e, m in zip(exports, entries, managers, strict=True)]
        git = [f.result() for f in repos]
        result = job.finish(outcomes, git)
        job.state.close()
    create_table_artifact(summary_rows(result), key="export-summary",
                          description=f"Export {result['export_id']}: objects per integration and model")
    if output_file:
        Path(output_file).write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    return result


def _outcome(future: PrefectFuture[IntegrationOutcome], entry: Any, manager: Any) -> IntegrationOutcome:
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 (a bug in one integration's task is that integration's error)
        manager.rollback_open()
        return IntegrationOutcome(entry, manager, incremental=False, error=f"{type(exc).__name__}: {exc}")
