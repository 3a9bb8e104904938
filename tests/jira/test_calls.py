"""validate-config, onboarding, mutations and webhooks against the fake Jira (in process, both flavours)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import orjson
import pytest

from integrations.jira import calls
from integrations.jira.config import parse_config
from pinpoint_agent.errors import ConfigError, NotSupportedError
from pinpoint_agent.ids import values
from tests.jira.conftest import CUSTOMER, make_client
from tests.jira.fake_jira import USERS, FakeJira


def test_validate_reports_version_and_passes(fake: FakeJira) -> None:
    """A working config: no errors, the server version, one search done."""
    result = calls.validate(parse_config(fake.config()), make_client(fake))
    assert result.errors == []
    assert result.server_version == ("1001.0.0-SNAPSHOT" if fake.cloud else "9.12.2")
    assert len(fake.jqls) == 1


def test_validate_reports_bad_credentials_and_wrong_flavour(cloud: FakeJira) -> None:
    """A wrong token is an error line (no secret in it); a Cloud site configured as hosted says so."""
    bad = cloud.config(api_token="WRONG-SECRET")
    result = calls.validate(parse_config(bad), make_client(cloud, api_token="WRONG-SECRET"))
    assert len(result.errors) == 1 and "401" in result.errors[0] and "WRONG-SECRET" not in result.errors[0]
    hosted = cloud.config(flavor="hosted")
    result = calls.validate(parse_config(hosted), make_client(cloud, flavor="hosted"))
    assert any("configured for Jira Data Center" in e for e in result.errors)


def test_onboarding_users_projects_workconfig(fake: FakeJira) -> None:
    """users and projects as work objects; workconfig lists statuses (with categories), priorities, issue
    types and resolutions with their ids."""
    cfg, client = parse_config(fake.config()), make_client(fake)
    users = calls.onboard_users(cfg, client, CUSTOMER)
    assert [u["name"] for u in users] == [u.display for u in USERS]
    projects = calls.onboard_projects(cfg, client, CUSTOMER)
    assert [p["identifier"] for p in projects] == ["ENG", "OPS", "DOC"]
    wc = calls.onboard_workconfig(cfg, client, CUSTOMER)
    assert [(s["name"], s["category"]) for s in wc["statuses"]] == [
        ("To Do", "new"), ("In Progress", "indeterminate"), ("Done", "done")]
    assert wc["statuses"][0]["id"] == values(CUSTOMER, "jira", "10000")
    assert [p["name"] for p in wc["priorities"]] == ["Highest", "High", "Medium", "Low"]
    assert {t["name"] for t in wc["issue_types"]} >= {"Story", "Bug", "Epic"} and wc["resolutions"]


def test_mutations_change_the_issue_and_return_it(fake: FakeJira) -> None:
    """ISSUE_SET_TITLE, ISSUE_SET_PRIORITY, ISSUE_SET_ASSIGNEE and ISSUE_SET_STATUS (by status name, through a
    transition) change the issue in Jira and return it as an export would; ISSUE_ADD_COMMENT sends ADF to Cloud
    and wiki text to Data Center; ISSUE_GET_TRANSITIONS lists where the issue can go."""
    cfg, client = parse_config(fake.config()), make_client(fake)
    issue = fake.data.by_key("ENG-2")
    assert issue is not None

    out = calls.mutate(cfg, client, CUSTOMER, "ISSUE_SET_TITLE", {"ref_id": "ENG-2", "title": "New title"})
    assert issue.summary == "New title" and out.mutated_objects["work.Issue"][0]["title"] == "New title"
    out = calls.mutate(cfg, client, CUSTOMER, "ISSUE_SET_PRIORITY", {"ref_id": str(issue.id), "priority": "Low"})
    assert out.mutated_objects["work.Issue"][0]["priority"] == "Low"
    who = USERS[1].account_id if fake.cloud else USERS[1].name
    out = calls.mutate(cfg, client, CUSTOMER, "ISSUE_SET_ASSIGNEE", {"ref_id": "ENG-2", "user_ref_id": who})
    assert out.mutated_objects["work.Issue"][0]["assignee_ref_id"] == (who if fake.cloud else USERS[1].key)
    transitions = calls.mutate(cfg, client, CUSTOMER, "ISSUE_GET_TRANSITIONS", {"ref_id": "ENG-2"})
    targets = {t["to_status"] for t in transitions.webapp_response}
    assert targets == {"To Do", "In Progress"}  # ENG-2 is Done: no transition to where it is
    out = calls.mutate(cfg, client, CUSTOMER, "ISSUE_SET_STATUS", {"ref_id": "ENG-2", "status": "in progress"})
    moved = out.mutated_objects["work.Issue"][0]
    assert moved["status"] == "In Progress" and moved["change_log"][-1]["to"] == "In Progress"
    with pytest.raises(ConfigError, match="no transition 'In Progress'"):
        calls.mutate(cfg, client, CUSTOMER, "ISSUE_SET_STATUS", {"ref_id": "ENG-2", "status": "In Progress"})
    out = calls.mutate(cfg, client, CUSTOMER, "ISSUE_ADD_COMMENT", {"ref_id": "ENG-2", "body": "Looks good"})
    comment = out.mutated_objects["work.IssueComment"][0]
    assert comment["body"] == "<p>Looks good</p>" and issue.comments[-1].text == "Looks good"
    with pytest.raises(ConfigError, match="ref_id"):
        calls.mutate(cfg, client, CUSTOMER, "ISSUE_SET_TITLE", {"title": "x"})
    with pytest.raises(ConfigError, match="no issue .NOPE-9. is visible"):
        calls.mutate(cfg, client, CUSTOMER, "ISSUE_SET_TITLE", {"ref_id": "NOPE-9", "title": "x"})
    with pytest.raises(NotSupportedError):
        calls.mutate(cfg, client, CUSTOMER, "PR_SET_TITLE", {"ref_id": "ENG-2"})


def _delivery(fake: FakeJira, event: str, key: str, **extra: Any) -> bytes:
    issue = fake.data.by_key(key)
    assert issue is not None
    payload = {"timestamp": 1709290000000, "webhookEvent": event, "issue_event_type_name": "issue_generic",
               "user": fake.data.user(0),
               "issue": fake.issue_payload(issue, ["*all"], [], search=False), **extra}
    return orjson.dumps(payload)


def test_webhooks_issue_and_comment_events(cloud: FakeJira) -> None:
    """jira:issue_updated/created re-read the issue (whole change log); jira:issue_deleted returns it marked
    deleted; comment_created returns the rendered comment; others are not supported; a signature is checked."""
    cfg, client = parse_config(cloud.config()), make_client(cloud)
    body = _delivery(cloud, "jira:issue_updated", "ENG-3",
                     changelog={"id": "1", "items": [{"field": "status", "fromString": "To Do", "toString": "Done"}]})
    out = calls.webhook(cfg, client, CUSTOMER, {}, body)
    issue = out.mutated_objects["work.Issue"][0]
    assert issue["identifier"] == "ENG-3" and len(issue["change_log"]) == 2 and issue["story_points"] == 3.0
    deleted = calls.webhook(cfg, client, CUSTOMER, {}, _delivery(cloud, "jira:issue_deleted", "ENG-5"))
    assert deleted.mutated_objects["work.Issue"][0]["deleted"] is True
    eng4 = cloud.data.by_key("ENG-4")
    assert eng4 is not None
    c = cloud.data.comment(eng4.comments[0])
    out = calls.webhook(cfg, client, CUSTOMER, {}, _delivery(cloud, "comment_created", "ENG-4", comment=c))
    assert out.mutated_objects["work.IssueComment"][0]["body"] == "<p>Comment 1 on ENG-4</p>"
    with pytest.raises(NotSupportedError):
        calls.webhook(cfg, client, CUSTOMER, {}, orjson.dumps({"webhookEvent": "sprint_started"}))
    with pytest.raises(NotSupportedError):
        calls.webhook(cfg, client, CUSTOMER, {}, b"{}")
    signed = parse_config(cloud.config(webhook_secret="hooksecret"))
    good = "sha256=" + hmac.new(b"hooksecret", body, hashlib.sha256).hexdigest()
    assert calls.webhook(signed, client, CUSTOMER, {"X-Hub-Signature": good}, body).mutated_objects
    with pytest.raises(ConfigError, match="signature"):
        calls.webhook(signed, client, CUSTOMER, {"X-Hub-Signature": "sha256=00"}, body)
