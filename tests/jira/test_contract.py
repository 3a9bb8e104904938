"""The SDK's contract suite, run against the jira integration (its export against the fake Jira)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from integrations.sdk.testing import IntegrationContract
from pinpoint_agent.protocol import IntegrationType
from tests.jira.fake_jira import FakeJira


class TestJiraContract(IntegrationContract):
    integration_name = "jira"
    integration_type = IntegrationType.WORK
    config = {"url": "http://127.0.0.1:9", "access_token": "x"}
    # The contract's workconfig call is answered (Jira onboards work config); webhooks without webhookEvent and
    # unknown mutations answer "not supported", as the contract checks.
    supported = {"export", "onboard_workconfig"}

    @pytest.fixture(autouse=True)
    def _fake_jira(self) -> Iterator[None]:
        """Points the contract's config at a running fake Jira Cloud (autouse: before the contract's fixtures)."""
        with FakeJira(cloud=True) as fake:
            type(self).config = fake.config(page_size=5)
            yield
