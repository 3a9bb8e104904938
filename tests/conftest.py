"""Shared fixtures: a clean environment for plugin processes and a process-leak check."""

from __future__ import annotations

import os
from collections.abc import Iterator

import psutil
import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Resident runners the tests' commands start (pinpoint_agent/resident.py) leave two minutes after the last one.
os.environ.setdefault("PINPOINT_AGENT_RESIDENT_IDLE", "120")


@pytest.fixture
def no_leaked_processes() -> Iterator[None]:
    """Fails the test if it leaves a child process of this test process behind."""
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    yield
    gone, alive = psutil.wait_procs([p for p in me.children(recursive=True) if p.pid not in before], timeout=5)
    leaked = [f"{p.pid} {' '.join(p.cmdline()[:4])}" for p in alive if p.is_running()]
    assert leaked == [], f"processes left behind: {leaked}"


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One local Prefect server for the whole test session (started the way the CLI starts one)."""
    from pinpoint_agent.prefect_server import ensure_api, stop_local

    home = tmp_path_factory.mktemp("prefect-home")
    saved = os.environ.get("PREFECT_API_URL")
    os.environ.pop("PREFECT_API_URL", None)
    url = ensure_api(home)
    try:
        yield url
    finally:
        stop_local(home)
        if saved is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = saved


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[object]:
    """One real PostgreSQL server for the test session (initdb into a temp folder, a free port on 127.0.0.1,
    password authentication), stopped by its postmaster's pid at the end. Skips where none is installed."""
    from pinpoint_agent.testing.postgres import PostgresServer, find_binaries

    if find_binaries() is None:
        pytest.skip("PostgreSQL server binaries not installed (Debian: apt-get install postgresql)")
    server = PostgresServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(postgres_server) -> str:  # type: ignore[no-untyped-def]
    """A fresh database on the session's PostgreSQL server: its URL (with the password)."""
    return postgres_server.new_database()  # type: ignore[no-any-return]
