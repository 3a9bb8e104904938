"""A local Prefect server that outlives one command.

With no ``PREFECT_API_URL``, a one-shot command would otherwise start a temporary server each time
(10–20 s). Instead the agent starts one on demand under ``<root>/prefect/`` (its own ``PREFECT_HOME``,
SQLite), records where it listens in ``server.json``, and later commands reuse it while it answers.
Must run before Prefect is imported (it sets the environment Prefect reads).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson

from pinpoint_agent.errors import FatalError

START_TIMEOUT = 90.0


def _healthy(url: str, timeout: float = 2.0) -> bool:
    # The local server speaks plain http on loopback: no CA bundle to load for it (~45 ms a call here).
    try:
        return httpx.get(f"{url}/health", timeout=timeout, verify=url.startswith("https:")).status_code == 200
    except httpx.HTTPError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_env(home: Path) -> dict[str, str]:
    return {"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_TO_API_BATCH_INTERVAL": "0.5"}


def ensure_api(home: Path, *, start_timeout: float = START_TIMEOUT) -> str:
    """Returns the Prefect API URL to use, starting the root's local server if needed; sets the env."""
    for k, v in base_env(home).items():
        os.environ.setdefault(k, v)
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    home.mkdir(parents=True, exist_ok=True)
    info = home / "server.json"
    url = local_url(home)
    if not url or not _healthy(url):
        # Where it listened before, if that port is free: a running service still uses that address.
        url = _start(home, start_timeout, port=_port_if_free(url))
        tmp = info.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps({"api_url": url}))
        os.replace(tmp, info)
    os.environ["PREFECT_API_URL"] = url
    return url


def local_url(home: Path) -> str:
    """The address of the root's local server, as recorded when it was started ("" if none was)."""
    try:
        return str(orjson.loads((home / "server.json").read_bytes())["api_url"])
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError):
        return ""


def revive(home: Path, url: str, *, start_timeout: float = START_TIMEOUT) -> bool:
    """Starts the root's local server again at ``url`` when its process is gone (crashed, killed, the OOM
    killer); returns whether it did. Nothing is done for a server that is not this root's, one that answers,
    one whose process still runs (busy or starting: killing it would not help) or when something else
    listens at that address (another command on this root may be starting it there)."""
    if not url or local_url(home) != url or _healthy(url) or _alive(home):
        return False
    port = _port_if_free(url)
    if port is None:
        return False
    _start(home, start_timeout, port=port)
    return True


def _alive(home: Path) -> bool:
    try:
        pid = int((home / "server.pid").read_text())
    except (OSError, ValueError):
        return False
    try:  # started by this process (the service's own start): reap it if it died, or it stays a zombie
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _port_if_free(url: str) -> int | None:
    """The port of ``url`` if nothing listens on it now (connections of a dead server lingering in TIME_WAIT
    do not count: the server binds with SO_REUSEADDR too)."""
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


def _start(home: Path, timeout: float, *, port: int | None = None) -> str:
    port = port or _free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, **base_env(home)}
    env.pop("PREFECT_API_URL", None)
    log = open(home / "server.log", "ab")  # noqa: SIM115 (handed to the child)
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    log.close()
    (home / "server.pid").write_text(str(proc.pid))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise FatalError(f"the local Prefect server exited with code {proc.returncode}; "
                             f"see {home / 'server.log'}")
        if _healthy(url, timeout=1.0):
            return url
        time.sleep(0.25)
    proc.kill()
    raise FatalError(f"the local Prefect server did not answer within {timeout:g}s; see {home / 'server.log'}")


def stop_local(home: Path) -> bool:
    """Stops the root's local server, if one runs."""
    pid_file = home / "server.pid"
    if not pid_file.exists():
        return False
    try:
        os.killpg(int(pid_file.read_text()), 15)
    except (ProcessLookupError, ValueError, PermissionError):
        return False
    finally:
        pid_file.unlink(missing_ok=True)
        (home / "server.json").unlink(missing_ok=True)
    return True
