"""The root's local Prefect server: one per root, started on demand, stopped by itself when idle.

With no ``PREFECT_API_URL``, a one-shot command would otherwise start a temporary server each time
(10–20 s). Instead the agent runs Prefect's own ``prefect server start`` under ``<root>/prefect/`` (its
``PREFECT_HOME``, SQLite) and later commands reuse it::

    <root>/prefect/server.json    {"api_url", "pid", "idle_stop"}: the running server (written atomically)
    <root>/prefect/server.lock    held while a command finds or starts the server, and while it stops
    <root>/prefect/clients.lock   shared-locked by every command and ``run`` service using the server
    <root>/prefect/server.log     the server's output

- One server per root, whatever races: the check-and-start happens under ``server.lock``.
- The server process watches itself (a thread beside Prefect's server): when no process holds
  ``clients.lock`` and no flow run is Pending/Running for ``idle_stop`` seconds (``PINPOINT_PREFECT_IDLE_STOP``,
  default 900), it takes ``server.lock``, removes ``server.json`` and stops. A ``run`` service holds the
  lock for its whole life, so it keeps its server alive; a one-shot command holds it until it exits.

``ensure_api`` must run before Prefect is imported in the calling process (it sets the environment Prefect
reads). The server process itself is ``python -m pinpoint_agent.prefect_server <home> <port>``.
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

import httpx
import orjson

from pinpoint_agent.errors import ConfigError, FatalError

START_TIMEOUT = 90.0
IDLE_ENV = "PINPOINT_PREFECT_IDLE_STOP"
DEFAULT_IDLE_STOP = 900.0
BUSY_STATES = ["PENDING", "RUNNING", "CANCELLING"]

_leases: dict[Path, IO[bytes]] = {}  # this process's shared locks on clients.lock, held until it exits


def idle_stop_seconds(environ: dict[str, str] | None = None) -> float:
    """The idle time after which a root's server stops itself; a ConfigError for a value that is not one."""
    raw = (os.environ if environ is None else environ).get(IDLE_ENV, "")
    if not raw:
        return DEFAULT_IDLE_STOP
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0 or value != value or value == float("inf"):
        raise ConfigError(f"{IDLE_ENV} must be a positive number of seconds, not {raw!r}")
    return value


def _healthy(url: str, timeout: float = 2.0) -> bool:
    # The local server speaks plain http on loopback: no CA bundle to load for it (~45 ms a call here).
    try:
        return httpx.get(f"{url}/health", timeout=timeout, verify=url.startswith("https:")).status_code == 200
    except httpx.HTTPError:
        return False


def base_env(home: Path) -> dict[str, str]:
    return {"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_TO_API_BATCH_INTERVAL": "0.5"}


@contextmanager
def _locked(path: Path, timeout: float) -> Any:
    """An exclusive flock on ``path``, waiting up to ``timeout`` seconds for it."""
    with open(path, "ab") as f:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise FatalError(f"the local Prefect server under {path.parent} stayed locked for "
                                     f"{timeout:g}s (a command starting or stopping it hangs?)") from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _take_lease(home: Path) -> None:
    """Marks this process as a user of the root's server until it exits (the server does not idle-stop)."""
    if home not in _leases:
        lease = open(home / "clients.lock", "ab")  # noqa: SIM115 (held for the process's life)
        fcntl.flock(lease.fileno(), fcntl.LOCK_SH)
        _leases[home] = lease


def _clients_attached(home: Path) -> bool:
    with open(home / "clients.lock", "ab") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        return False


def read_info(home: Path) -> dict[str, Any]:
    """What ``server.json`` says ({} when there is none or it is unreadable)."""
    try:
        info = orjson.loads((home / "server.json").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return info if isinstance(info, dict) else {}


def local_url(home: Path) -> str:
    """The address of the root's local server, as recorded when it was started ("" if none was)."""
    return str(read_info(home).get("api_url") or "")


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    with suppress(ChildProcessError, OSError):  # our own child that died: reap it (no zombie)
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def ensure_api(home: Path, *, start_timeout: float = START_TIMEOUT) -> str:
    """Returns the Prefect API URL to use and sets the environment Prefect reads: ``PREFECT_API_URL`` if set,
    else the root's local server, started if it is not running. This process then counts as its user."""
    for k, v in base_env(home).items():
        os.environ.setdefault(k, v)
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    url = attach(home, start_timeout=start_timeout)
    os.environ["PREFECT_API_URL"] = url
    return url


def attach(home: Path, *, start_timeout: float = START_TIMEOUT) -> str:
    """The url of the root's local server, started if it is not running; this process counts as its user
    until it exits. Leaves the environment alone."""
    idle = idle_stop_seconds()
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {home}: {exc.strerror or exc}") from exc
    with _locked(home / "server.lock", start_timeout + 30):
        _take_lease(home)
        url = _running_url(home, start_timeout)
        if not url:
            url = _start(home, start_timeout, idle, port=_port_if_free(local_url(home)))
    return url


def _running_url(home: Path, timeout: float) -> str:
    """The url of this root's server if its process runs and answers (waiting while it starts up)."""
    info = read_info(home)
    url, pid = str(info.get("api_url") or ""), info.get("pid")
    deadline = time.monotonic() + timeout
    while url and _pid_alive(pid):
        if _healthy(url):
            return url
        if time.monotonic() > deadline:
            raise FatalError(f"the local Prefect server (pid {pid}) does not answer at {url}; "
                             f"see {home / 'server.log'}")
        time.sleep(0.25)
    return ""


def revive(home: Path, url: str, *, start_timeout: float = START_TIMEOUT) -> bool:
    """Starts the root's local server again at ``url`` when it is gone (crashed, killed, stopped); returns
    whether it did. Only for this root's server (``url`` was its address) and only if the port is free."""
    if not url or _healthy(url):
        return False
    with _locked(home / "server.lock", start_timeout + 30):
        if _running_url(home, start_timeout):
            return False
        port = _port_if_free(url)
        if port is None:
            return False
        _start(home, start_timeout, idle_stop_seconds(), port=port)
    return True


def _port_if_free(url: str) -> int | None:
    """The port of ``url`` if nothing listens on it now (a running service keeps using that address).
    Connections of a dead server lingering in TIME_WAIT do not count: the server binds with SO_REUSEADDR."""
    try:
        port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
    except (IndexError, ValueError):
        return None
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return None
    return port


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(home: Path, timeout: float, idle: float, *, port: int | None = None) -> str:
    """Starts the server process (the caller holds ``server.lock``) and records it once it answers."""
    port = port or _free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, **base_env(home), IDLE_ENV: repr(idle)}
    env.pop("PREFECT_API_URL", None)
    with open(home / "server.log", "ab") as log:
        proc = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "pinpoint_agent.prefect_server", str(home), str(port)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    deadline = time.monotonic() + timeout
    while not _healthy(url, timeout=1.0):
        if proc.poll() is not None:
            raise FatalError(f"the local Prefect server exited with code {proc.returncode}; "
                             f"see {home / 'server.log'}")
        if time.monotonic() > deadline:
            _stop_pid(proc.pid)
            raise FatalError(f"the local Prefect server did not answer within {timeout:g}s; "
                             f"see {home / 'server.log'}")
        time.sleep(0.25)
    tmp = home / f"server.json.{os.getpid()}.tmp"
    tmp.write_bytes(orjson.dumps({"api_url": url, "pid": proc.pid, "idle_stop": idle}))
    os.replace(tmp, home / "server.json")
    return url


def _stop_pid(pid: int, grace: float = 20.0) -> None:
    with suppress(OSError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _pid_alive(pid):
        with suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        while _pid_alive(pid):
            time.sleep(0.05)


def stop_local(home: Path) -> bool:
    """Stops the root's local server, if one runs, and waits for it to be gone."""
    with _locked(home / "server.lock", START_TIMEOUT):
        pid = read_info(home).get("pid")
        (home / "server.json").unlink(missing_ok=True)
        if not isinstance(pid, int) or not _pid_alive(pid):
            return False
        _stop_pid(pid)
    return True


# -- the server process ----------------------------------------------------------------------------------
def _busy_runs(url: str) -> bool:
    """Whether any flow run on the server is Pending or Running (a worker's, a command's). Unknown: busy."""
    try:
        r = httpx.post(f"{url}/flow_runs/count", timeout=10, verify=False,  # noqa: S501 (plain http, loopback)
                       json={"flow_runs": {"state": {"type": {"any_": BUSY_STATES}}}})
        return r.status_code != 200 or int(r.json()) > 0
    except (httpx.HTTPError, ValueError):
        return True


def _watch_idle(home: Path, url: str, idle: float) -> None:
    """In the server process: stops it (SIGTERM to itself, which Prefect's server handles) once nothing
    used it for ``idle`` seconds; ``server.lock`` is held from the decision until the process is gone."""
    every = min(max(idle / 4, 0.2), 15.0)
    last_busy = time.monotonic()
    while True:
        time.sleep(every)
        if _clients_attached(home) or _busy_runs(url):
            last_busy = time.monotonic()
            continue
        if time.monotonic() - last_busy < idle:
            continue
        lock = open(home / "server.lock", "ab")  # noqa: SIM115 (released when this process ends)
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # a command is finding the server right now: it will be a client
            lock.close()
            last_busy = time.monotonic()
            continue
        if _clients_attached(home):
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
            lock.close()
            last_busy = time.monotonic()
            continue
        if read_info(home).get("pid") == os.getpid():
            (home / "server.json").unlink(missing_ok=True)
        print(f"pinpoint-agent: stopping the idle Prefect server ({idle:g}s unused)", flush=True)
        os.kill(os.getpid(), signal.SIGTERM)
        return


def _serve(home: Path, port: int) -> None:
    idle = idle_stop_seconds()
    url = f"http://127.0.0.1:{port}/api"
    threading.Thread(target=_watch_idle, args=(home, url, idle), name="idle-stop", daemon=True).start()
    sys.argv = ["prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    from prefect.cli import app  # Prefect's own `prefect server start`, run in this process

    app()


if __name__ == "__main__":
    _serve(Path(sys.argv[1]), int(sys.argv[2]))
