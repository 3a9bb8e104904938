"""Fixtures for the backend client tests: a running fake backend, an enrolled root and a fast retry policy."""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from pinpoint_agent.backend import EnrolledConfig, RetryPolicy, enroll, make_client
from pinpoint_agent.testing.fake_backend import FakeBackend

FAST = RetryPolicy(attempts=4, initial=0.01, maximum=0.05)


@pytest.fixture
def fast_retry() -> RetryPolicy:
    """Four attempts, waits of a few milliseconds."""
    return FAST


@pytest.fixture
def backend() -> Iterator[FakeBackend]:
    with FakeBackend(codes=("good-code",)) as fake:
        yield fake


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "pinpoint-root"


@pytest.fixture
def config(backend: FakeBackend, root: Path) -> EnrolledConfig:
    with make_client(timeout=5.0) as anonymous:
        return enroll("good-code", backend_url=backend.url, root=root, client=anonymous, retry=FAST)


@pytest.fixture
def client(config: EnrolledConfig) -> Iterator[httpx.Client]:
    with make_client(config, timeout=5.0) as c:
        yield c


@pytest.fixture
def make_export() -> Callable[..., dict[str, bytes]]:
    """The ``_make_export(root, export_id, files=, file_size=)`` helper."""
    return _make_export


def _make_export(root: Path, export_id: str, *, files: int, file_size: int) -> dict[str, bytes]:
    """Write ``files`` gzip files of about ``file_size`` random bytes; return path → bytes."""
    written: dict[str, bytes] = {}
    for i in range(files):
        model = ("sourcecode.Commit", "sourcecode.PullRequest")[i % 2]
        rel = f"{model}/{1700000000 + i}_{i + 1}.json.gz"
        data = gzip.compress(os.urandom(file_size), compresslevel=1)
        path = root / "exports" / export_id / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written[rel] = data
    return written
