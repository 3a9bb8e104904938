"""The plain-Python export steps without Prefect: git failures per repo, and the progress display."""

from __future__ import annotations

import io
import threading

from rich.console import Console

from pinpoint_agent import progress
from pinpoint_agent.config import AgentConfig
from pinpoint_agent.display import progress_display
from pinpoint_agent.exporter import ExportJob, run_integration
from pinpoint_agent.gitexport import process_git_job
from pinpoint_agent.protocol import IntegrationConfig, IntegrationType
from pinpoint_agent.root import Root
from pinpoint_agent.sessions import SessionInfo


def test_more_than_five_failing_repos_fail_the_integration(tmp_path):
    """Each broken repo is reported on its own project; more than five of them fail the integration."""
    bad = [str(tmp_path / f"missing-{i}") for i in range(6)]
    job = ExportJob.begin(Root(tmp_path / "root"), AgentConfig(customer_id="c1", git_max_concurrent=3))
    entry = IntegrationConfig(id="m", name="mock", type=IntegrationType.SOURCECODE,
                              config={"repos": 1, "prs_per_repo": 1, "git_repos": bad})
    queued = []
    manager = job.manager(entry, git_submit=queued.append)
    outcome = run_integration(job, entry, manager)
    assert outcome.error == "" and len(queued) == 6
    git = [process_git_job(job, q) for q in queued]
    assert all(g.error for g in git)
    result = job.finish([outcome], git)
    integration = result["integrations"][0]
    assert "git processing failed for 6 repos" in integration["error"]
    failed = [p for p in integration["projects"] if p["git_error"]]
    assert len(failed) == 6 and all(p["has_git_repo"] for p in failed)
    assert not list((tmp_path / "root" / "exports").rglob("*.temp.gz"))

    # Five failures are reported per repo but do not fail the integration.
    assert job.finish([outcome], git[:5])["integrations"][0]["error"] == ""


def test_progress_display_draws_one_bar_per_integration():
    """Session progress reaches the terminal as a bar named after the integration with the session's counts."""
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=120)
    with progress_display(True, console=console):
        progress.notify(SessionInfo(1, "mock@SOURCECODE/organization/r1/sourcecode.PullRequest",
                                    "sourcecode.PullRequest", False, 0, None, threading.Lock(), 40, 100))
    out = buf.getvalue()
    assert "mock@SOURCECODE" in out and "sourcecode.PullRequest 40/100" in out


def test_progress_display_off_draws_nothing():
    """Without a terminal (or with JSON logs) nothing is drawn and listeners are not left behind."""
    buf = io.StringIO()
    with progress_display(False, console=Console(file=buf)):
        progress.notify(SessionInfo(1, "k/x", "x", False, 0, None, threading.Lock(), 1, 2))
    assert buf.getvalue() == "" and progress._listeners == []
