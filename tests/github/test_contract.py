"""The SDK's contract suite, run against the github integration (its export against the fake GitHub)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from integrations.sdk.testing import IntegrationContract
from tests.github.fake_github import TOKEN, FakeGitHub


class TestGitHubContract(IntegrationContract):
    integration_name = "github"
    config = {"url": "http://127.0.0.1:9", "api_key": TOKEN, "organization": "acme"}
    supported = {"export"}  # webhooks without X-GitHub-Event answer "not supported", as the contract checks

    @pytest.fixture(autouse=True)
    def _fake_github(self) -> Iterator[None]:
        """Points the contract's config at a running fake GitHub (autouse: before the contract's fixtures)."""
        with FakeGitHub() as fake:
            type(self).config = {"url": fake.url, "api_key": TOKEN, "organization": "acme", "per_page": 50}
            yield
