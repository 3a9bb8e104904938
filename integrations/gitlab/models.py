"""GitLab API v4 payloads -> pinpoint ``sourcecode`` objects.

Ref ids are GitLab's numeric global ids as strings, as the original agent used: users ``ids.user_id``
over the user id, repos ``ids.repo_id`` over the project id, merge requests ``ids.pull_request_id`` over the
merge request's global ``id`` (not its per-project ``iid``, which is ``number``), commits ``ids.commit_id``.
Notes use the pull request formula over the note id (``values(customer_id, ref_id, ref_type, repo_id)``),
approvals over ``approval-<merge request id>-<user id>`` and reviewer states over
``review-<merge request id>-<user id>`` (GitLab gives neither an id of its own). Every
object ends with ``hashcode`` computed over the others (``ids.hashcode``).
"""

from __future__ import annotations

import re
from typing import Any

from integrations.gitlab.cursor import parse_time
from pinpoint_agent.ids import commit_id, git_user_ref_id, hashcode, pull_request_id, repo_id, user_id, values

REF_TYPE = "gitlab"
_BOT_NAME = re.compile(r"^(project|group)_\d+_bot(_[0-9a-f]+)?$|^(ghost|support-bot|alert-bot)$")

STATUS = {"opened": "OPEN", "closed": "CLOSED", "locked": "LOCKED", "merged": "MERGED"}


def finish(obj: dict[str, Any]) -> dict[str, Any]:
    """Adds ``hashcode``, computed last over every other field."""
    obj["hashcode"] = hashcode(obj)
    return obj


def date(text: str | None) -> dict[str, Any]:
    """The datamodel date: ``{epoch (ms), offset (minutes), rfc3339}``; empty values for no date."""
    when = parse_time(text)
    if when is None:
        return {"epoch": 0, "offset": 0, "rfc3339": ""}
    offset = when.utcoffset()
    return {
        "epoch": int(when.timestamp() * 1000),
        "offset": int(offset.total_seconds() // 60) if offset else 0,
        "rfc3339": when.isoformat().replace("+00:00", "Z"),
    }


def _base(cust: str, oid: str, ref_id: str) -> dict[str, Any]:
    return {"id": oid, "ref_id": ref_id, "ref_type": REF_TYPE, "customer_id": cust}


def ref(obj: dict[str, Any] | None) -> str:
    """The ref id of a user (or any object with an ``id``); ``""`` for none."""
    return str(obj["id"]) if obj and obj.get("id") is not None else ""


# -- users ------------------------------------------------------------------------------------------------
def user(cust: str, u: dict[str, Any], *, member: bool = False) -> dict[str, Any]:
    """A user from any user shape (``/users``, members, an author): the email only where GitLab gives one
    (an admin's ``/users``, or a public email)."""
    uref = ref(u)
    username = str(u.get("username") or "")
    bot = bool(u.get("bot")) or bool(_BOT_NAME.match(username))
    return finish(
        {
            **_base(cust, user_id(cust, REF_TYPE, uref), uref),
            "username": username,
            "name": str(u.get("name") or username),
            "email": str(u.get("email") or u.get("public_email") or ""),
            "avatar_url": str(u.get("avatar_url") or ""),
            "url": str(u.get("web_url") or ""),
            "type": "BOT" if bot else "HUMAN",
            "member": member,
            "associated_ref_id": "",
        }
    )


def commit_users(cust: str, u: dict[str, Any], emails: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``CommitUser`` links of one user: the primary email of an admin's ``/users`` item and each secondary
    (confirmed) email of ``/users/:id/emails``; the agent turns them into git users."""
    found: dict[str, None] = {}
    for email in [u.get("email"), *(e.get("email") for e in emails if e.get("confirmed_at", True) is not None)]:
        if email:
            found.setdefault(str(email).lower())
    name = str(u.get("name") or u.get("username") or "")
    return [{"customer_id": cust, "email": e, "name": name, "source_id": ref(u)} for e in found]


# -- repos and merge requests ----------------------------------------------------------------------------
def repo(cust: str, p: dict[str, Any]) -> dict[str, Any]:
    pref = str(p["id"])
    return finish(
        {
            **_base(cust, repo_id(cust, REF_TYPE, pref), pref),
            "name": str(p["path_with_namespace"]),
            "url": str(p.get("web_url") or ""),
            "description": str(p.get("description") or ""),
            "language": "",
            "default_branch": str(p.get("default_branch") or ""),
            "active": not p.get("archived", False),
            "created_date": date(p.get("created_at")),
            "updated_date": date(p.get("updated_at") or p.get("last_activity_at")),
        }
    )


def mr_id(cust: str, repo_obj: dict[str, Any], mr: dict[str, Any]) -> str:
    return pull_request_id(cust, str(mr["id"]), REF_TYPE, repo_obj["id"])


def pull_request(cust: str, repo_obj: dict[str, Any], mr: dict[str, Any], commit_shas: list[str]) -> dict[str, Any]:
    """A merge request from the list (or single) object; ``commit_shas`` oldest first."""
    rid = repo_obj["id"]
    state = str(mr.get("state") or "")
    merged = state == "merged"
    merge_sha = str(mr.get("merge_commit_sha") or mr.get("squash_commit_sha") or "") if merged else ""
    merged_by = mr.get("merge_user") or mr.get("merged_by")  # merged_by is deprecated since GitLab 14.7
    milestone = mr.get("milestone") or {}
    references = mr.get("references") or {}
    return finish(
        {
            **_base(cust, mr_id(cust, repo_obj, mr), str(mr["id"])),
            "repo_id": rid,
            "identifier": str(references.get("full") or f"{repo_obj['name']}!{mr['iid']}"),
            "number": int(mr["iid"]),
            "title": str(mr.get("title") or ""),
            "description": str(mr.get("description") or ""),
            "url": str(mr.get("web_url") or ""),
            "status": STATUS.get(state, "OPEN"),
            "draft": bool(mr.get("draft", mr.get("work_in_progress", False))),
            "merge_status": str(mr.get("detailed_merge_status") or mr.get("merge_status") or ""),
            "labels": [str(lb if isinstance(lb, str) else lb.get("name", "")) for lb in mr.get("labels") or []],
            "milestone_ref_id": ref(milestone),
            "milestone": str(milestone.get("title") or ""),
            "merged": merged,
            "closed": state in ("closed", "merged", "locked"),
            "created_date": date(mr.get("created_at")),
            "updated_date": date(mr.get("updated_at")),
            "closed_date": date(mr.get("closed_at")),
            "merged_date": date(mr.get("merged_at")),
            "merge_sha": merge_sha,
            "merge_commit_id": commit_id(cust, merge_sha, REF_TYPE, rid) if merge_sha else "",
            "merged_by_ref_id": ref(merged_by) if merged else "",
            "closed_by_ref_id": ref(mr.get("closed_by")),
            "branch_name": str(mr.get("source_branch") or ""),
            "base_branch_name": str(mr.get("target_branch") or ""),
            "last_commit_sha": str(mr.get("sha") or ""),
            "created_by_ref_id": ref(mr.get("author")),
            "reviewer_ref_ids": [ref(r) for r in mr.get("reviewers") or []],
            "commit_shas": commit_shas,
            "commit_ids": [commit_id(cust, sha, REF_TYPE, rid) for sha in commit_shas],
        }
    )


def pr_commit(cust: str, repo_obj: dict[str, Any], pr_id: str, c: dict[str, Any]) -> dict[str, Any]:
    sha = str(c["id"])
    rid = repo_obj["id"]
    return finish(
        {
            **_base(cust, commit_id(cust, sha, REF_TYPE, rid), sha),
            "repo_id": rid,
            "pull_request_id": pr_id,
            "sha": sha,
            "message": str(c.get("message") or c.get("title") or ""),
            "url": str(c.get("web_url") or ""),
            "author_ref_id": git_user_ref_id(cust, str(c.get("author_email") or "")),
            "committer_ref_id": git_user_ref_id(cust, str(c.get("committer_email") or "")),
            "created_date": date(c.get("committed_date") or c.get("created_at")),
        }
    )


def approval(
    cust: str, repo_obj: dict[str, Any], pr_id: str, mr: dict[str, Any], approved: dict[str, Any]
) -> dict[str, Any]:
    """One ``approved_by`` entry of ``/approvals`` as an APPROVED review (``approved_at`` where GitLab has it)."""
    who = approved.get("user") or {}
    aref = f"approval-{mr['id']}-{ref(who)}"
    rid = repo_obj["id"]
    return finish(
        {
            **_base(cust, values(cust, aref, REF_TYPE, rid), aref),
            "repo_id": rid,
            "pull_request_id": pr_id,
            "state": "APPROVED",
            "url": str(mr.get("web_url") or ""),
            "user_ref_id": ref(who),
            "created_date": date(approved.get("approved_at")),
        }
    )


# A reviewer's state (``/reviewers``) as a review; "approved" is left to the approvals, which carry it too,
# and "unreviewed" (asked, not yet done) is no review.
REVIEW_STATES = {"reviewed": "COMMENTED", "requested_changes": "CHANGES_REQUESTED", "unapproved": "DISMISSED"}


def review(
    cust: str, repo_obj: dict[str, Any], pr_id: str, mr: dict[str, Any], r: dict[str, Any]
) -> dict[str, Any] | None:
    """A reviewer entry of ``/reviewers`` as a review in its state, or None when it is no review."""
    state = REVIEW_STATES.get(str(r.get("state") or ""))
    if state is None:
        return None
    who = r.get("user") or {}
    rref = f"review-{mr['id']}-{ref(who)}"
    rid = repo_obj["id"]
    return finish(
        {
            **_base(cust, values(cust, rref, REF_TYPE, rid), rref),
            "repo_id": rid,
            "pull_request_id": pr_id,
            "state": state,
            "url": str(mr.get("web_url") or ""),
            "user_ref_id": ref(who),
            "created_date": date(r.get("created_at")),
        }
    )


def comment(cust: str, repo_obj: dict[str, Any], pr_id: str, mr: dict[str, Any], n: dict[str, Any]) -> dict[str, Any]:
    """A user's note on a merge request (a discussion reply or a diff note alike)."""
    nref = str(n["id"])
    rid = repo_obj["id"]
    return finish(
        {
            **_base(cust, values(cust, nref, REF_TYPE, rid), nref),
            "repo_id": rid,
            "pull_request_id": pr_id,
            "body": str(n.get("body") or ""),
            "url": f"{mr.get('web_url') or ''}#note_{nref}",
            "user_ref_id": ref(n.get("author")),
            "created_date": date(n.get("created_at")),
            "updated_date": date(n.get("updated_at")),
        }
    )


def user_notes(notes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Notes people wrote: system notes ("added 1 commit", "approved this merge request") are left out."""
    return [n for n in notes if not n.get("system")]
