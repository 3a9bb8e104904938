"""The interactive calls: validate-config, onboarding, mutations and webhooks.

Each is a plain function of the config, a client and the customer, so tests call them in-process against
the fake Jira as well as through the plugin.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import orjson

from integrations.jira import adf, models
from integrations.jira import endpoints as ep
from integrations.jira.client import JiraClient, NotFound
from integrations.jira.config import JiraConfig
from integrations.jira.cursor import issues_jql
from integrations.jira.export import Site, list_projects, site_info
from integrations.jira.fields import CustomFields
from integrations.sdk import ConfigError, MutateResult, NotSupportedError, ValidateResult, WebhookResult
from pinpoint_agent.errors import PinpointError

NEEDED_PERMISSIONS = ("BROWSE_PROJECTS",)


# -- validate-config ---------------------------------------------------------------------------------------
def validate(cfg: JiraConfig, client: JiraClient) -> ValidateResult:
    """Server info (version), the user's permissions, one project and one search."""
    result = ValidateResult()
    e = ep.for_flavor(cfg.cloud)
    try:
        info = client.get(ep.HOSTED.path(ep.SERVER_INFO)) or {}  # v2: served by Cloud and Data Center alike
        result.server_version = str(info.get("version") or "")
        if cfg.cloud != (str(info.get("deploymentType") or "Cloud") == "Cloud"):
            result.errors.append(f"the url points at Jira {info.get('deploymentType')}, but the integration is "
                                 f"configured for Jira {'Cloud' if cfg.cloud else 'Data Center/Server'}")
        client.get(e.path(ep.MYSELF))
        perms = (client.get(e.path(ep.MY_PERMISSIONS), {"permissions": ",".join(NEEDED_PERMISSIONS)}) or {})
        for name in NEEDED_PERMISSIONS:
            if not ((perms.get("permissions") or {}).get(name) or {}).get("havePermission"):
                result.errors.append(f"the user lacks the {name} permission")
        projects = list_projects(cfg, client)
        if not projects:
            result.errors.append("no project is visible to this user (after projects/exclusions)")
        else:
            key = str(projects[0].get("key"))
            body = {"jql": issues_jql(key, ""), "maxResults": 1, "fields": ["updated"]}
            client.request("POST", e.search, json=body if cfg.cloud else {**body, "startAt": 0})
    except ConfigError as exc:
        result.errors.append(str(exc))
    except PinpointError as exc:
        result.errors.append(f"cannot use Jira at {cfg.url}: {exc}")
    return result


# -- onboarding --------------------------------------------------------------------------------------------
def onboard_users(cfg: JiraConfig, client: JiraClient, cust: str) -> list[dict[str, Any]]:
    e = ep.for_flavor(cfg.cloud)
    params = {} if cfg.cloud else {"username": ".", "includeInactive": "true"}
    return [models.user(cust, u, cfg.url) for items, _ in client.offset_pages(e.users, params, key=None)
            for u in items]


def onboard_projects(cfg: JiraConfig, client: JiraClient, cust: str) -> list[dict[str, Any]]:
    return [models.project(cust, p, cfg.url) for p in list_projects(cfg, client)]


def onboard_workconfig(cfg: JiraConfig, client: JiraClient, cust: str) -> dict[str, Any]:
    e = ep.for_flavor(cfg.cloud)
    return models.work_config(cust, client.get(e.path(ep.STATUSES)) or [], client.get(e.path(ep.PRIORITIES)) or [],
                              client.get(e.path(ep.ISSUE_TYPES)) or [], client.get(e.path(ep.RESOLUTIONS)) or [])


# -- mutations ---------------------------------------------------------------------------------------------
MUTATIONS = {
    "ISSUE_ADD_COMMENT": ("body",),
    "ISSUE_SET_TITLE": ("title",),
    "ISSUE_SET_STATUS": (),  # transition_id, or status (the target status name)
    "ISSUE_SET_PRIORITY": (),  # priority_ref_id, or priority (the name)
    "ISSUE_SET_ASSIGNEE": (),  # user_ref_id: accountId (Cloud) / name (DC); empty unassigns
    "ISSUE_GET_TRANSITIONS": (),
}


def _need(fn: str, data: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(data, dict) or not isinstance(data.get("ref_id"), str) or not data["ref_id"]:
        raise ConfigError(f'{fn} needs {{"ref_id": "<issue id or key>"' + "".join(f', "{k}": str' for k in keys) + "}")
    for k in keys:
        if not isinstance(data.get(k), str):
            raise ConfigError(f"{fn} needs {k} (a string)")
    return data


def issue_object(cfg: JiraConfig, client: JiraClient, cust: str, ref: str, site: Site | None = None) -> dict[str, Any]:
    """The issue as it is now, as an export would send it (fields, change log, rendered description)."""
    e = ep.for_flavor(cfg.cloud)
    site = site or site_info(client, cfg)
    raw = client.get(e.path(ep.ISSUE, key=ref), {"fields": ",".join([*ep.ISSUE_FIELDS, *site.custom.ids()]),
                                                  "expand": "changelog,renderedFields"})
    histories = list((raw.get("changelog") or {}).get("histories") or [])
    if int((raw.get("changelog") or {}).get("total") or 0) > len(histories) and cfg.cloud:
        histories = [h for items, _ in client.offset_pages(e.path(e.changelog, key=ref)) for h in items]
    return models.issue(cust, raw, site.custom, cfg.url, histories)


def mutate(cfg: JiraConfig, client: JiraClient, cust: str, fn: str, data: Any) -> MutateResult:
    if fn not in MUTATIONS:
        raise NotSupportedError(f"jira does not support mutation {fn}")
    d = _need(fn, data, MUTATIONS[fn])
    e = ep.for_flavor(cfg.cloud)
    ref = d["ref_id"]
    try:
        client.get(e.path(ep.ISSUE, key=ref), {"fields": "project"})
    except NotFound:
        raise ConfigError(f"no issue {ref!r} is visible to this user") from None
    if fn == "ISSUE_GET_TRANSITIONS":
        raw = client.get(e.path(ep.TRANSITIONS, key=ref)) or {}
        return MutateResult(webapp_response=[
            {"id": str(t.get("id")), "name": str(t.get("name") or ""),
             "to_status": str((t.get("to") or {}).get("name") or ""),
             "to_status_id": models.config_id(cust, str((t.get("to") or {}).get("id") or ""))}
            for t in raw.get("transitions") or []])
    if fn == "ISSUE_ADD_COMMENT":
        body: Any = adf.from_text(d["body"]) if cfg.cloud else d["body"]
        issue_raw = client.get(e.path(ep.ISSUE, key=ref), {"fields": "project"})
        raw = client.request("POST", e.path(ep.COMMENTS, key=ref), params={"expand": "renderedBody"},
                             json={"body": body}).data
        return MutateResult(mutated_objects={"work.IssueComment": [models.comment(cust, issue_raw, raw, cfg.url)]})
    if fn == "ISSUE_SET_TITLE":
        client.request("PUT", e.path(ep.ISSUE, key=ref), json={"fields": {"summary": d["title"]}})
    elif fn == "ISSUE_SET_STATUS":
        client.request("POST", e.path(ep.TRANSITIONS, key=ref),
                       json={"transition": {"id": _transition(client, e, ref, d)}})
    elif fn == "ISSUE_SET_PRIORITY":
        prio = d.get("priority_ref_id") or d.get("priority")
        if not isinstance(prio, str) or not prio:
            raise ConfigError("ISSUE_SET_PRIORITY needs priority_ref_id (or priority, the name)")
        value = {"id": prio} if d.get("priority_ref_id") else {"name": prio}
        client.request("PUT", e.path(ep.ISSUE, key=ref), json={"fields": {"priority": value}})
    elif fn == "ISSUE_SET_ASSIGNEE":
        user = d.get("user_ref_id")
        if user is not None and not isinstance(user, str):
            raise ConfigError("ISSUE_SET_ASSIGNEE needs user_ref_id (a string; empty unassigns)")
        key = "accountId" if cfg.cloud else "name"
        client.request("PUT", e.path(ep.ASSIGNEE, key=ref), json={key: user or None})
    return MutateResult(mutated_objects={"work.Issue": [issue_object(cfg, client, cust, ref)]})


def _transition(client: JiraClient, e: ep.Endpoints, ref: str, d: dict[str, Any]) -> str:
    """The transition to run: ``transition_id`` as given (checked), or the one leading to ``status``."""
    transitions = (client.get(e.path(ep.TRANSITIONS, key=ref)) or {}).get("transitions") or []
    wanted_id, status = d.get("transition_id"), d.get("status")
    for t in transitions:
        if wanted_id and str(t.get("id")) == str(wanted_id):
            return str(t["id"])
        to = t.get("to") or {}
        if status and str(status).lower() in (str(to.get("name") or "").lower(), str(to.get("id") or "")):
            return str(t["id"])
    names = ", ".join(f"{t.get('id')}:{(t.get('to') or {}).get('name')}" for t in transitions) or "none"
    raise ConfigError(f"ISSUE_SET_STATUS: no transition {wanted_id or status!r} from the issue's status "
                      f"(available: {names})")


# -- webhooks ----------------------------------------------------------------------------------------------
ISSUE_EVENTS = ("jira:issue_created", "jira:issue_updated", "jira:issue_deleted")
COMMENT_EVENTS = ("comment_created", "comment_updated", "comment_deleted")


def webhook(cfg: JiraConfig, client: JiraClient, cust: str, headers: dict[str, str], body: bytes) -> WebhookResult:
    """``jira:issue_created|updated|deleted`` and ``comment_created|updated|deleted`` -> objects.

    Created/updated events re-read the issue (or comment) so the object is complete (the payload's change log
    holds only the latest change); deleted events return the last state from the payload with ``deleted``."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"jira: the webhook body is not JSON ({exc})") from exc
    event = payload.get("webhookEvent") if isinstance(payload, dict) else None
    if not isinstance(event, str) or not event:
        raise NotSupportedError("jira: not a Jira webhook delivery (no webhookEvent)")
    if event not in ISSUE_EVENTS + COMMENT_EVENTS:
        raise NotSupportedError(f"jira: webhook event {event!r} is not supported")
    secret = cfg.webhook_secret.get_secret_value()
    if secret:
        lower = {k.lower(): v for k, v in headers.items()}
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, lower.get("x-hub-signature", "")):
            raise ConfigError("jira: the webhook signature (X-Hub-Signature) does not match webhook_secret")
    issue_raw = payload.get("issue")
    if not isinstance(issue_raw, dict) or not issue_raw.get("id"):
        raise ConfigError(f"jira: the {event} webhook has no issue")
    ref = str(issue_raw["id"])
    if event == "jira:issue_deleted":
        obj = models.issue(cust, issue_raw, CustomFields(), cfg.url, [])
        obj["deleted"] = True
        return WebhookResult({"work.Issue": [models.finish(obj)]})
    if event in ISSUE_EVENTS:
        return WebhookResult({"work.Issue": [issue_object(cfg, client, cust, ref)]})
    comment = payload.get("comment")
    if not isinstance(comment, dict) or not comment.get("id"):
        raise ConfigError(f"jira: the {event} webhook has no comment")
    if event == "comment_deleted":
        obj = models.comment(cust, issue_raw, comment, cfg.url)
        obj["deleted"] = True
        return WebhookResult({"work.IssueComment": [models.finish(obj)]})
    e = ep.for_flavor(cfg.cloud)
    full_issue = client.get(e.path(ep.ISSUE, key=ref), {"fields": "project"})
    raw = client.get(e.path(ep.COMMENTS, key=ref) + f"/{int(comment['id'])}", {"expand": "renderedBody"})
    return WebhookResult({"work.IssueComment": [models.comment(cust, full_issue, raw, cfg.url)]})
