"""validate-config, onboarding, mutations and webhooks against the fake GitLab: in-process through the
integration's SDK surface, and once through the real plugin process."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from integrations.gitlab import GitLabIntegration
from integrations.sdk import Context
from integrations.sdk.testing import RecordingAgent
from pinpoint_agent.errors import ConfigError, NotSupportedError
from pinpoint_agent.host import IntegrationHost
from pinpoint_agent.protocol import CallConfig, GitRepoRequest, IntegrationConfig, IntegrationType, OnboardObjectType
from tests.gitlab.conftest import CUSTOMER
from tests.gitlab.fake_gitlab import ADMIN_TOKEN, USER_TOKEN, FakeGitLab

SECRET = "hook-secret-123"


def ctx(config: dict[str, Any], kind: IntegrationType = IntegrationType.SOURCECODE) -> Context:
    entry = IntegrationConfig(id="gl1", name="gitlab", type=kind, config=config)
    return Context(integration=entry, customer_id=CUSTOMER, reprocess_historical=False, agent=None)


class GitRecorder:
    """The agent's git queue as the webhook call sees it."""

    def __init__(self) -> None:
        self.requests: list[GitRepoRequest] = []

    def export_git_repo(self, request: GitRepoRequest) -> None:
        self.requests.append(request)


# -- validate-config ---------------------------------------------------------------------------------------
def test_validate_reports_version_and_a_clean_clone_url(fake: FakeGitLab, gl_config: dict[str, Any]) -> None:
    """A good config: no errors, the server version from /version, the first project's clone url (clean) and
    the token kept apart in repo_credentials."""
    result = GitLabIntegration().validate_config(ctx(gl_config))
    assert result.errors == [] and result.server_version == "16.11.2-ee"
    assert result.repo_url == f"{fake.url}/acme/api.git" and result.repo_credentials == USER_TOKEN


def test_validate_says_what_is_wrong_without_the_token(fake: FakeGitLab, gl_config: dict[str, Any]) -> None:
    """A wrong token and an unknown group each come back as one readable error naming no secret."""
    wrong = "glpat-WRONG-0000"
    bad = GitLabIntegration().validate_config(ctx({**gl_config, "access_token": wrong}))
    assert len(bad.errors) == 1 and "rejected the token" in bad.errors[0] and wrong not in bad.errors[0]
    missing = GitLabIntegration().validate_config(ctx({**gl_config, "groups": ["acme", "nope"]}))
    assert missing.errors == ["group 'nope' is not visible to this token"]


def test_bad_config_is_one_config_error_line() -> None:
    """Missing token, a url with credentials, a per_page out of range: one ConfigError line each, no token."""
    with pytest.raises(ConfigError, match="access_token .* is required"):
        GitLabIntegration().validate_config(ctx({"url": "https://gitlab.example"}))
    with pytest.raises(ConfigError, match="url must not carry credentials") as err:
        GitLabIntegration().validate_config(ctx({"url": "https://u:pw-SECRET@gitlab.example", "access_token": "t"}))
    assert "pw-SECRET" not in str(err.value)
    with pytest.raises(ConfigError, match="url must not carry a query string") as err:
        GitLabIntegration().validate_config(
            ctx({"url": "https://gitlab.example/?private_token=q-SECRET", "access_token": "t"})
        )
    assert "q-SECRET" not in str(err.value)
    with pytest.raises(ConfigError, match="per_page"):
        GitLabIntegration().validate_config(ctx({"access_token": "t", "per_page": 500}))


# -- onboarding --------------------------------------------------------------------------------------------
def test_onboard_users_repos_and_projects(fake: FakeGitLab, gl_config: dict[str, Any]) -> None:
    """users: the members (emails only with an admin token); repos: sourcecode.Repo; projects: work.Project."""
    g = GitLabIntegration()
    users = g.onboard_export(ctx(gl_config), OnboardObjectType.USERS)
    assert [u["username"] for u in users] == ["alice", "bob", "carol"] and all(u["email"] == "" for u in users)
    admin_users = g.onboard_export(ctx({**gl_config, "access_token": ADMIN_TOKEN}), OnboardObjectType.USERS)
    assert {u["username"]: u["email"] for u in admin_users}["bob"] == "bob@acme.example"
    repos = g.onboard_export(ctx(gl_config), OnboardObjectType.REPOS)
    assert [r["name"] for r in repos] == ["acme/api", "acme/web", "acme/platform/infra"]
    projects = g.onboard_export(ctx(gl_config), OnboardObjectType.PROJECTS)
    assert [p["identifier"] for p in projects] == ["acme/api", "acme/web", "acme/platform/infra"]
    with pytest.raises(NotSupportedError):
        g.onboard_export(ctx(gl_config), OnboardObjectType.CALENDARS)


# -- mutations ---------------------------------------------------------------------------------------------
def test_mr_title_and_description_mutations_change_gitlab_and_return_the_pr(
    fake: FakeGitLab, gl_config: dict[str, Any]
) -> None:
    """PR_SET_TITLE by identifier and PR_SET_DESCRIPTION by project_ref_id+number PUT the change and return
    the merge request as stored after it, with its commits."""
    g = GitLabIntegration()
    res = g.mutate(
        ctx(gl_config), "PR_SET_TITLE", {"identifier": "acme/api!2", "title": "New title", "ref_id": "511002"}
    )
    pr = res.mutated_objects["sourcecode.PullRequest"][0]
    assert pr["title"] == "New title" and pr["ref_id"] == "511002" and len(pr["commit_shas"]) == 2
    assert fake.count("/projects/11/merge_requests/2", "PUT") == 1
    res = g.mutate(ctx(gl_config), "PR_SET_DESCRIPTION", {"project_ref_id": "11", "number": 2, "body_markdown": "Why"})
    assert res.mutated_objects["sourcecode.PullRequest"][0]["description"] == "Why"
    with pytest.raises(ConfigError, match="does not match"):
        g.mutate(ctx(gl_config), "PR_SET_TITLE", {"identifier": "acme/api!3", "title": "x", "ref_id": "511002"})


def test_issue_mutations(fake: FakeGitLab, gl_config: dict[str, Any]) -> None:
    """ISSUE_ADD_COMMENT posts a note and returns it; ISSUE_SET_TITLE and ISSUE_SET_STATUS (close) return the
    issue as changed; an unknown status or target is a ConfigError."""
    g = GitLabIntegration()
    c = g.mutate(ctx(gl_config), "ISSUE_ADD_COMMENT", {"identifier": "acme/web#1", "body": "on it"})
    comment = c.mutated_objects["work.IssueComment"][0]
    assert comment["body"] == "on it" and fake.count("/projects/12/issues/1/notes", "POST") == 1
    t = g.mutate(ctx(gl_config), "ISSUE_SET_TITLE", {"identifier": "acme/web#1", "title": "Renamed"})
    assert t.mutated_objects["work.Issue"][0]["title"] == "Renamed"
    s = g.mutate(ctx(gl_config), "ISSUE_SET_STATUS", {"identifier": "acme/web#1", "status": "close"})
    assert s.mutated_objects["work.Issue"][0]["status"] == "closed"
    with pytest.raises(ConfigError, match="status must be one of"):
        g.mutate(ctx(gl_config), "ISSUE_SET_STATUS", {"identifier": "acme/web#1", "status": "frozen"})
    with pytest.raises(ConfigError, match="identifier"):
        g.mutate(ctx(gl_config), "ISSUE_SET_TITLE", {"identifier": "acme/web!1", "title": "x"})
    with pytest.raises(NotSupportedError):
        g.mutate(ctx(gl_config), "ISSUE_SET_PRIORITY", {})


# -- webhooks ----------------------------------------------------------------------------------------------
def _hook(event: str, payload: dict[str, Any], token: str = SECRET) -> tuple[dict[str, str], bytes]:
    return {"X-Gitlab-Event": event, "X-Gitlab-Token": token}, orjson.dumps(payload)


def test_webhooks_turn_events_into_objects(fake: FakeGitLab, gl_config: dict[str, Any]) -> None:
    """Merge Request, Note (on an MR and on an issue) and Issue events return the objects read back from the
    API; a system note returns nothing; Push queues git with the token only in credentials."""
    g = GitLabIntegration()
    cfg = {**gl_config, "webhook_secret": SECRET}
    project = {"id": 11, "path_with_namespace": "acme/api"}
    mr = g.webhook(
        ctx(cfg),
        *_hook(
            "Merge Request Hook",
            {"object_kind": "merge_request", "project": project, "object_attributes": {"iid": 1, "state": "merged"}},
        ),
    )
    assert mr.mutated_objects["sourcecode.PullRequest"][0]["identifier"] == "acme/api!1"
    note_id = fake.data.projects[11].notes[1][0]["id"]
    note = g.webhook(
        ctx(cfg),
        *_hook(
            "Note Hook",
            {
                "project": project,
                "merge_request": {"iid": 1},
                "object_attributes": {"id": note_id, "noteable_type": "MergeRequest"},
            },
        ),
    )
    assert note.mutated_objects["sourcecode.PullRequestComment"][0]["ref_id"] == str(note_id)
    system = g.webhook(
        ctx(cfg),
        *_hook(
            "Note Hook",
            {
                "project": project,
                "merge_request": {"iid": 1},
                "object_attributes": {"id": 1, "system": True, "noteable_type": "MergeRequest"},
            },
        ),
    )
    assert system.mutated_objects == {}
    issue = g.webhook(ctx(cfg), *_hook("Issue Hook", {"project": project, "object_attributes": {"iid": 2}}))
    assert issue.mutated_objects["work.Issue"][0]["identifier"] == "acme/api#2"
    inote_id = fake.data.projects[11].issue_notes[1][0]["id"]
    inote = g.webhook(
        ctx(cfg),
        *_hook(
            "Note Hook",
            {"project": project, "issue": {"iid": 1}, "object_attributes": {"id": inote_id, "noteable_type": "Issue"}},
        ),
    )
    assert inote.mutated_objects["work.IssueComment"][0]["body"] == "seen it"

    recorder = GitRecorder()
    push_ctx = ctx(cfg)
    push_ctx.agent = recorder  # type: ignore[assignment]
    g.webhook(push_ctx, *_hook("Push Hook", {"object_kind": "push", "project": project}))
    assert [(r.unique_name, r.url, r.credentials) for r in recorder.requests] == [
        ("acme/api", f"{fake.url}/acme/api.git", USER_TOKEN)
    ]


def test_webhook_token_and_event_are_checked(fake: FakeGitLab, gl_config: dict[str, Any]) -> None:
    """A wrong X-Gitlab-Token is refused before any API call; unknown events and non-GitLab deliveries answer
    "not supported"."""
    g = GitLabIntegration()
    cfg = {**gl_config, "webhook_secret": SECRET}
    fake.reset_counts()
    with pytest.raises(ConfigError, match="X-Gitlab-Token does not match"):
        g.webhook(ctx(cfg), *_hook("Issue Hook", {"project": {"id": 11}}, token="guess"))
    assert fake.requests == []
    with pytest.raises(NotSupportedError, match="Pipeline Hook"):
        g.webhook(ctx(cfg), *_hook("Pipeline Hook", {"project": {"id": 11}}))
    with pytest.raises(NotSupportedError, match="no X-Gitlab-Event"):
        g.webhook(ctx(cfg), {"X-GitHub-Event": "push"}, b"{}")


def test_calls_through_the_plugin_process(fake: FakeGitLab, gl_config: dict[str, Any]) -> None:
    """The same calls work over gRPC in a real plugin process: validate, onboard repos and a mutation."""
    entry = IntegrationConfig(id="gl1", name="gitlab", type=IntegrationType.SOURCECODE, config=gl_config)
    host = IntegrationHost.start(entry, RecordingAgent())
    try:
        cfg = CallConfig(integration=entry, customer_id=CUSTOMER)
        assert host.validate_config(cfg).server_version == "16.11.2-ee"
        assert len(host.onboard_export(cfg, OnboardObjectType.REPOS).data) == 3
        res = host.mutate(cfg, "PR_SET_TITLE", {"identifier": "acme/web!1", "title": "Over gRPC"})
        assert res.mutated_objects["sourcecode.PullRequest"][0]["title"] == "Over gRPC"
    finally:
        assert host.close() == 0
