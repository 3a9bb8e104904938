"""Log shipping: gzip JSON-lines batches, outage survival within a bound, flush on close."""

from __future__ import annotations

import time

import httpx

from pinpoint_agent.backend import EnrolledConfig, LogShipper
from pinpoint_agent.testing.fake_backend import FakeBackend


def _wait_for(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


def _shipper(client: httpx.Client, config: EnrolledConfig, **kwargs: object) -> LogShipper:
    options: dict[str, object] = {
        "stream": "run",
        "flush_interval": 0.05,
        "backoff_initial": 0.01,
        "backoff_max": 0.05,
    }
    options.update(kwargs)
    return LogShipper(client, backend_url=config.backend_url, **options)  # type: ignore[arg-type]


def test_batches_are_gzip_json_lines(backend: FakeBackend, client: httpx.Client, config: EnrolledConfig) -> None:
    """Lines go out in batches of at most max_batch_lines, gzip-encoded JSON lines, in order."""
    with _shipper(client, config, max_batch_lines=10, flush_interval=60.0) as shipper:
        for i in range(25):
            shipper.ship({"event": "line", "i": i, "level": "info"})
        _wait_for(lambda: len(backend.log_lines) >= 20)  # two full batches leave without waiting
    assert [line["i"] for line in backend.log_lines] == list(range(25))  # close flushed the last 5
    assert [len(lines) for _, lines in backend.log_batches] == [10, 10, 5]
    assert {stream for stream, _ in backend.log_batches} == {"run"}
    posts = [r for r in backend.requests if r.path == "/agent/logs/run"]
    assert all(r.headers["Content-Encoding"] == "gzip" for r in posts)
    assert all(r.headers["Content-Type"] == "application/x-ndjson" for r in posts)
    assert shipper.stats.sent_lines == 25 and shipper.stats.dropped_lines == 0


def test_interval_sends_a_partial_batch(
    backend: FakeBackend, client: httpx.Client, config: EnrolledConfig
) -> None:
    """A batch smaller than the size limits still leaves once its oldest line is flush_interval old."""
    with _shipper(client, config, max_batch_lines=1000) as shipper:
        shipper.ship({"event": "lonely"})
        _wait_for(lambda: shipper.stats.sent_lines == 1, timeout=2.0)
        assert backend.log_lines == [{"event": "lonely"}]
        assert shipper.stats.buffered_lines == 0


def test_outage_within_bound_loses_nothing(
    backend: FakeBackend, client: httpx.Client, config: EnrolledConfig
) -> None:
    """Through 503s and dropped connections, lines are kept and delivered once, in order, afterwards."""
    backend.fail_next(15, status=503, path_prefix="/agent/logs")
    backend.drop_next(3, path_prefix="/agent/logs")
    with _shipper(client, config, max_batch_lines=7, max_buffer_lines=1000) as shipper:
        for i in range(60):
            shipper.ship({"i": i})
        assert shipper.flush(timeout=10.0)
        stats = shipper.stats
    assert [line["i"] for line in backend.log_lines] == list(range(60))
    assert stats.dropped_lines == 0 and stats.sent_lines == 60
    assert stats.last_error is not None  # the outage was seen, and survived


def test_long_outage_drops_oldest_and_counts(
    backend: FakeBackend, client: httpx.Client, config: EnrolledConfig
) -> None:
    """When the backend is down for long, memory stays bounded: the oldest lines are dropped and counted."""
    backend.fail_next(10**6, status=503, path_prefix="/agent/logs")
    with _shipper(client, config, max_batch_lines=5, max_buffer_lines=20) as shipper:
        for i in range(100):
            shipper.ship({"i": i})
        _wait_for(lambda: shipper.stats.buffered_lines <= 20)
        assert shipper.stats.buffered_lines <= 20 + 5  # buffer bound plus at most one batch in flight
        backend.clear_faults()
        assert shipper.flush(timeout=5.0)
        stats = shipper.stats
    assert [line["i"] for line in backend.log_lines] == list(range(80, 100))
    assert stats.dropped_lines == 80 and stats.sent_lines == 20


def test_close_gives_up_after_its_timeout(
    backend: FakeBackend, client: httpx.Client, config: EnrolledConfig
) -> None:
    """close() against a dead backend returns within its timeout and counts the unsent lines as dropped."""
    backend.fail_next(10**6, status=503, path_prefix="/agent/logs")
    shipper = _shipper(client, config)
    for i in range(10):
        shipper.ship({"i": i})
    started = time.monotonic()
    shipper.close(timeout=0.3)
    assert time.monotonic() - started < 2.0
    assert shipper.stats.dropped_lines == 10 and shipper.stats.buffered_lines == 0


def test_rejected_batch_is_dropped_not_retried(
    backend: FakeBackend, client: httpx.Client, config: EnrolledConfig
) -> None:
    """A 4xx answer drops that batch (counted as rejected) and later batches still go out."""
    backend.fail_next(1, status=400, path_prefix="/agent/logs")
    with _shipper(client, config, max_batch_lines=3, flush_interval=60.0) as shipper:
        for i in range(3):
            shipper.ship({"i": i})
        _wait_for(lambda: shipper.stats.rejected_lines == 3)
        shipper.ship({"i": 3})
    assert [line["i"] for line in backend.log_lines] == [3]


def test_usable_as_structlog_processor(
    backend: FakeBackend, client: httpx.Client, config: EnrolledConfig
) -> None:
    """As a structlog processor the shipper forwards a copy of each event with its level and returns it."""
    import structlog

    with _shipper(client, config) as shipper:
        logger = structlog.wrap_logger(
            structlog.testing.CapturingLogger(), processors=[shipper, structlog.processors.JSONRenderer()]
        )
        logger.warning("disk almost full", free_mb=12)
    assert backend.log_lines == [{"event": "disk almost full", "free_mb": 12, "level": "warning"}]
