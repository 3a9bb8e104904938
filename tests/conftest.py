"""Shared fixtures: the suite's one Prefect server, a process-leak check per test and for the whole run.

Every process the suite starts inherits ``PINPOINT_TEST_SESSION`` (a fresh id per run); at the end of the
run no process carrying it may be alive (Prefect servers, agents, plugins, services), else the run fails.
"""

from __future__ import annotations

import base64
import os
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil
import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
SESSION_MARK = "PINPOINT_TEST_SESSION"
E2E_FIXTURES = {"prefect_api", "prefect_env", "make_service", "shared_service"}
# The fast ring (``bin/test -m core``): modules whose tests start no process and no server (checked: a core
# test that starts a subprocess fails).
CORE_MODULES = {
    "tests/backend/test_enroll.py", "tests/backend/test_logs.py", "tests/backend/test_secrets.py",
    "tests/backend/test_upload.py", "tests/export/test_ids_and_users.py", "tests/github/test_client.py",
    "tests/github/test_units.py", "tests/commands/test_inputs.py",
    "tests/layout/test_imports.py",
}


@pytest.fixture
def no_leaked_processes() -> Iterator[None]:
    """Fails the test if it leaves a child process of this test process behind."""
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    yield
    gone, alive = psutil.wait_procs([p for p in me.children(recursive=True) if p.pid not in before], timeout=5)
    leaked = [f"{p.pid} {' '.join(p.cmdline()[:4])}" for p in alive if p.is_running()]
    assert leaked == [], f"processes left behind: {leaked}"


class _Server:
    """The suite's Prefect server (the root's local server of a scratch home, as the CLI starts one), started
    in the background when the first test that needs it is set up, so its ~20 s start overlaps other tests."""

    def __init__(self) -> None:
        self.home: Path | None = None
        self.url = ""
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        if self.thread is not None:
            return
        self.home = Path(tempfile.mkdtemp(prefix="pinpoint-test-prefect-"))
        self.thread = threading.Thread(target=self._run, name="prefect-server", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        from pinpoint_agent.prefect_server import attach

        assert self.home is not None
        try:
            self.url = attach(self.home)
        except BaseException as exc:  # noqa: BLE001 (reported by the fixtures)
            self.error = exc

    def wait(self) -> str:
        self.start()
        assert self.thread is not None
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.url

    def env(self) -> dict[str, str]:
        from pinpoint_agent.prefect_server import base_env

        assert self.home is not None
        return {**base_env(self.home), "PREFECT_API_URL": self.wait()}

    def stop(self) -> None:
        if self.thread is None or self.home is None:
            return
        self.thread.join()
        from pinpoint_agent.prefect_server import stop_local

        stop_local(self.home)


_server = _Server()


def pytest_configure(config: pytest.Config) -> None:
    os.environ[SESSION_MARK] = uuid.uuid4().hex


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``e2e``: the test uses the Prefect server or a service; ``core`` tests are the others (marked so in
    their modules: no subprocess, no server)."""
    top = Path(__file__).resolve().parents[1]
    for item in items:
        if E2E_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)
        elif Path(str(item.fspath)).resolve().relative_to(top).as_posix() in CORE_MODULES:
            item.add_marker(pytest.mark.core)


@pytest.fixture(autouse=True)
def _core_starts_no_process(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``core`` test may not start a process (that is what keeps the ring fast)."""
    if request.node.get_closest_marker("core") is None:
        return
    import subprocess

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a core test started a subprocess: move it out of CORE_MODULES")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if E2E_FIXTURES & set(getattr(item, "fixturenames", ())):
        _server.start()


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """The suite's Prefect server, set in this process's environment for the rest of the session (in-process
    flows and CLI subprocesses reach it)."""
    env = _server.env()
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env["PREFECT_API_URL"]
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def prefect_home() -> Path:
    """The suite's Prefect server's home (its SQLite database is there)."""
    _server.wait()
    assert _server.home is not None
    return _server.home


@pytest.fixture(scope="session")
def prefect_env() -> dict[str, str]:
    """The environment a CLI subprocess needs to reach the suite's Prefect server (this process's own
    environment is left alone, so other tests can check that bad input starts no server)."""
    return {**os.environ, **_server.env()}


def _ours() -> list[psutil.Process]:
    mark, me = os.environ.get(SESSION_MARK), os.getpid()
    found = []
    for p in psutil.process_iter():
        try:
            if p.pid != me and p.environ().get(SESSION_MARK) == mark:
                found.append(p)
        except psutil.Error:
            continue
    return found


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stops the suite's server, then fails the run if any process it started is still alive (and stops it)."""
    _server.stop()
    deadline = time.monotonic() + 15
    alive = _ours()
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    if not alive:
        return
    lines = []
    for p in alive:
        try:
            lines.append(f"{p.pid} {' '.join(p.cmdline())[:160]}")
            p.kill()
        except psutil.Error:
            continue
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"FAILED: {len(lines)} processes started by the tests were still alive (now killed):",
                            red=True)
        for line in lines:
            reporter.write_line(f"  {line}")
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


# -- git repositories and a git HTTP server (used by the commands and the secrets tests) -----------------
GIT_ENV = {"GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "T",
           "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent"}


def _git(*args: str, cwd: Path | None = None) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, env={**os.environ, **GIT_ENV})


@pytest.fixture(scope="session")
def git_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small bare git repo with one commit."""
    base = tmp_path_factory.mktemp("git")
    work = base / "work"
    work.mkdir()
    _git("init", "-q", "-b", "main", cwd=work)
    (work / "README").write_text("hello\n")
    _git("add", "README", cwd=work)
    _git("commit", "-q", "-m", "first", cwd=work)
    bare = base / "repo.git"
    _git("clone", "-q", "--bare", str(work), str(bare))
    return bare


@dataclass
class GitServer:
    url: str  # clone url of the repo
    user: str
    password: str
    authorizations: list[str] = field(default_factory=list)  # Authorization headers git sent


@pytest.fixture
def git_server(git_repo: Path) -> Iterator[GitServer]:
    """Serves ``git_repo`` over smart HTTP on loopback; every request needs basic auth."""
    user, password = "git-user", "s3cret-token-4711"
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            self._serve()

        def do_POST(self) -> None:  # noqa: N802
            self._serve()

        def _serve(self) -> None:
            auth = self.headers.get("Authorization", "")
            if auth:
                seen.append(auth)
            if auth != expected:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            path, _, query = self.path.partition("?")
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            env = {"PATH": os.environ["PATH"], "GIT_PROJECT_ROOT": str(git_repo.parent),
                   "GIT_HTTP_EXPORT_ALL": "1",
                   "PATH_INFO": path, "QUERY_STRING": query, "REQUEST_METHOD": self.command,
                   "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
                   "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                   "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""), "REMOTE_USER": user}
            out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
            sep = b"\r\n\r\n" if b"\r\n\r\n" in out else b"\n\n"
            head, _, payload = out.partition(sep)
            status, headers = 200, []
            for line in head.decode().splitlines():
                name, _, value = line.partition(":")
                if name.lower() == "status":
                    status = int(value.split()[0])
                elif name:
                    headers.append((name, value.strip()))
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield GitServer(url=f"http://127.0.0.1:{server.server_address[1]}/{git_repo.name}", user=user,
                        password=password, authorizations=seen)
    finally:
        server.shutdown()
        server.server_close()


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
