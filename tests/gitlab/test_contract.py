"""The SDK's contract suite, run against the gitlab integration (its export against the fake GitLab), as a
code integration and as a work integration."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from integrations.sdk.testing import IntegrationContract
from pinpoint_agent.protocol import IntegrationType
from tests.gitlab.fake_gitlab import USER_TOKEN, FakeGitLab


class TestGitLabContract(IntegrationContract):
    integration_name = "gitlab"
    config = {"url": "http://127.0.0.1:9", "access_token": USER_TOKEN, "groups": ["acme"]}
    supported = {"export"}  # webhooks without X-Gitlab-Event answer "not supported", as the contract checks

    @pytest.fixture(autouse=True)
    def _fake_gitlab(self) -> Iterator[None]:
        """Points the contract's config at a running fake GitLab (autouse: before the contract's fixtures)."""
        with FakeGitLab() as fake:
            type(self).config = {"url": fake.url, "access_token": USER_TOKEN, "groups": ["acme"], "per_page": 50}
            yield


class TestGitLabWorkContract(TestGitLabContract):
    integration_type = IntegrationType.WORK
