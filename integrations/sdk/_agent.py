"""The integration's client of the agent's callback service: sessions, batched sends, progress."""

from __future__ import annotations

import queue
import sys
import threading
import time
from array import array
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TypeVar

import grpc
import orjson

from pinpoint_agent.errors import FatalError, NotSupportedError, SessionError
from pinpoint_agent.ids import NO_KEY, object_key
from pinpoint_agent.protocol import GitRepoRequest
from pinpoint_agent.protocol._gen import pinpoint_pb2 as pb
from pinpoint_agent.protocol._gen import pinpoint_pb2_grpc

T = TypeVar("T")

BATCH_OBJECTS = 2000
BATCH_BYTES = 4 * 1024 * 1024
PROGRESS_INTERVAL = 1.0


def _little_endian(values: array[int]) -> bytes:
    if sys.byteorder != "little":
        values = array("q", values)
        values.byteswap()
    return values.tobytes()


def _call(fn: Callable[..., T], request: Any, what: str) -> T:
    """The one place where the SDK turns gRPC failures of callbacks into the error tree."""
    try:
        return fn(request)
    except grpc.RpcError as exc:
        code, details = exc.code(), exc.details()
        if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION,
                    grpc.StatusCode.NOT_FOUND):
            raise SessionError(f"{what}: {details}") from exc
        if code == grpc.StatusCode.UNIMPLEMENTED:
            raise NotSupportedError(f"{what}: {details}") from exc
        raise FatalError(f"{what} failed: {code.name} {details}") from exc


class _Sender:
    """Sends batches, progress reports and the ``SessionDone`` after a session's last batch, from a background
    thread, in order: encoding overlaps the agent's writing, and neither reporting progress nor ending a
    session stalls the integration while the agent drains its batches.

    Batches are bounded: a producer faster than the agent waits instead of growing memory. A failed call is
    raised in the integration's thread at its next send, progress, session end or flush, and nothing queued
    after it is sent (the agent rolls back the sessions left open).
    """

    def __init__(self, stub: pinpoint_pb2_grpc.AgentStub) -> None:
        self._stub = stub
        # Batches hold memory: at most one waits while one is sent (enough overlap; more batches in flight
        # only cost cache: A/B on the mock's 200k objects, ~97k obj/s with one waiting, ~91k with four).
        # Progress reports and session ends are small and never wait for a slot: when they did, every
        # session's end cost the integration two round trips (100 sessions of 2,000 objects into a counting
        # host: 55-68k obj/s then, 72-109k since).
        self._batch_slots = threading.Semaphore(2)
        self._queue: queue.Queue[tuple[Callable[[], object], bool] | None] = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="agent-sender", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            call, is_batch = item
            try:
                if self._error is None:
                    call()
            except BaseException as exc:  # noqa: BLE001 (kept and raised in the caller's thread)
                self._error = exc
            finally:
                if is_batch:
                    self._batch_slots.release()
                self._queue.task_done()
        self._queue.task_done()

    def put(self, session_id: int, objects: list[bytes], dedup: bytes) -> None:
        """Queues a batch; waits while two batches are queued or being sent."""
        request = pb.SendExportedRequest(session_id=session_id, objects=objects, dedup=dedup)
        self.raise_error()
        self._batch_slots.acquire()
        self._queue.put((lambda: _call(self._stub.SendExported, request, "SendExported"), True))

    def put_call(self, call: Callable[[], object]) -> None:
        """Queues a small call (progress, session end) behind what is queued; never waits."""
        self.raise_error()
        self._queue.put((call, False))

    def flush(self) -> None:
        self._queue.join()
        self.raise_error()

    def raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)


class Session:
    """A model session (can send objects) or a tracking session (progress and nested tokens only).

    As a context manager it ends with ``done()`` on success and ``rollback()`` on an exception.
    """

    def __init__(self, agent: AgentClient, session_id: int, name: str, tracking: bool, last_processed: str) -> None:
        self.agent = agent
        self.id = session_id
        self.name = name
        self.tracking = tracking
        self.last_processed = last_processed
        self.started_at = datetime.now(UTC)
        self._buffer: list[bytes] = []
        self._keys = array("q")  # dedup (key, hash) per buffered object, sent beside them
        self._buffered_bytes = 0
        # The throttle starts with the session: a short session sends no progress of its own (its end says
        # it is complete), which saves a call per session.
        self._last_progress = time.monotonic()
        self._closed = False

    def child(self, name: str, object_id: str, object_name: str, *, tracking: bool = False) -> Session:
        """Starts a session nested under ``object_id`` of this one; its token is kept per object."""
        return self.agent._start(tracking, name, self.id, object_id, object_name)

    def send(self, obj: dict[str, Any] | bytes) -> None:
        """Queues one object (a dict or its JSON bytes); batches go out thousands at a time."""
        self.send_many((obj,))

    def send_many(self, objs: Iterable[dict[str, Any] | bytes]) -> None:
        """Queues objects as ``send`` does, in one tight loop: cheaper per object when an integration has
        a page or a chunk of them at hand."""
        if self.tracking:
            raise SessionError(f"session {self.name!r} is a tracking session and cannot send objects")
        dumps, key_of = orjson.dumps, object_key
        max_objects, max_bytes = self.agent.batch_objects, self.agent.batch_bytes
        buffer, keys, size = self._buffer, self._keys, self._buffered_bytes
        try:
            for obj in objs:
                if isinstance(obj, bytes):
                    data, (key, code) = obj, NO_KEY
                else:
                    data, (key, code) = dumps(obj), key_of(obj)
                buffer.append(data)
                keys.append(key)
                keys.append(code)
                size += len(data)
                if len(buffer) >= max_objects or size >= max_bytes:
                    self._flush()
                    buffer, keys, size = self._buffer, self._keys, 0
        finally:  # an object that cannot be encoded (or a failing iterator) leaves the count right
            self._buffered_bytes = size

    def _flush(self) -> None:
        if self._buffer:
            self.agent._sender.put(self.id, self._buffer, _little_endian(self._keys))
            self._buffer, self._keys, self._buffered_bytes = [], array("q"), 0

    def progress(self, current: int, total: int, *, force: bool = False) -> None:
        """Reports progress, at most about once a second unless ``force``; queued like a batch, so it returns
        without waiting for the agent."""
        now = time.monotonic()
        if not force and now - self._last_progress < self.agent.progress_interval:
            return
        self._last_progress = now
        # From the sender thread, in order with the session's batches: a call answered while the agent is
        # busy writing took 4-6 ms (measured), which the integration's thread would otherwise wait out.
        request = pb.SessionProgressRequest(session_id=self.id, current=current, total=total)
        stub = self.agent._stub
        self.agent._sender.put_call(lambda: _call(stub.SessionProgress, request, "SessionProgress"))

    def done(self, last_processed: str | None = None) -> None:
        """Ends the session; the token defaults to the session's start time (RFC 3339).

        Returns without waiting: ``SessionDone`` goes out after the session's last batch, from the sender
        thread. Its failure is raised at the integration's next send, session end or ``flush`` (the SDK
        flushes when ``export`` returns, so an export never reports success over a session that failed)."""
        if self._closed:
            return
        self._flush()
        token = last_processed if last_processed is not None else self.started_at.isoformat()
        request = pb.SessionDoneRequest(session_id=self.id, last_processed=token)
        stub = self.agent._stub
        self.agent._sender.put_call(lambda: _call(stub.SessionDone, request, "SessionDone"))
        self._closed = True

    def rollback(self) -> None:
        """Ends the session discarding what it sent; the previous token stays."""
        if self._closed:
            return
        self._buffer, self._keys, self._buffered_bytes = [], array("q"), 0
        self._closed = True
        try:
            self.agent._sender.flush()
        except Exception:  # noqa: BLE001 (rolling back anyway; the send error is what the caller sees)
            pass
        _call(self.agent._stub.SessionRollback, pb.SessionRollbackRequest(session_id=self.id), "SessionRollback")

    def __enter__(self) -> Session:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        if et is None:
            self.done()
        else:
            self.rollback()


class AgentClient:
    """What an integration calls back into the agent with."""

    def __init__(self, channel: grpc.Channel, *, batch_objects: int = BATCH_OBJECTS,
                 batch_bytes: int = BATCH_BYTES, progress_interval: float = PROGRESS_INTERVAL) -> None:
        self._channel = channel
        self._stub = pinpoint_pb2_grpc.AgentStub(channel)
        self._sender = _Sender(self._stub)
        self.batch_objects = batch_objects
        self.batch_bytes = batch_bytes
        self.progress_interval = progress_interval

    def _start(self, tracking: bool, name: str, parent: int, object_id: str, object_name: str) -> Session:
        resp = _call(self._stub.SessionStart, pb.SessionStartRequest(
            is_tracking=tracking, name=name, parent_session_id=parent, parent_object_id=object_id,
            parent_object_name=object_name), "SessionStart")
        return Session(self, resp.session_id, name, tracking, resp.last_processed)

    def session(self, name: str, *, tracking: bool = False) -> Session:
        """Starts a root session (a model session named after the model, or a tracking session)."""
        return self._start(tracking, name, 0, "", "")

    def export_git_repo(self, request: GitRepoRequest) -> None:
        """Queues a repo for git processing on the agent side."""
        _call(self._stub.ExportGitRepo, request.to_proto(), "ExportGitRepo")

    def oauth_access_token(self) -> str:
        token: str = _call(self._stub.OAuthNewAccessToken, pb.Empty(), "OAuthNewAccessToken").token
        return token

    def oauth_access_token_from_refresh_token(self, name: str, refresh_token: str) -> str:
        req = pb.OAuthRefreshRequest(name=name, refresh_token=refresh_token)
        token: str = _call(self._stub.OAuthNewAccessTokenFromRefreshToken, req,
                           "OAuthNewAccessTokenFromRefreshToken").token
        return token

    def pause(self, message: str, resume_at: datetime) -> None:
        """Tells the agent the integration waits (e.g. a rate limit) until ``resume_at``."""
        _call(self._stub.SendPauseEvent, pb.PauseEventRequest(message=message, resume_date=resume_at.isoformat()),
              "SendPauseEvent")

    def resume(self, message: str) -> None:
        _call(self._stub.SendResumeEvent, pb.ResumeEventRequest(message=message), "SendResumeEvent")

    def webhook_url(self) -> str:
        url: str = _call(self._stub.GetWebhookURL, pb.Empty(), "GetWebhookURL").url
        return url

    def flush(self) -> None:
        self._sender.flush()

    def close(self) -> None:
        self._sender.close()
        self._channel.close()
