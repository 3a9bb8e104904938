"""A behaving fake of the agent backend: a real HTTP server on ``127.0.0.1:<free port>`` in a thread.

It implements the endpoints of ``pinpoint_agent.backend`` (see that package's docstring), checks the
``Authorization`` header, records what it received, and can be told to misbehave::

    with FakeBackend() as backend:                      # started; stopped on exit
        backend.add_code("CODE-1")                      # enroll codes it accepts (default: "good-code")
        backend.fail_next(2, status=503)                # next 2 requests answer 503 (optionally per path)
        backend.drop_next(1)                            # next request: connection closed, no answer
        backend.slow_next(1, seconds=0.5)               # next request answers after a delay
        backend.misreport_size_next(1, delta=-1)        # next upload part reports a wrong stored size
        backend.reject_code("CODE-1")                   # this code now gets 403
        backend.url                                     # "http://127.0.0.1:PORT"
        backend.upload_url("job-1")                     # where to PUT parts: <that>.0, <that>.1, …
        backend.uploads()                               # names that received parts, in first-part order
        backend.assembled("job-1")                      # parts 0..n-1 concatenated
        backend.results, backend.log_lines, backend.enrollments, backend.requests
        backend.oauth_grant("jira", "refresh-1", ["tok-1", "tok-2"])  # access tokens handed out in turn

Endpoints: ``POST /agent/enroll`` (no auth; 403 on an unknown code; the same code+device_id again gets the
same answer, with ``secrets`` when the fake was built with ``enroll_secrets``), ``POST /agent/export/upload-url``
(200 ``{"upload_url": <url>/upload/<export_id>}``, bodies in ``upload_url_requests``),
``PUT /upload/<name>.<n>`` (202 ``{"part": n, "size": stored}``), ``POST /agent/export/result``
(202), ``POST /agent/logs/<stream>`` (gzip JSON lines, 202), ``GET /oauth/<ref_type>/refresh/<refresh token>``
(200 ``{"access_token": …}`` for a granted refresh token, the last one again once its list is used up; 401
for an unknown one: the original agent's refresh endpoint). Every endpoint except enroll wants
``Authorization: <api_key>`` and answers 401 otherwise. Unknown paths answer 404.

Switches count requests in arrival order; with ``path_prefix`` they only count requests whose path starts
with it. Everything is thread-safe.
"""

from __future__ import annotations

import gzip
import json
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = ["FakeBackend", "RecordedRequest"]

_PART_PATH = re.compile(r"^/upload/(?P<name>.+)\.(?P<n>\d+)$")
_OAUTH_PATH = re.compile(r"^/oauth/(?P<ref_type>[^/]+)/refresh/(?P<token>[^/]+)$")


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake saw it (body size only; bodies are kept per endpoint)."""

    method: str
    path: str
    headers: dict[str, str]
    body_size: int
    status: int


@dataclass
class _Fault:
    remaining: int
    kind: str  # "status" | "drop" | "slow" | "size"
    path_prefix: str | None
    status: int = 503
    retry_after: float | None = None
    seconds: float = 0.0
    delta: int = 0


@dataclass
class _State:
    codes: set[str] = field(default_factory=set)
    faults: list[_Fault] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)
    enrollments: list[dict[str, Any]] = field(default_factory=list)
    enrolled_devices: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    parts: dict[str, dict[int, bytes]] = field(default_factory=dict)
    part_attempts: dict[str, int] = field(default_factory=dict)
    results: list[dict[str, Any]] = field(default_factory=list)
    log_batches: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)
    upload_url_requests: list[dict[str, Any]] = field(default_factory=list)
    oauth: dict[tuple[str, str], list[str]] = field(default_factory=dict)


class FakeBackend:
    """The fake backend server; see the module docstring for its API."""

    def __init__(
        self,
        *,
        api_key: str = "fake-api-key-0123456789",
        customer_id: str = "customer-1",
        channel: str = "test",
        codes: tuple[str, ...] = ("good-code",),
        enroll_secrets: dict[str, str] | None = None,
    ) -> None:
        self.api_key = api_key
        self.enroll_secrets = dict(enroll_secrets or {})
        self.customer_id = customer_id
        self.channel = channel
        self._lock = threading.Lock()
        self._state = _State(codes=set(codes))
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> FakeBackend:
        """Listen on 127.0.0.1 with a free port and serve from a daemon thread."""
        if self._server is not None:
            return self
        handler = type("_BoundHandler", (_Handler,), {"backend": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="fake-backend",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._server = None

    def __enter__(self) -> FakeBackend:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base url, e.g. ``http://127.0.0.1:40123``."""
        if self._server is None:
            raise RuntimeError("FakeBackend is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def upload_url(self, name: str = "job-1") -> str:
        """An upload url for ``name``; parts go to ``<this>.<n>``."""
        return f"{self.url}/upload/{name}"

    # --- switches --------------------------------------------------------------------------------------
    def add_code(self, code: str) -> None:
        """Accept ``code`` at enrollment."""
        with self._lock:
            self._state.codes.add(code)

    def oauth_grant(self, ref_type: str, refresh_token: str, access_tokens: list[str]) -> None:
        """The refresh endpoint answers these access tokens for ``refresh_token``, one per call."""
        with self._lock:
            self._state.oauth[(ref_type, refresh_token)] = list(access_tokens)

    def reject_code(self, code: str) -> None:
        """Refuse ``code`` (403) from now on."""
        with self._lock:
            self._state.codes.discard(code)

    def fail_next(
        self,
        n: int = 1,
        *,
        status: int = 503,
        retry_after: float | None = None,
        path_prefix: str | None = None,
    ) -> None:
        """Answer the next ``n`` (matching) requests with ``status`` (body read first)."""
        self._add(_Fault(n, "status", path_prefix, status=status, retry_after=retry_after))

    def drop_next(self, n: int = 1, *, path_prefix: str | None = None) -> None:
        """Close the connection without an answer on the next ``n`` (matching) requests."""
        self._add(_Fault(n, "drop", path_prefix))

    def slow_next(self, n: int = 1, *, seconds: float, path_prefix: str | None = None) -> None:
        """Wait ``seconds`` before handling the next ``n`` (matching) requests."""
        self._add(_Fault(n, "slow", path_prefix, seconds=seconds))

    def misreport_size_next(self, n: int = 1, *, delta: int = -1) -> None:
        """Store the next ``n`` upload parts normally but report ``size + delta``."""
        self._add(_Fault(n, "size", "/upload/", delta=delta))

    def clear_faults(self) -> None:
        """Forget every pending switch."""
        with self._lock:
            self._state.faults.clear()

    def _add(self, fault: _Fault) -> None:
        with self._lock:
            self._state.faults.append(fault)

    def _take_fault(self, path: str, kinds: tuple[str, ...]) -> _Fault | None:
        with self._lock:
            for fault in self._state.faults:
                if fault.kind in kinds and fault.remaining > 0:
                    if fault.path_prefix is None or path.startswith(fault.path_prefix):
                        fault.remaining -= 1
                        return fault
            return None

    # --- records ---------------------------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request answered or dropped, in order."""
        with self._lock:
            return list(self._state.requests)

    @property
    def enrollments(self) -> list[dict[str, Any]]:
        """Bodies of successful enroll requests."""
        with self._lock:
            return list(self._state.enrollments)

    def parts(self, name: str = "job-1") -> dict[int, bytes]:
        """Stored parts of upload ``name`` by part number."""
        with self._lock:
            return dict(self._state.parts.get(name, {}))

    def uploads(self) -> list[str]:
        """Names of the uploads that received at least one part, in the order their first part came."""
        with self._lock:
            return list(self._state.parts)

    @property
    def upload_url_requests(self) -> list[dict[str, Any]]:
        """Bodies of ``POST /agent/export/upload-url`` requests."""
        with self._lock:
            return list(self._state.upload_url_requests)

    def part_attempts(self, name: str = "job-1") -> int:
        """How many PUTs reached the part handler for ``name`` (retries included)."""
        with self._lock:
            return self._state.part_attempts.get(name, 0)

    def assembled(self, name: str = "job-1") -> bytes:
        """Parts 0..n-1 of ``name`` concatenated; ``KeyError`` if one is missing."""
        parts = self.parts(name)
        return b"".join(parts[i] for i in range(len(parts)))

    @property
    def results(self) -> list[dict[str, Any]]:
        """Bodies of export result reports."""
        with self._lock:
            return list(self._state.results)

    @property
    def log_batches(self) -> list[tuple[str, list[dict[str, Any]]]]:
        """``(stream, lines)`` per log batch received."""
        with self._lock:
            return list(self._state.log_batches)

    @property
    def log_lines(self) -> list[dict[str, Any]]:
        """Every log line received, in order."""
        return [line for _, lines in self.log_batches for line in lines]


class _Handler(BaseHTTPRequestHandler):
    backend: FakeBackend
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return  # keep test output clean

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        self._handle()

    def do_PUT(self) -> None:  # noqa: N802 - stdlib naming
        self._handle()

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._handle()

    def _record(self, status: int, size: int) -> None:
        with self.backend._lock:
            self.backend._state.requests.append(
                RecordedRequest(self.command, self.path, dict(self.headers.items()), size, status)
            )

    def _answer(
        self, status: int, body: dict[str, Any], size: int, headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(body).encode()
        self._record(status, size)  # before answering, so a client that got its answer sees the record
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        path = self.path.split("?", 1)[0]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        backend = self.backend
        slow = backend._take_fault(path, ("slow",))
        if slow is not None:
            time.sleep(slow.seconds)
        fault = backend._take_fault(path, ("status", "drop"))
        if fault is not None and fault.kind == "drop":
            self._record(0, len(body))
            self.close_connection = True
            self.connection.close()
            return
        if fault is not None:
            extra = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            self._answer(fault.status, {"error": "injected failure"}, len(body), extra)
            return
        if self.command == "POST" and path == "/agent/enroll":
            self._enroll(body)
            return
        if self.headers.get("Authorization") != backend.api_key:
            self._answer(401, {"error": "missing or wrong api key"}, len(body))
            return
        match = _PART_PATH.match(path)
        if self.command == "PUT" and match:
            self._part(match["name"], int(match["n"]), body)
        elif self.command == "POST" and path == "/agent/export/result":
            with backend._lock:
                backend._state.results.append(json.loads(body))
            self._answer(202, {"ok": True}, len(body))
        elif self.command == "POST" and path == "/agent/export/upload-url":
            self._upload_url(body)
        elif self.command == "POST" and path.startswith("/agent/logs/"):
            self._logs(path.removeprefix("/agent/logs/"), body)
        elif self.command == "GET" and (oauth := _OAUTH_PATH.match(path)):
            self._oauth(oauth["ref_type"], urllib.parse.unquote(oauth["token"]))
        else:
            self._answer(404, {"error": f"no route {self.command} {path}"}, len(body))

    def _oauth(self, ref_type: str, refresh_token: str) -> None:
        backend = self.backend
        with backend._lock:
            tokens = backend._state.oauth.get((ref_type, refresh_token))
            token = (tokens.pop(0) if len(tokens) > 1 else tokens[0]) if tokens else None
        if token is None:
            self._answer(401, {"error": "unknown refresh token"}, 0)
            return
        self._answer(200, {"access_token": token}, 0)

    def _enroll(self, body: bytes) -> None:
        backend = self.backend
        try:
            request = json.loads(body)
            code, device_id = str(request["code"]), str(request["device_id"])
        except (ValueError, KeyError, TypeError):
            self._answer(400, {"error": "body must be JSON with code and device_id"}, len(body))
            return
        with backend._lock:
            known = code in backend._state.codes
            previous = backend._state.enrolled_devices.get((code, device_id))
        if not known and previous is None:
            self._answer(403, {"error": "unknown or expired enroll code"}, len(body))
            return
        answer = previous or {
            "api_key": backend.api_key,
            "customer_id": backend.customer_id,
            "channel": backend.channel,
            **({"secrets": dict(backend.enroll_secrets)} if backend.enroll_secrets else {}),
        }
        with backend._lock:
            backend._state.enrollments.append(request)
            backend._state.enrolled_devices[(code, device_id)] = answer
            backend._state.codes.discard(code)  # one-time code
        self._answer(200, answer, len(body))

    def _upload_url(self, body: bytes) -> None:
        try:
            request = json.loads(body)
            export_id = str(request["export_id"])
        except (ValueError, KeyError, TypeError):
            self._answer(400, {"error": "body must be JSON with export_id"}, len(body))
            return
        with self.backend._lock:
            self.backend._state.upload_url_requests.append(request)
        self._answer(200, {"upload_url": self.backend.upload_url(export_id)}, len(body))

    def _part(self, name: str, n: int, body: bytes) -> None:
        backend = self.backend
        with backend._lock:
            backend._state.part_attempts[name] = backend._state.part_attempts.get(name, 0) + 1
            backend._state.parts.setdefault(name, {})[n] = body
        size = len(body)
        fault = backend._take_fault(self.path, ("size",))
        if fault is not None:
            size += fault.delta
        self._answer(202, {"part": n, "size": size}, len(body))

    def _logs(self, stream: str, body: bytes) -> None:
        if self.headers.get("Content-Encoding") != "gzip":
            self._answer(415, {"error": "logs must be gzip"}, len(body))
            return
        try:
            text = gzip.decompress(body).decode()
            lines = [json.loads(line) for line in text.splitlines() if line]
        except (OSError, ValueError) as exc:
            self._answer(400, {"error": f"bad log batch: {exc}"}, len(body))
            return
        with self.backend._lock:
            self.backend._state.log_batches.append((stream, lines))
        self._answer(202, {"ok": True, "lines": len(lines)}, len(body))
