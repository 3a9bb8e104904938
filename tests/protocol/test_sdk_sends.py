"""The SDK's sending side against the host's real Agent service over gRPC (no plugin process needed):
batching by count and by size, keys beside the objects, and the order of everything sent."""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Sequence

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


@pytest.fixture
def agent() -> Iterator[tuple[BatchRecorder, grpc.Channel]]:
    recorder = BatchRecorder()
    server = _CallbackServer(AgentServicer(recorder, "sdk-test"))
    channel = grpc.insecure_channel(server.address)
    try:
        yield recorder, channel
    finally:
        channel.close()
        server.stop()


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
