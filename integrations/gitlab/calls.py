"""The interactive calls: validate-config, mutations and webhooks.

Each is a plain function of the config, a client and the customer, so tests can call them in-process against
the fake GitLab as well as through the plugin. Objects they return are read back from the API after the change
(webhook payloads use other field formats than the API, so they only say *what* to read).
"""

from __future__ import annotations

import hmac
import re
from typing import Any

import orjson

from integrations.gitlab import endpoints as ep
from integrations.gitlab import models, work
from integrations.gitlab.client import Forbidden, GitLabClient, NotFound
from integrations.gitlab.config import GitLabConfig
from integrations.gitlab.walks import ProjectInfo, git_request
from integrations.sdk import (
    AgentClient,
    ConfigError,
    MutateResult,
    NotSupportedError,
    ValidateResult,
    WebhookResult,
)
from pinpoint_agent.errors import PinpointError

API_SCOPES = {"api", "read_api"}


# -- validate-config ---------------------------------------------------------------------------------------
def validate(cfg: GitLabConfig, client: GitLabClient) -> ValidateResult:
    """The token works (and has an API scope where GitLab says), the groups are visible, the server version;
    the first project to export for a test clone."""
    result = ValidateResult()
    try:
        client.get(ep.CURRENT_USER.url())
        result.server_version = str((client.get(ep.VERSION.url()).data or {}).get("version") or "")
        _check_scopes(client, result.errors)
        for group in cfg.groups:
            try:
                client.get(ep.GROUP.url(group=group))
            except NotFound:
                result.errors.append(f"group {group!r} is not visible to this token")
        first = _first_project(cfg, client)
        if first is None:
            result.errors.append("no project to export is visible to this token (after the filters)")
        else:
            result.repo_url = str(first.get("http_url_to_repo") or "")
            result.repo_credentials = client.auth.token
    except ConfigError as exc:
        result.errors.append(str(exc))
    except PinpointError as exc:
        result.errors.append(f"cannot use GitLab at {cfg.api}: {exc}")
    return result


def _check_scopes(client: GitLabClient, errors: list[str]) -> None:
    """``/personal_access_tokens/self`` (GitLab 15.5+) lists the token's scopes; OAuth tokens and older
    servers answer 404/401/403 there, and are not judged."""
    try:
        scopes = set((client.get("/personal_access_tokens/self").data or {}).get("scopes") or [])
    except (NotFound, Forbidden, ConfigError):
        return
    if scopes and not scopes & API_SCOPES:
        errors.append(f"the token lacks the api or read_api scope (it has: {', '.join(sorted(scopes))})")
    if scopes and not scopes & {"api", "read_repository"}:
        errors.append("the token lacks the read_repository scope git needs to clone")


def _first_project(cfg: GitLabConfig, client: GitLabClient) -> dict[str, Any] | None:
    walks = (
        [(ep.GROUP_PROJECTS.url(group=g), ep.GROUP_PROJECTS.query(), False) for g in cfg.groups]
        if cfg.groups
        else [(ep.PROJECTS.url(), ep.PROJECTS.query(), True)]
    )
    for path, query, keyset in walks:
        try:
            for page in client.pages(path, query, keyset=keyset):
                for p in page.items:
                    if cfg.wants_project(str(p.get("path_with_namespace", "")), archived=bool(p.get("archived"))):
                        return dict(p)
        except NotFound:
            continue
    return None


# -- mutations ---------------------------------------------------------------------------------------------
MUTATIONS = {
    "PR_SET_TITLE": ("title", "title"),
    "PR_SET_DESCRIPTION": ("body_markdown", "description"),
    "ISSUE_ADD_COMMENT": ("body", "body"),
    "ISSUE_SET_TITLE": ("title", "title"),
    "ISSUE_SET_STATUS": ("status", "state_event"),
}
_IDENT = re.compile(r"^(?P<path>.+?)(?P<sep>[!#])(?P<iid>\d+)$")
_STATE_EVENTS = {
    "close": "close",
    "closed": "close",
    "done": "close",
    "reopen": "reopen",
    "opened": "reopen",
    "open": "reopen",
    "reopened": "reopen",
}


def target(data: dict[str, Any], sep: str) -> tuple[str, int]:
    """The project (id or path) and iid a mutation names: ``identifier`` as exported (``group/proj!12`` for a
    merge request, ``group/proj#12`` for an issue), or ``project_ref_id``/``repo_ref_id`` with ``number``."""
    ident = data.get("identifier")
    if isinstance(ident, str) and (m := _IDENT.match(ident.strip())) and m.group("sep") == sep:
        return m.group("path"), int(m.group("iid"))
    project = data.get("project_ref_id") or data.get("repo_ref_id")
    number = data.get("number")
    if isinstance(project, str | int) and str(project) and isinstance(number, int) and not isinstance(number, bool):
        return str(project), number
    kind = "merge request" if sep == "!" else "issue"
    raise ConfigError(f'the {kind} is named by "identifier" ("group/project{sep}12") or "project_ref_id" and "number"')


def mutate(client: GitLabClient, customer_id: str, fn: str, data: Any) -> MutateResult:
    """MR ``PR_SET_TITLE {title}`` / ``PR_SET_DESCRIPTION {body_markdown}``; issue ``ISSUE_ADD_COMMENT {body}``,
    ``ISSUE_SET_TITLE {title}``, ``ISSUE_SET_STATUS {status: close|reopen}``; each also names its target (see
    ``target``) and may give ``ref_id``, checked against the object found. Returns the object as it is now."""
    if fn not in MUTATIONS:
        raise NotSupportedError(f"gitlab does not support mutation {fn}")
    key, field = MUTATIONS[fn]
    if not isinstance(data, dict) or not isinstance(data.get(key), str) or not data[key]:
        raise ConfigError(f'{fn} needs "{key}" (a non-empty string)')
    is_mr = fn.startswith("PR_")
    project_key, iid = target(data, "!" if is_mr else "#")
    project = _project(client, project_key, customer_id)
    parts = {"project": project.pid, "iid": iid}
    current = _get(
        client, (ep.MERGE_REQUEST if is_mr else ep.ISSUE).url(**parts), "merge request" if is_mr else "issue"
    )
    if data.get("ref_id") and str(data["ref_id"]) != str(current["id"]):
        raise ConfigError(f"ref_id {data['ref_id']} does not match {project.path}{'!' if is_mr else '#'}{iid}")
    if is_mr:
        raw = client.request("PUT", ep.MERGE_REQUEST.url(**parts), json={field: data[key]}).data
        return MutateResult(
            mutated_objects={"sourcecode.PullRequest": [pull_request_object(client, customer_id, project, raw)]}
        )
    pobj = work.project(customer_id, project.raw)
    if fn == "ISSUE_ADD_COMMENT":
        note = client.request("POST", ep.ISSUE_NOTES.url(**parts), json={"body": data[key]}).data
        issue_obj = work.issue(customer_id, pobj, current)
        return MutateResult(
            mutated_objects={"work.IssueComment": [work.issue_comment(customer_id, pobj, issue_obj, note)]}
        )
    if fn == "ISSUE_SET_STATUS":
        event = _STATE_EVENTS.get(data[key].strip().lower())
        if event is None:
            raise ConfigError(f"ISSUE_SET_STATUS: status must be one of close, reopen (got {data[key]!r})")
        body: dict[str, Any] = {"state_event": event}
    else:
        body = {field: data[key]}
    raw = client.request("PUT", ep.ISSUE.url(**parts), json=body).data
    return MutateResult(mutated_objects={"work.Issue": [work.issue(customer_id, pobj, raw)]})


def _project(client: GitLabClient, key: str | int, customer_id: str) -> ProjectInfo:
    raw = _get(client, ep.PROJECT.url(project=key), "project")
    return ProjectInfo(raw, models.repo(customer_id, raw))


def _get(client: GitLabClient, path: str, what: str) -> dict[str, Any]:
    try:
        data = client.get(path).data
    except NotFound:
        raise ConfigError(f"no {what} at {path} is visible to this token") from None
    return dict(data or {})


def pull_request_object(
    client: GitLabClient, customer_id: str, project: ProjectInfo, raw: dict[str, Any]
) -> dict[str, Any]:
    """The datamodel pull request of a merge request, with its commits (oldest first)."""
    repo_obj = project.obj
    commits = client.all(ep.MR_COMMITS.url(project=project.pid, iid=raw["iid"]))
    return models.pull_request(customer_id, repo_obj, raw, [str(c["id"]) for c in reversed(commits)])


# -- webhooks ----------------------------------------------------------------------------------------------
EVENTS = {"Merge Request Hook", "Note Hook", "Push Hook", "Issue Hook"}


def webhook_event(headers: dict[str, str]) -> str:
    """The delivery's ``X-Gitlab-Event``; "not supported" for anything else."""
    event = {k.lower(): v for k, v in headers.items()}.get("x-gitlab-event", "")
    if not event:
        raise NotSupportedError("gitlab: not a GitLab webhook delivery (no X-Gitlab-Event header)")
    if event not in EVENTS:
        raise NotSupportedError(f"gitlab: webhook event {event!r} is not supported")
    return event


def webhook(
    cfg: GitLabConfig,
    client: GitLabClient,
    agent: AgentClient | None,
    customer_id: str,
    headers: dict[str, str],
    body: bytes,
) -> WebhookResult:
    """One delivery: Merge Request, Note, Issue -> objects read back from the API; Push -> queues git."""
    event = webhook_event(headers)
    lower = {k.lower(): v for k, v in headers.items()}
    secret = cfg.webhook_secret.get_secret_value()
    if secret and not hmac.compare_digest(secret.encode(), lower.get("x-gitlab-token", "").encode()):
        raise ConfigError("gitlab: the webhook's X-Gitlab-Token does not match webhook_secret")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"gitlab: the {event} body is not JSON ({exc})") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("project"), dict):
        raise ConfigError(f"gitlab: the {event} delivery has no project")
    project = _project(client, int(payload["project"]["id"]), customer_id)
    attrs = payload.get("object_attributes") or {}
    if event == "Push Hook":
        if agent is None:
            raise NotSupportedError("gitlab: a push needs the agent's git processing, which is not available")
        agent.export_git_repo(git_request(project, [], client.auth.token, oauth=client.auth.oauth))
        return WebhookResult()
    if event == "Merge Request Hook":
        raw = _get(client, ep.MERGE_REQUEST.url(project=project.pid, iid=attrs["iid"]), "merge request")
        return WebhookResult({"sourcecode.PullRequest": [pull_request_object(client, customer_id, project, raw)]})
    pobj = work.project(customer_id, project.raw)
    if event == "Issue Hook":
        raw = _get(client, ep.ISSUE.url(project=project.pid, iid=attrs["iid"]), "issue")
        return WebhookResult({"work.Issue": [work.issue(customer_id, pobj, raw)]})
    # Note Hook: a user's note on a merge request or an issue (system notes and others carry nothing for us)
    if attrs.get("system") or attrs.get("noteable_type") not in ("MergeRequest", "Issue"):
        return WebhookResult()
    if attrs["noteable_type"] == "MergeRequest":
        mr = _get(
            client, ep.MERGE_REQUEST.url(project=project.pid, iid=payload["merge_request"]["iid"]), "merge request"
        )
        note = _get(client, f"{ep.MR_NOTES.url(project=project.pid, iid=mr['iid'])}/{int(attrs['id'])}", "note")
        repo_obj = project.obj
        pr_id = models.mr_id(customer_id, repo_obj, mr)
        return WebhookResult(
            {"sourcecode.PullRequestComment": [models.comment(customer_id, repo_obj, pr_id, mr, note)]}
        )
    raw = _get(client, ep.ISSUE.url(project=project.pid, iid=payload["issue"]["iid"]), "issue")
    note = _get(client, f"{ep.ISSUE_NOTES.url(project=project.pid, iid=raw['iid'])}/{int(attrs['id'])}", "note")
    issue_obj = work.issue(customer_id, pobj, raw)
    return WebhookResult({"work.IssueComment": [work.issue_comment(customer_id, pobj, issue_obj, note)]})
