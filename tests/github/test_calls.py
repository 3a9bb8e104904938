"""validate-config, onboarding, mutations and webhooks, each through the github plugin as a real process."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from integrations.sdk.testing import RecordingAgent
from pinpoint_agent import ids
from pinpoint_agent.errors import ConfigError, NotSupportedError
from pinpoint_agent.host import IntegrationHost
from pinpoint_agent.protocol import CallConfig, IntegrationConfig, IntegrationType, OnboardObjectType
from tests.github.conftest import CUSTOMER
from tests.github.fake_data import node_id
from tests.github.fake_github import TOKEN, FakeGitHub


class Plugin:
    """A started github plugin and the config its calls carry."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.agent = RecordingAgent()
        self.entry = IntegrationConfig(
            id="gh1", name="github", type=IntegrationType.SOURCECODE, config=config
        )
        self.host = IntegrationHost.start(self.entry, self.agent)

    def call(self, **config: Any) -> CallConfig:
        entry = IntegrationConfig(
            id="gh1", name="github", type=IntegrationType.SOURCECODE, config={**self.entry.config, **config}
        )
        return CallConfig(integration=entry, customer_id=CUSTOMER)


@pytest.fixture
def plugin(gh_config: dict[str, Any]) -> Iterator[Plugin]:
    p = Plugin(gh_config)
    try:
        yield p
    finally:
        p.host.close()


def test_validate_config_accepts_a_good_token(plugin: Plugin, fake: FakeGitHub) -> None:
    """A working token and a visible org: no errors, a repo to test-clone (token only in repo_credentials) and
    the Enterprise server version."""
    result = plugin.host.validate_config(plugin.call())
    assert result.errors == []
    assert result.repo_url == f"{fake.url}/acme/api.git" and result.repo_credentials == TOKEN
    assert result.server_version == "3.12.0"


def test_validate_config_with_a_bad_token_says_so_without_the_token(plugin: Plugin) -> None:
    """A rejected token is one clear error naming api_key; neither the bad nor the good token appears."""
    bad = "ghp_BADtoken_0000000000000000"
    result = plugin.host.validate_config(plugin.call(api_key=bad))
    assert (
        len(result.errors) == 1 and "rejected the token" in result.errors[0] and "api_key" in result.errors[0]
    )
    assert bad not in result.errors[0] and TOKEN not in result.errors[0] and result.repo_credentials == ""


def test_validate_config_reports_an_invisible_org_and_a_missing_scope(
    plugin: Plugin, fake: FakeGitHub
) -> None:
    """An org the token cannot see, and a classic token without a repo scope, are each named."""
    assert plugin.host.validate_config(plugin.call(organization="nope")).errors == [
        "organization 'nope' is not visible to this token"
    ]
    fake.scopes = "read:org, gist"
    assert "lacks the repo scope" in plugin.host.validate_config(plugin.call()).errors[0]


def test_onboarding_users_and_repos(plugin: Plugin) -> None:
    """Onboarding lists the org's members (with names) and its repos as datamodel objects."""
    users = plugin.host.onboard_export(plugin.call(), OnboardObjectType.USERS).data
    assert [(u["username"], u["name"]) for u in users] == [
        ("alice", "Alice Liddell"),
        ("bob", "Bob Builder"),
        ("carol", "Carol Danvers"),
    ]
    repos = plugin.host.onboard_export(plugin.call(exclusions=["legacy"]), OnboardObjectType.REPOS).data
    assert [r["name"] for r in repos] == ["acme/api", "acme/web", "acme/docs"]
    with pytest.raises(NotSupportedError):
        plugin.host.onboard_export(plugin.call(), OnboardObjectType.CALENDARS)


@pytest.mark.parametrize(
    ("fn", "key", "field"),
    [("PR_SET_TITLE", "title", "title"), ("PR_SET_DESCRIPTION", "body_markdown", "description")],
)
def test_mutations_change_the_pr_and_return_it_refetched(
    plugin: Plugin, fake: FakeGitHub, fn: str, key: str, field: str
) -> None:
    """The mutation patches the PR on GitHub and returns the PR as GitHub now has it, with the exported id."""
    ref = node_id("PullRequest", 100002)
    result = plugin.host.mutate(plugin.call(), fn, {"ref_id": ref, key: "New **text**"})
    [pr] = result.mutated_objects["sourcecode.PullRequest"]
    repo_id = ids.repo_id(CUSTOMER, "github", node_id("Repository", 100))
    assert pr["id"] == ids.pull_request_id(CUSTOMER, ref, "github", repo_id) and pr[field] == "New **text**"
    assert len(pr["commit_shas"]) == 2 and pr["hashcode"] == ids.hashcode(pr)
    assert fake.data.find_pr("api", 2)["title" if key == "title" else "body"] == "New **text**"
    assert fake.count("/pulls/2", method="PATCH") == 1


def test_mutation_errors_are_clear(plugin: Plugin) -> None:
    """An unknown PR is a ConfigError naming the ref_id, bad data names the fields, an unknown fn is not
    supported."""
    with pytest.raises(ConfigError, match="no pull request with ref_id 'nope'"):
        plugin.host.mutate(plugin.call(), "PR_SET_TITLE", {"ref_id": "nope", "title": "x"})
    with pytest.raises(ConfigError, match='"title": str'):
        plugin.host.mutate(plugin.call(), "PR_SET_TITLE", {"ref_id": "x"})
    with pytest.raises(NotSupportedError):
        plugin.host.mutate(plugin.call(), "ISSUE_SET_TITLE", {})


def _hook(plugin: Plugin, event: str, payload: dict[str, Any], **config: Any) -> dict[str, list[Any]]:
    return plugin.host.webhook(
        plugin.call(**config), {"X-GitHub-Event": event}, orjson.dumps(payload)
    ).mutated_objects


def test_webhook_pull_request_returns_the_pr(plugin: Plugin, fake: FakeGitHub) -> None:
    """A pull_request delivery becomes the PR object, identical to what the export sends for it."""
    d = fake.data
    payload = {
        "action": "edited",
        "number": 1,
        "pull_request": d.pr_full("api", 1),
        "repository": d.repo("api"),
    }
    [pr] = _hook(plugin, "pull_request", payload)["sourcecode.PullRequest"]
    assert pr["identifier"] == "acme/api#1" and pr["status"] == "MERGED" and len(pr["commit_shas"]) == 2


def test_webhook_closed_names_who_closed_and_merged(plugin: Plugin, fake: FakeGitHub) -> None:
    """A ``closed`` delivery's sender is who closed the PR; a merged PR's merger comes from its payload; for
    another delivery on a closed PR one GraphQL query says who closed it."""
    d = fake.data
    closed = {"action": "closed", "number": 2, "pull_request": d.pr_full("api", 2), "repository": d.repo("api"),
              "sender": d.user("carol")}
    [pr] = _hook(plugin, "pull_request", closed)["sourcecode.PullRequest"]
    assert (pr["status"], pr["closed_by_ref_id"], pr["merged_by_ref_id"]) == ("CLOSED", node_id("User", 1003), "")
    merged = {"action": "closed", "number": 1, "pull_request": d.pr_full("api", 1), "repository": d.repo("api"),
              "sender": d.user("bob")}
    [pr] = _hook(plugin, "pull_request", merged)["sourcecode.PullRequest"]
    assert pr["merged_by_ref_id"] == pr["closed_by_ref_id"] == node_id("User", 1002)
    fake.reset_counts()
    edited = {**closed, "action": "edited"}  # not the closing: who closed it comes from GitHub, as in exports
    [pr] = _hook(plugin, "pull_request", edited)["sourcecode.PullRequest"]
    assert pr["closed_by_ref_id"] == node_id("User", 1003) and fake.count("graphql") == 1


def test_webhook_review_and_comment(plugin: Plugin, fake: FakeGitHub) -> None:
    """pull_request_review gives the review; issue_comment the PR comment, and nothing for a plain issue."""
    d = fake.data
    repo, pr = d.repo("api"), d.find_pr("api", 1)
    review = d.repos["api"].reviews[1][0]
    [r] = _hook(
        plugin,
        "pull_request_review",
        {"action": "submitted", "review": review, "pull_request": pr, "repository": repo},
    )["sourcecode.PullRequestReview"]
    assert r["state"] == "APPROVED" and r["pull_request_id"] == ids.pull_request_id(
        CUSTOMER, pr["node_id"], "github", ids.repo_id(CUSTOMER, "github", repo["node_id"])
    )
    comment = d.repos["api"].issue_comments[0]
    issue = {"number": 1, "node_id": node_id("Issue", 1), "pull_request": {"url": pr["url"]}}
    [c] = _hook(
        plugin, "issue_comment", {"action": "created", "issue": issue, "comment": comment, "repository": repo}
    )["sourcecode.PullRequestComment"]
    assert c["pull_request_id"] == r["pull_request_id"] and c["body"] == comment["body"]
    plain = {"number": 901, "node_id": node_id("Issue", 901)}
    assert (
        _hook(
            plugin,
            "issue_comment",
            {"action": "created", "issue": plain, "comment": comment, "repository": repo},
        )
        == {}
    )


def test_webhook_push_queues_git_for_the_repo(plugin: Plugin, fake: FakeGitHub) -> None:
    """A push queues ExportGitRepo for that repo (clone url without the token, token in credentials)."""
    assert (
        _hook(plugin, "push", {"ref": "refs/heads/main", "after": "abc", "repository": fake.data.repo("web")})
        == {}
    )
    [git] = plugin.agent.git
    assert (
        git.unique_name == "acme/web" and git.url == f"{fake.url}/acme/web.git" and git.credentials == TOKEN
    )


def test_webhook_signature_and_unknown_events(plugin: Plugin, fake: FakeGitHub) -> None:
    """With webhook_secret set, a bad signature is refused and a good one accepted; unknown events are not
    supported."""
    body = orjson.dumps({"ref": "refs/heads/main", "repository": fake.data.repo("web")})
    cfg = plugin.call(webhook_secret="s3cret-hook")
    with pytest.raises(ConfigError, match="signature"):
        plugin.host.webhook(cfg, {"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=00"}, body)
    good = "sha256=" + hmac.new(b"s3cret-hook", body, hashlib.sha256).hexdigest()
    plugin.host.webhook(cfg, {"X-GitHub-Event": "push", "X-Hub-Signature-256": good}, body)
    assert len(plugin.agent.git) == 1
    with pytest.raises(NotSupportedError, match="star"):
        plugin.host.webhook(plugin.call(), {"X-GitHub-Event": "star"}, b"{}")
