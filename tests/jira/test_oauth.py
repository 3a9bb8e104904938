"""OAuth 2.0 (3LO) end to end: the agent holds the refresh token, gets access tokens from the (fake) backend's
refresh endpoint when the jira plugin calls OAuthNewAccessToken, and an expired access token is replaced."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from pinpoint_agent.backend import RetryPolicy
from pinpoint_agent.config import AgentConfig
from pinpoint_agent.errors import ConfigError, NotSupportedError
from pinpoint_agent.exporter import ExportJob, backend_target, run_integration
from pinpoint_agent.host.callbacks import BackendOAuth, Callbacks, oauth_ref_type
from pinpoint_agent.protocol import IntegrationConfig, IntegrationType
from pinpoint_agent.root import Root
from pinpoint_agent.testing.fake_backend import FakeBackend
from tests.github.test_cli import every_file_text
from tests.jira.conftest import CUSTOMER, read_objects
from tests.jira.fake_jira import FakeJira

REFRESH = "refresh-token-SECRET-42"


def _export(root: Path, backend: FakeBackend, entry: IntegrationConfig) -> dict:
    agent = AgentConfig(customer_id=CUSTOMER, backend_url=backend.url, api_key=SecretStr(backend.api_key))
    job = ExportJob.begin(Root(root), agent)
    manager = job.manager(entry)
    try:
        outcome = run_integration(job, entry, manager)
        result = job.finish([outcome], [])
    finally:
        job.state.close()
    return {"result": result["integrations"][0], "objects": read_objects(job.export_dir)}


def test_oauth_export_with_an_expired_access_token(cloud: FakeJira, tmp_path: Path) -> None:
    """The first access token the backend hands out has expired at Jira: the plugin gets a 401, asks the agent
    again, the agent asks the backend's refresh endpoint, and the export completes; neither the refresh token
    nor an access token is in any file."""
    cloud.expired_tokens.add("access-OLD-SECRET")
    cloud.oauth_tokens.add("access-NEW-SECRET")
    with FakeBackend() as backend:
        backend.oauth_grant("jira", REFRESH, ["access-OLD-SECRET", "access-NEW-SECRET"])
        entry = IntegrationConfig(id="j1", name="jira-cloud", type=IntegrationType.WORK,
                                  config={"url": cloud.url, "flavor": "cloud"}, use_oauth=True,
                                  refresh_token=REFRESH)
        run = _export(tmp_path / "root", backend, entry)
        refreshes = [r for r in backend.requests if r.path.startswith("/oauth/jira/refresh/")]
    assert run["result"]["error"] == "" and len(run["objects"]["work.Issue"]) == 21
    assert len(refreshes) == 2  # one token, then one more after Jira's 401
    assert all(r.headers.get("Authorization") == backend.api_key for r in refreshes)
    text = every_file_text(tmp_path / "root")
    assert REFRESH not in text and "access-OLD-SECRET" not in text and "access-NEW-SECRET" not in text


def test_oauth_refresh_refused_is_a_clean_error(tmp_path: Path) -> None:
    """A refresh token the backend does not know is a ConfigError that names neither the token nor the url."""
    with FakeBackend() as backend:
        agent = AgentConfig(customer_id=CUSTOMER, backend_url=backend.url, api_key=SecretStr(backend.api_key))
        target = backend_target(Root(tmp_path / "r"), agent)
        assert target is not None
        oauth = BackendOAuth(target, "jira", "unknown-SECRET", retry=RetryPolicy(attempts=1))
        with pytest.raises(ConfigError) as err:
            oauth.access_token()
    assert "unknown-SECRET" not in str(err.value) and "/oauth/" not in str(err.value) and "401" in str(err.value)
    with pytest.raises(NotSupportedError, match="refresh_token"):
        Callbacks().oauth_access_token()
    assert [oauth_ref_type(n) for n in ("jira-cloud", "jira-hosted", "jira", "github")] == [
        "jira", "jira", "jira", "github"]


def test_one_shot_commands_get_oauth_tokens_too(cloud: FakeJira, tmp_path: Path) -> None:
    """An interactive command (onboarding here) on an entry with a refresh token gets its access token from
    the backend's refresh endpoint, as an export does."""
    from pinpoint_agent import interactive
    from pinpoint_agent.protocol import OnboardObjectType

    cloud.oauth_tokens.add("access-ONE-SECRET")
    with FakeBackend() as backend:
        backend.oauth_grant("jira", REFRESH, ["access-ONE-SECRET"])
        entry = IntegrationConfig(id="j1", name="jira-cloud", type=IntegrationType.WORK,
                                  config={"url": cloud.url, "flavor": "cloud"}, use_oauth=True, refresh_token=REFRESH)
        agent = AgentConfig(customer_id=CUSTOMER, backend_url=backend.url, api_key=SecretStr(backend.api_key))
        res = interactive.export_onboard_data(interactive.Target(entry=entry, agent=agent, root=tmp_path / "root"),
                                              OnboardObjectType.PROJECTS)
        refreshes = [r for r in backend.requests if r.path.startswith("/oauth/jira/refresh/")]
    assert res["success"] is True and res["data"], res
    assert len(refreshes) >= 1


def test_warm_plugins_of_the_run_service_get_oauth_tokens(cloud: FakeJira, tmp_path: Path) -> None:
    """The ``run`` service's warm plugin (one process, leased twice) gets access tokens from the backend like a
    one-shot command's; a lease whose agent config has no backend leaves the plugin without OAuth."""
    from pinpoint_agent import interactive
    from pinpoint_agent.protocol import OnboardObjectType
    from pinpoint_agent.service._plugins import WarmPlugins

    cloud.oauth_tokens.add("access-WARM-SECRET")
    warm = WarmPlugins()
    hook = interactive.plugin_source.set(warm.lease)
    try:
        with FakeBackend() as backend:
            backend.oauth_grant("jira", REFRESH, ["access-WARM-SECRET"])
            entry = IntegrationConfig(id="j1", name="jira-cloud", type=IntegrationType.WORK,
                                      config={"url": cloud.url, "flavor": "cloud"}, use_oauth=True,
                                      refresh_token=REFRESH)
            agent = AgentConfig(customer_id=CUSTOMER, backend_url=backend.url, api_key=SecretStr(backend.api_key))
            target = interactive.Target(entry=entry, agent=agent, root=tmp_path / "root")
            first = interactive.export_onboard_data(target, OnboardObjectType.PROJECTS)
            pid = warm.pids()[entry.display_key]
            second = interactive.export_onboard_data(target, OnboardObjectType.PROJECTS)
            same = warm.pids().get(entry.display_key) == pid  # the same warm process served both calls
            refreshes = [r for r in backend.requests if r.path.startswith("/oauth/jira/refresh/")]
            no_backend = interactive.Target(entry=entry, agent=AgentConfig(customer_id=CUSTOMER),
                                            root=tmp_path / "root")
            third = interactive.export_onboard_data(no_backend, OnboardObjectType.PROJECTS)
            alive = warm.pids().get(entry.display_key) == pid
    finally:
        interactive.plugin_source.reset(hook)
        warm.close()
    assert first["success"] is True and first["data"], first
    assert second["success"] is True and second["data"] == first["data"]
    assert same and alive  # one warm process served the three calls
    assert len(refreshes) >= 2
    assert third["success"] is False and "refresh_token" in third["error"]
