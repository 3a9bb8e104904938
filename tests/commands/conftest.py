"""Fixtures for the interactive commands: a root. Git repos, the git HTTP server and the Prefect server are
the suite's (``tests/conftest.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import GitServer

AGENT = str(Path(sys.executable).parent / "pinpoint-agent")
__all__ = ["AGENT", "GitServer"]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """An agent root that does not exist yet (so a test can see that bad input creates nothing)."""
    return tmp_path / "root"


