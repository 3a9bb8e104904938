"""Fixtures for backend forwarding: a fake backend on loopback, an enrolled root, fast retries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pinpoint_agent.backend import EnrolledConfig, RetryPolicy, enroll, make_client
from pinpoint_agent.testing.fake_backend import FakeBackend

API_KEY = "pk-live-" + "5e1f0a9b3c7d" * 3  # long and unique: a grep for it cannot hit by chance


@pytest.fixture
def backend() -> Iterator[FakeBackend]:
    """A running fake backend whose api key is ``API_KEY``."""
    with FakeBackend(api_key=API_KEY, customer_id="cust-fwd") as fake:
        yield fake


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "root"


@pytest.fixture
def enrolled(backend: FakeBackend, root: Path) -> EnrolledConfig:
    """``root`` enrolled with ``backend`` (config.json written by the real ``enroll``)."""
    with make_client(timeout=5.0) as anonymous:
        return enroll("good-code", backend_url=backend.url, root=root, client=anonymous,
                      retry=RetryPolicy(attempts=2, initial=0.01, maximum=0.02))


@pytest.fixture
def fast_retry() -> RetryPolicy:
    return RetryPolicy(attempts=3, initial=0.01, maximum=0.05)
