"""Jira payloads (REST v3 Cloud / v2 Data Center, Agile 1.0) -> pinpoint ``work.*`` datamodel objects.

Ids follow the work datamodel the original agent exported (go-common ``hash.Values``, see ``pinpoint_agent.ids``):

==================  ==============================================  ==========================================
model               id                                              ref_id
==================  ==============================================  ==========================================
work.Project        ``values(customer_id, ref_id, "jira")``         project id (``10000``)
work.Issue          ``values(customer_id, ref_id, "jira")``         issue id (``10042``), key in ``identifier``
work.Sprint         ``values(customer_id, ref_id, "jira")``         sprint id
work.IssueComment   ``values(customer_id, ref_id, "jira", project_id)``  comment id
work.User           ``values(customer_id, "jira", ref_id)``         Cloud ``accountId``; DC ``key`` (else name)
status/priority/type ids ``values(customer_id, "jira", ref_id)``
==================  ==============================================  ==========================================

(work.User's argument order is the original's: its id helper passed the ref type second.) Dates are
``{epoch (ms), offset (minutes), rfc3339}`` keeping the offset Jira wrote. Every object ends with ``hashcode``.
"""

from __future__ import annotations

import re
from typing import Any

from integrations.jira import adf
from integrations.jira.cursor import parse_time
from integrations.jira.fields import CustomFields
from pinpoint_agent.ids import hashcode, values

REF_TYPE = "jira"
LINK_TYPES = {"blocks": "BLOCKS", "cloners": "CLONES", "duplicate": "DUPLICATES",
              "problem/incident": "CAUSES", "relates": "RELATES"}
_LEGACY_SPRINT = re.compile(r"com\.atlassian\.greenhopper\.service\.sprint\.Sprint@[^\[]*\[(.*)\]")


def finish(obj: dict[str, Any]) -> dict[str, Any]:
    obj["hashcode"] = hashcode(obj)
    return obj


def date(text: str | None) -> dict[str, Any]:
    when = parse_time(text)
    if when is None:
        return {"epoch": 0, "offset": 0, "rfc3339": ""}
    offset = when.utcoffset()
    return {"epoch": int(when.timestamp() * 1000), "offset": int(offset.total_seconds() // 60) if offset else 0,
            "rfc3339": when.isoformat().replace("+00:00", "Z")}


def _base(cust: str, oid: str, ref_id: str) -> dict[str, Any]:
    return {"id": oid, "ref_id": ref_id, "ref_type": REF_TYPE, "customer_id": cust}


def project_id(cust: str, ref_id: str) -> str:
    return values(cust, ref_id, REF_TYPE)


def issue_id(cust: str, ref_id: str) -> str:
    return values(cust, ref_id, REF_TYPE)


def sprint_id(cust: str, ref_id: str) -> str:
    return values(cust, ref_id, REF_TYPE)


def user_id(cust: str, ref_id: str) -> str:
    return values(cust, REF_TYPE, ref_id)


def comment_id(cust: str, ref_id: str, project: str) -> str:
    return values(cust, ref_id, REF_TYPE, project)


def config_id(cust: str, ref_id: str) -> str:
    """Issue status, priority and type ids."""
    return values(cust, REF_TYPE, ref_id) if ref_id else ""


# -- users ------------------------------------------------------------------------------------------------
def user_ref(user: dict[str, Any] | None) -> str:
    """Cloud ``accountId``; Data Center ``key`` (stable across renames), else ``name``; "" for none."""
    if not isinstance(user, dict):
        return ""
    return str(user.get("accountId") or user.get("key") or user.get("name") or "")


def user(cust: str, raw: dict[str, Any], base_url: str) -> dict[str, Any]:
    ref = user_ref(raw)
    avatars = raw.get("avatarUrls") or {}
    cloud = bool(raw.get("accountId"))
    url = f"{base_url}/jira/people/{ref}" if cloud else \
        f"{base_url}/secure/ViewProfile.jspa?name={raw.get('name') or ''}"
    return finish({
        **_base(cust, user_id(cust, ref), ref),
        "name": str(raw.get("displayName") or raw.get("name") or ""),
        "username": str(raw.get("name") or ""),  # Cloud has no user names (GDPR): empty there
        "email": str(raw.get("emailAddress") or "").lower(),  # only where the user's privacy settings show it
        "avatar_url": str(avatars.get("48x48") or ""),
        "url": url,
        "active": bool(raw.get("active", True)),
        "kind": "BOT" if raw.get("accountType") == "app" else "HUMAN",
        "member": raw.get("accountType", "atlassian") == "atlassian",
        "associated_ref_id": "",
    })


# -- projects -----------------------------------------------------------------------------------------------
def project(cust: str, raw: dict[str, Any], base_url: str) -> dict[str, Any]:
    ref = str(raw["id"])
    return finish({
        **_base(cust, project_id(cust, ref), ref),
        "name": str(raw.get("name") or ""),
        "identifier": str(raw.get("key") or ""),
        "url": f"{base_url}/browse/{raw.get('key', '')}",
        "description": str(raw.get("description") or ""),
        "category": str((raw.get("projectCategory") or {}).get("name") or ""),
        "active": not raw.get("archived", False),
    })


# -- issues -------------------------------------------------------------------------------------------------
def _names(items: Any) -> list[str]:
    return [str(i.get("name") or "") for i in items or [] if isinstance(i, dict)]


def story_points(fields: dict[str, Any], custom: CustomFields) -> float | None:
    for fid in custom.story_points:
        value = fields.get(fid)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                continue
    return None


def sprint_refs(value: Any) -> list[str]:
    """Sprint ids of the sprint field: Cloud/DC 8+ objects ``{"id": 1, …}``, older DC strings
    ``com.atlassian.greenhopper.service.sprint.Sprint@1a2b[id=1,rapidViewId=2,state=ACTIVE,name=…]``."""
    refs: list[str] = []
    for item in value or []:
        if isinstance(item, dict) and item.get("id") is not None:
            refs.append(str(item["id"]))
        elif isinstance(item, str) and (m := _LEGACY_SPRINT.search(item)):
            props = dict(p.split("=", 1) for p in m.group(1).split(",") if "=" in p)
            if props.get("id"):
                refs.append(props["id"])
    return refs


def _link(cust: str, raw: dict[str, Any]) -> dict[str, Any] | None:
    kind = LINK_TYPES.get(str((raw.get("type") or {}).get("name") or "").lower())
    other, reverse = raw.get("outwardIssue"), False
    if not other:
        other, reverse = raw.get("inwardIssue"), True
    if kind is None or not isinstance(other, dict) or not other.get("id"):
        return None
    return {"ref_id": str(raw.get("id") or ""), "issue_id": issue_id(cust, str(other["id"])),
            "issue_ref_id": str(other["id"]), "issue_identifier": str(other.get("key") or ""),
            "reverse_direction": reverse, "link_type": kind}


CHANGE_FIELDS = {"status": "STATUS", "resolution": "RESOLUTION", "assignee": "ASSIGNEE_REF_ID",
                 "reporter": "REPORTER_REF_ID", "summary": "TITLE", "duedate": "DUE_DATE", "issuetype": "TYPE",
                 "labels": "TAGS", "priority": "PRIORITY", "project": "PROJECT_ID", "key": "IDENTIFIER",
                 "sprint": "SPRINT_IDS", "parent": "PARENT_ID", "epic link": "EPIC_ID", "story points": "STORY_POINTS",
                 "story point estimate": "STORY_POINTS"}


def change_log(cust: str, histories: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The change log entries the datamodel keeps, oldest first (Jira may answer newest first), ``ordinal``
    counting from 0 in that order. Status changes carry the status names and ids."""
    def when(h: dict[str, Any]) -> tuple[float, int]:
        t = parse_time(h.get("created"))
        return (t.timestamp() if t else 0.0, int(h["id"]) if str(h.get("id", "")).isdigit() else 0)

    out: list[dict[str, Any]] = []
    for h in sorted((h for h in histories if isinstance(h, dict)), key=when):
        author = user_ref(h.get("author"))
        for item in h.get("items") or []:
            name = str(item.get("field") or "").lower()
            kind = CHANGE_FIELDS.get(name)
            if kind is None:
                continue
            frm, to = str(item.get("from") or ""), str(item.get("to") or "")
            frm_s, to_s = str(item.get("fromString") or ""), str(item.get("toString") or "")
            if kind in ("ASSIGNEE_REF_ID", "REPORTER_REF_ID"):
                value_from, value_to = frm, to
            elif kind == "PROJECT_ID":
                value_from, value_to = (project_id(cust, frm) if frm else ""), (project_id(cust, to) if to else "")
            elif kind in ("PARENT_ID", "EPIC_ID"):
                value_from, value_to = (issue_id(cust, frm) if frm else ""), (issue_id(cust, to) if to else "")
            elif kind == "SPRINT_IDS":
                value_from = ",".join(sprint_id(cust, s.strip()) for s in frm.split(",") if s.strip())
                value_to = ",".join(sprint_id(cust, s.strip()) for s in to.split(",") if s.strip())
            else:
                value_from, value_to = frm_s, to_s
            out.append({"ref_id": str(h.get("id") or ""), "ordinal": len(out), "created_date": date(h.get("created")),
                        "user_id": author, "field": kind, "from": value_from, "from_string": f"{frm_s} @ {frm}",
                        "to": value_to, "to_string": f"{to_s} @ {to}"})
    return out


def issue(cust: str, raw: dict[str, Any], custom: CustomFields, base_url: str,
          histories: list[dict[str, Any]] | None = None, epic_ref: str = "") -> dict[str, Any]:
    """A ``work.Issue``; ``histories``: the whole change log (default: the one embedded in ``raw``)."""
    f = raw.get("fields") or {}
    rendered = raw.get("renderedFields") or {}
    proj = f.get("project") or {}
    status = f.get("status") or {}
    priority = f.get("priority") or {}
    itype = f.get("issuetype") or {}
    parent = f.get("parent") or {}
    description = rendered.get("description") or adf.to_html(f.get("description"))
    if histories is None:
        histories = list((raw.get("changelog") or {}).get("histories") or [])
    epic_id = issue_id(cust, epic_ref) if epic_ref else None
    parent_ref = str(parent.get("id") or "")
    if parent_ref and epic_id is None and str((parent.get("fields") or {}).get("issuetype", {}).get(
            "hierarchyLevel", 0)) == "1":
        epic_id = issue_id(cust, parent_ref)  # Cloud: an epic is the parent (hierarchy level 1)
    due = f.get("duedate")
    return finish({
        **_base(cust, issue_id(cust, str(raw["id"])), str(raw["id"])),
        "identifier": str(raw.get("key") or ""),
        "project_id": project_id(cust, str(proj.get("id") or "")),
        "title": str(f.get("summary") or ""),
        "description": description or "",
        "url": f"{base_url}/browse/{raw.get('key', '')}",
        "type": str(itype.get("name") or ""),
        "type_id": config_id(cust, str(itype.get("id") or "")),
        "status": str(status.get("name") or ""),
        "status_id": config_id(cust, str(status.get("id") or "")),
        "status_category": str((status.get("statusCategory") or {}).get("key") or ""),
        "priority": str(priority.get("name") or ""),
        "priority_id": config_id(cust, str(priority.get("id") or "")),
        "resolution": str((f.get("resolution") or {}).get("name") or ""),
        "assignee_ref_id": user_ref(f.get("assignee")),
        "reporter_ref_id": user_ref(f.get("reporter")),
        "creator_ref_id": user_ref(f.get("creator")),
        "tags": [str(t) for t in f.get("labels") or []],
        "components": _names(f.get("components")),
        "fix_versions": _names(f.get("fixVersions")),
        "parent_id": issue_id(cust, parent_ref) if parent_ref else "",
        "epic_id": epic_id,
        "subtask_ids": [issue_id(cust, str(s["id"])) for s in f.get("subtasks") or [] if s.get("id")],
        "linked_issues": [link for raw_link in f.get("issuelinks") or [] if (link := _link(cust, raw_link))],
        "story_points": story_points(f, custom),
        "sprint_ids": [sprint_id(cust, s) for s in sprint_refs(f.get(custom.sprint))] if custom.sprint else [],
        "created_date": date(f.get("created")),
        "updated_date": date(f.get("updated")),
        "resolved_date": date(f.get("resolutiondate")),
        "due_date": date(f"{due}T00:00:00+00:00" if due else None),
        "change_log": change_log(cust, histories),
    })


def epic_key(raw: dict[str, Any], custom: CustomFields) -> str:
    """The epic link's issue key (company-managed projects with the Epic Link field), or ""."""
    value = (raw.get("fields") or {}).get(custom.epic_link) if custom.epic_link else None
    return str(value) if isinstance(value, str) else ""


# -- comments -----------------------------------------------------------------------------------------------
def comment(cust: str, issue_raw: dict[str, Any], raw: dict[str, Any], base_url: str,
            rendered_body: str = "") -> dict[str, Any]:
    proj = project_id(cust, str(((issue_raw.get("fields") or {}).get("project") or {}).get("id") or ""))
    ref = str(raw["id"])
    key = issue_raw.get("key", "")
    return finish({
        **_base(cust, comment_id(cust, ref, proj), ref),
        "issue_id": issue_id(cust, str(issue_raw["id"])),
        "project_id": proj,
        "user_ref_id": user_ref(raw.get("author")),
        "body": rendered_body or str(raw.get("renderedBody") or "") or adf.to_html(raw.get("body")),
        "created_date": date(raw.get("created")),
        "updated_date": date(raw.get("updated")),
        "url": f"{base_url}/browse/{key}?focusedCommentId={ref}",
    })


# -- sprints ------------------------------------------------------------------------------------------------
def sprint(cust: str, raw: dict[str, Any], base_url: str) -> dict[str, Any]:
    ref = str(raw["id"])
    board = raw.get("originBoardId")
    return finish({
        **_base(cust, sprint_id(cust, ref), ref),
        "name": str(raw.get("name") or ""),
        "goal": str(raw.get("goal") or ""),
        "status": str(raw.get("state") or "").upper(),  # ACTIVE, FUTURE, CLOSED
        "started_date": date(raw.get("startDate")),
        "ended_date": date(raw.get("endDate")),
        "completed_date": date(raw.get("completeDate")),
        "board_ref_id": str(board) if board is not None else "",
        "url": f"{base_url}/secure/RapidBoard.jspa?rapidView={board}&sprint={ref}" if board is not None else "",
    })


# -- work config (onboarding) ------------------------------------------------------------------------------
def work_config(cust: str, statuses: list[Any], priorities: list[Any], types: list[Any],
                resolutions: list[Any]) -> dict[str, Any]:
    def row(raw: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {"id": config_id(cust, str(raw.get("id") or "")), "ref_id": str(raw.get("id") or ""),
                "name": str(raw.get("name") or ""), "description": str(raw.get("description") or ""), **extra}

    return {
        "ref_type": REF_TYPE,
        "customer_id": cust,
        "statuses": [row(s, category=str((s.get("statusCategory") or {}).get("key") or "")) for s in statuses],
        "priorities": [row(p) for p in priorities],
        "issue_types": [row(t, subtask=bool(t.get("subtask")), hierarchy_level=t.get("hierarchyLevel", 0))
                        for t in types],
        "resolutions": [row(r) for r in resolutions],
    }
