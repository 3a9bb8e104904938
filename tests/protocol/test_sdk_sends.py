"""The SDK's sending side against the host's real Agent service over gRPC (no plugin process needed):
batching by count and by size, keys beside the objects, and the order of everything sent."""

from __future__ import annotations

import time
from array import array
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

import grpc
import orjson
import pytest

from integrations.sdk import AgentClient
from integrations.sdk.testing import RecordingAgent
from pinpoint_agent.host.callbacks import AgentServicer
from pinpoint_agent.host.client import _CallbackServer
from pinpoint_agent.ids import NO_KEY, object_key


class BatchRecorder(RecordingAgent):
    def __init__(self) -> None:
        super().__init__()
        self.batches: list[tuple[int, array[int]]] = []

    def send_exported(self, session_id: int, objects: Sequence[bytes], dedup: bytes = b"") -> None:
        super().send_exported(session_id, objects, dedup)
        keys = array("q")
        keys.frombytes(dedup)
        self.batches.append((len(objects), keys))


R = TypeVar("R", bound=RecordingAgent)


@contextmanager
def serving(recorder: R) -> Iterator[tuple[R, grpc.Channel]]:
    """``recorder`` behind the host's real Agent service, and a channel to it."""
    server = _CallbackServer(AgentServicer(recorder, "sdk-test"))
    channel = grpc.insecure_channel(server.address)
    try:
        yield recorder, channel
    finally:
        channel.close()
        server.stop()


@pytest.fixture
def agent() -> Iterator[tuple[BatchRecorder, grpc.Channel]]:
    with serving(BatchRecorder()) as served:
        yield served


def pr(i: int) -> dict[str, object]:
    return {"id": f"pr{i}", "ref_type": "mock", "title": "x" * i, "hashcode": f"{i:016x}"}


def test_send_many_batches_by_count_and_keeps_order_and_keys(agent: tuple[BatchRecorder, grpc.Channel]) -> None:
    recorder, channel = agent
    client = AgentClient(channel, batch_objects=3)
    with client.session("sourcecode.PullRequest") as s:
        s.send(pr(0))
        s.send_many([pr(1), b'{"raw": true}', pr(3), pr(4)])
        s.send_many(pr(i) for i in range(5, 8))
    client.close()
    assert [n for n, _ in recorder.batches] == [3, 3, 2]
    sent = recorder.objects["sourcecode.PullRequest"]
    assert sent[2] == b'{"raw": true}'
    assert [orjson.loads(o).get("id") for o in sent] == ["pr0", "pr1", None, "pr3", "pr4", "pr5", "pr6", "pr7"]
    keys = array("q", [k for _, batch in recorder.batches for k in batch])
    expected = [object_key(orjson.loads(o)) if b'"id"' in o else NO_KEY for o in sent]
    assert list(zip(keys[::2], keys[1::2], strict=True)) == expected
    assert recorder.sessions[1]["done"] is not None


def test_send_many_batches_by_size(agent: tuple[BatchRecorder, grpc.Channel]) -> None:
    recorder, channel = agent
    client = AgentClient(channel, batch_objects=1000, batch_bytes=300)
    with client.session("sourcecode.PullRequest") as s:
        s.send_many(pr(i) for i in range(100, 110))  # ~180 bytes each: a batch reaches 300 bytes at 2
    client.close()
    assert [n for n, _ in recorder.batches] == [2, 2, 2, 2, 2]
    assert len(recorder.objects["sourcecode.PullRequest"]) == 10


def test_a_tracking_session_refuses_objects(agent: tuple[BatchRecorder, grpc.Channel]) -> None:
    from pinpoint_agent.errors import SessionError

    _, channel = agent
    client = AgentClient(channel)
    with client.session("organization", tracking=True) as s, pytest.raises(SessionError, match="tracking"):
        s.send_many([pr(1)])
    client.close()


def test_an_object_that_cannot_be_encoded_fails_alone(agent: tuple[BatchRecorder, grpc.Channel]) -> None:
    """orjson refuses it with the SDK's caller seeing the error; what was queued before it, and what is sent
    after it, still goes out in order, counted in the same batches."""
    recorder, channel = agent
    client = AgentClient(channel, batch_objects=1000, batch_bytes=300)
    with client.session("sourcecode.PullRequest") as s:
        with pytest.raises(TypeError):
            s.send_many([pr(100), {"id": "bad", "value": object()}])
        s.send_many([pr(101), pr(102)])  # pr(100) + pr(101) reach 300 bytes: one batch of 2, then 1
    client.close()
    assert [orjson.loads(o)["id"] for o in recorder.objects["sourcecode.PullRequest"]] == ["pr100", "pr101", "pr102"]
    assert [n for n, _ in recorder.batches] == [2, 1]


class SlowRecorder(BatchRecorder):
    """Records the order of calls; every batch takes ``batch_seconds`` to be accepted."""

    def __init__(self, batch_seconds: float) -> None:
        super().__init__()
        self.batch_seconds = batch_seconds
        self.calls: list[tuple[str, int, int]] = []

    def send_exported(self, session_id: int, objects: Sequence[bytes], dedup: bytes = b"") -> None:
        time.sleep(self.batch_seconds)
        super().send_exported(session_id, objects, dedup)
        self.calls.append(("batch", session_id, len(objects)))

    def session_progress(self, session_id: int, current: int, total: int) -> None:
        super().session_progress(session_id, current, total)
        self.calls.append(("progress", session_id, current))

    def session_done(self, session_id: int, last_processed: str) -> None:
        super().session_done(session_id, last_processed)
        self.calls.append(("done", session_id, 0))


@pytest.fixture
def slow_agent() -> Iterator[tuple[SlowRecorder, grpc.Channel]]:
    with serving(SlowRecorder(batch_seconds=0.2)) as served:
        yield served


def test_progress_and_done_queue_behind_the_batches_without_waiting(
        slow_agent: tuple[SlowRecorder, grpc.Channel]) -> None:
    """Progress and session ends go out in order after the session's batches, but the integration does not
    wait for them (only batches wait for a slot: two may be queued or in flight)."""
    recorder, channel = slow_agent
    client = AgentClient(channel, batch_objects=2)
    s = client.session("sourcecode.PullRequest")
    started = time.monotonic()
    s.send_many([pr(0), pr(1), pr(2), pr(3)])  # two batches: both take a slot, neither waits
    s.progress(4, 10, force=True)
    s.done("t1")
    queued_in = time.monotonic() - started
    client.close()  # waits until everything queued was sent
    assert queued_in < 0.15, f"the integration waited {queued_in:.2f} s for calls it only queued"
    assert recorder.calls == [("batch", 1, 2), ("batch", 1, 2), ("progress", 1, 4), ("done", 1, 0)]


def test_a_third_batch_waits_for_a_slot(slow_agent: tuple[SlowRecorder, grpc.Channel]) -> None:
    """Memory stays bounded: with two batches queued or in flight, the next one waits until one is sent."""
    recorder, channel = slow_agent
    client = AgentClient(channel, batch_objects=1)
    s = client.session("sourcecode.PullRequest")
    started = time.monotonic()
    s.send_many([pr(0), pr(1), pr(2)])
    assert time.monotonic() - started >= 0.15
    s.done()
    client.close()
    assert [c[0] for c in recorder.calls] == ["batch", "batch", "batch", "done"]


def test_progress_is_throttled_from_the_session_start_unless_forced(
        agent: tuple[BatchRecorder, grpc.Channel]) -> None:
    """A session's progress goes out at most about once per interval, counted from its start; ``force``
    always sends. A short session sends none: its end says it is complete."""
    recorder, channel = agent
    seen: list[int] = []
    recorder.session_progress = lambda sid, current, total: seen.append(current)  # type: ignore[method-assign]
    client = AgentClient(channel, progress_interval=0.3)
    with client.session("sourcecode.PullRequest") as s:
        s.progress(1, 10)  # within the interval of the start: not sent
        time.sleep(0.35)
        s.progress(2, 10)  # sent
        s.progress(3, 10)  # throttled
        s.progress(4, 10, force=True)  # sent
    client.close()
    assert seen == [2, 4]
