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
    try:
        return httpx.get(f"{url}/health", timeout=timeout).status_code == 200
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
    url = ""
    if info.exists():
        try:
            url = str(orjson.loads(info.read_bytes())["api_url"])
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError):
            url = ""
    if not url or not _healthy(url):
        url = _start(home, start_timeout)
        tmp = info.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps({"api_url": url}))
        os.replace(tmp, info)
    os.environ["PREFECT_API_URL"] = url
    return url


def _start(home: Path, timeout: float) -> str:
    port = _free_port()
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
