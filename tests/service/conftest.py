"""The ``run`` service as a real subprocess against the session's Prefect server, and a backend's view of
it: trigger deployments through Prefect's REST API with httpx and read the results, as a backend would."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

AGENT = [sys.executable, "-m", "pinpoint_agent.cli"]
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
LOCAL = "local"  # Service.api_for_service: no PREFECT_API_URL, so the service starts the root's own server
FAST = {"PINPOINT_HEARTBEAT_INTERVAL": "1", "PINPOINT_PLUGIN_CHECK_INTERVAL": "0.5", "PINPOINT_STOP_GRACE": "30"}


def mock(**config: Any) -> list[dict[str, Any]]:
    return [{"id": "m1", "name": "mock", "type": 1, "config": config}]


@dataclass
class Service:
    """One ``pinpoint-agent run`` process with its own root and its own deployment names."""

    root: Path
    api: str
    name: str  # deployment name: tests do not see each other's runs
    proc: subprocess.Popen[bytes] | None = None
    api_for_service: str = ""  # where the service reaches the API (a proxy), if not where the test does
    env: dict[str, str] = field(default_factory=dict)  # more environment for the service
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.api, timeout=30)

    @property
    def log(self) -> str:
        path = self.root / "logs" / "run"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self, timeout: float = 60) -> Service:
        env = {**os.environ, **FAST, "PREFECT_API_URL": self.api_for_service or self.api,
               "PINPOINT_DEPLOYMENT_NAME": self.name, **self.env}
        if self.api_for_service == LOCAL:  # the root's own local server, started by the service
            del env["PREFECT_API_URL"]
        self.proc = subprocess.Popen([*AGENT, "run", "--pinpoint-root", str(self.root)], env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.wait_log("serving deployments", timeout)
        return self

    def wait_log(self, text: str, timeout: float = 30, count: int = 1) -> None:
        deadline = time.monotonic() + timeout
        while self.log.count(text) < count:
            assert self.proc is None or self.proc.poll() is None, f"service exited:\n{self.log[-3000:]}"
            assert time.monotonic() < deadline, f"no {text!r} in the service log:\n{self.log[-3000:]}"
            time.sleep(0.05)

    def stop(self, timeout: float = 60) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self.proc = None
        return code

    def plugin_pids(self) -> set[int]:
        assert self.proc is not None
        return {c.pid for c in psutil.Process(self.proc.pid).children(recursive=True)
                if "integrations." in " ".join(c.cmdline())}

    # -- the backend's side: Prefect REST -----------------------------------------------------------
    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """As a backend should: 503 (a SQLite server busy: "database is locked") and 429 are retried."""
        for attempt in range(20):
            r = self.http.request(method, url, **kwargs)
            if r.status_code not in (429, 503):
                return r
            time.sleep(min(0.05 * 2 ** attempt, 1.0))
        return r

    def deployment_id(self, command: str) -> str:
        r = self.request("GET", f"/deployments/name/{command}/{self.name}")
        r.raise_for_status()
        return str(r.json()["id"])

    def trigger(self, command: str, parameters: dict[str, Any], key: str | None = None,
                **extra: Any) -> dict[str, Any]:
        body = {"parameters": parameters, "idempotency_key": key or uuid.uuid4().hex, **extra}
        r = self.request("POST", f"/deployments/{self.deployment_id(command)}/create_flow_run", json=body)
        assert r.status_code in (200, 201), r.text
        return dict(r.json())

    def read(self, run_id: str) -> dict[str, Any]:
        r = self.request("GET", f"/flow_runs/{run_id}")
        r.raise_for_status()
        return dict(r.json())

    def wait(self, run_id: str, timeout: float = 60, types: set[str] = FINAL) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            run = self.read(run_id)
            if run["state"]["type"] in types:
                return run
            assert time.monotonic() < deadline, f"run {run_id} still {run['state']['type']}:\n{self.log[-3000:]}"
            time.sleep(0.05)

    def result(self, run_id: str) -> Any:
        r = self.request("POST", "/artifacts/filter", json={"artifacts": {
            "flow_run_id": {"any_": [run_id]}, "type": {"any_": ["result"]}}})
        r.raise_for_status()
        found = r.json()
        assert len(found) == 1, found
        return found[0]["data"]

    def run(self, command: str, parameters: dict[str, Any], timeout: float = 60) -> tuple[dict[str, Any], Any]:
        run = self.wait(self.trigger(command, parameters)["id"], timeout)
        assert run["state"]["type"] == "COMPLETED", (run["state"], self.log[-3000:])
        return run, self.result(run["id"])


@pytest.fixture
def make_service(prefect_api: str, tmp_path: Path) -> Iterator[Any]:
    """Builds services (started by the test); stops any still running and checks nothing is left behind."""
    made: list[Service] = []

    def make(root: Path | None = None, name: str | None = None) -> Service:
        svc = Service(root or tmp_path / "root", prefect_api, name or f"t{uuid.uuid4().hex[:8]}")
        made.append(svc)
        return svc

    yield make
    for svc in made:
        if svc.proc is not None:
            children = psutil.Process(svc.proc.pid).children(recursive=True)
            assert svc.stop() == 0
            _, alive = psutil.wait_procs(children, timeout=10)
            assert alive == [], f"left behind: {alive}"


@pytest.fixture(scope="module")
def shared_service(prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One running service for the tests that do not stop it."""
    svc = Service(tmp_path_factory.mktemp("svc") / "root", prefect_api, f"m{uuid.uuid4().hex[:8]}").start()
    yield svc
    if svc.proc is not None:
        assert svc.stop() == 0


class Proxy:
    """A TCP proxy in front of the Prefect server, so a test can take the API away and bring it back."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = upstream_port
        self.port = 0
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self.up()

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        """Refuses new connections and cuts the open ones."""
        with self._lock:
            if self._listener is not None:
                with contextlib.suppress(OSError):
                    self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() (close alone does not)
                self._listener.close()
                self._listener = None
            for c in self._conns:
                with contextlib.suppress(OSError):
                    c.shutdown(socket.SHUT_RDWR)
                c.close()
            self._conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                if self._listener is not listener:  # went down meanwhile
                    client.close()
                    return
                server = socket.create_connection(("127.0.0.1", self.upstream))
                self._conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)
