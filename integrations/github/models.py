"""GitHub payloads (REST v3, GraphQL v4 members) -> pinpoint datamodel objects.

Ref ids are GitHub's GraphQL node ids, as the original agent used (it read everything through GraphQL), so
ids computed from them stay the same: users ``ids.user_id``, repos ``ids.repo_id``, pull requests
``ids.pull_request_id``, pull request commits ``ids.commit_id``. Reviews and comments use the pull request
formula over their own ref id (``values(customer_id, ref_id, ref_type, repo_id)``). Every object ends with
``hashcode`` computed over the others (``ids.hashcode``).

A payload without ``node_id`` (older Enterprise servers) gets the legacy node id GitHub derives from the
object's type and numeric id (``legacy_node_id``), the same id GraphQL and newer payloads carry, so one
person (or pull request) has one ref id whichever payload named it.

A deleted account (GitHub answers ``null`` for the user, or its ``ghost`` account) is the special ``ghost``
user; commits made by GitHub itself (``noreply@github.com``) link to the ``github-noreply`` bot user.
Accounts of ``type: Bot``, logins ending ``[bot]`` and GitHub's ``web-flow`` committer are bots.
"""

from __future__ import annotations

import base64
from typing import Any

from integrations.github.cursor import parse_time
from pinpoint_agent.ids import commit_id, git_user_ref_id, hashcode, pull_request_id, repo_id, user_id, values

REF_TYPE = "github"
GHOST_REF_ID = "MDQ6VXNlcjEwMTM3"  # GitHub's "ghost" account (id 10137) that deleted users' content moves to
NOREPLY_REF_ID = "github-noreply"
NOREPLY_EMAIL = "noreply@github.com"
BOT_LOGINS = frozenset({"web-flow"})  # GitHub's committer of web edits and merges: a type "User" account
ACTOR_TYPES = frozenset({"User", "Bot", "Organization", "Mannequin", "EnterpriseUserAccount"})


def legacy_node_id(kind: str, number: object) -> str:
    """GitHub's legacy global node id: base64 of ``0<len(kind)>:<kind><id>`` (``MDQ6VXNlcjE=``, User 1)."""
    return base64.b64encode(f"0{len(kind)}:{kind}{number}".encode()).decode()


def node_ref(obj: dict[str, Any], kind: str) -> str:
    """An object's ref id: its ``node_id``, else the legacy node id of its numeric ``id``."""
    if obj.get("node_id"):
        return str(obj["node_id"])
    return legacy_node_id(kind, obj["id"])


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


# -- users ------------------------------------------------------------------------------------------------
def user_ref(user: dict[str, Any] | None) -> str:
    """The ref id of a REST user object; ``null`` (deleted account) is the ghost user."""
    if not user or not (user.get("node_id") or user.get("id")):
        return GHOST_REF_ID
    kind = str(user.get("type") or "User")
    return node_ref(user, kind if kind in ACTOR_TYPES else "User")


def is_bot(user: dict[str, Any]) -> bool:
    login = str(user.get("login") or "")
    return user.get("type") == "Bot" or login.endswith("[bot]") or login in BOT_LOGINS


def actor_user(actor: dict[str, Any] | None) -> dict[str, Any] | None:
    """A GraphQL ``Actor`` (``__typename``, ``id``, ``databaseId``, ``login``, …) as REST's short user."""
    if not actor:
        return None
    return {
        "login": actor.get("login"),
        "id": actor.get("databaseId"),
        "node_id": actor.get("id"),
        "type": actor.get("__typename") or "User",
        "name": actor.get("name"),
        "avatar_url": actor.get("avatarUrl"),
        "html_url": actor.get("url"),
    }


def _user(
    cust: str, ref: str, *, login: str, name: str, email: str, avatar: str, url: str, kind: str, member: bool
) -> dict[str, Any]:
    return finish(
        {
            **_base(cust, user_id(cust, REF_TYPE, ref), ref),
            "username": login,
            "name": name or login,
            "email": email,
            "avatar_url": avatar,
            "url": url,
            "type": kind,
            "member": member,
            "associated_ref_id": "",
        }
    )


def member_user(cust: str, node: dict[str, Any]) -> dict[str, Any]:
    """An organization member from the GraphQL ``membersWithRole`` connection."""
    return _user(
        cust,
        str(node["id"]),
        login=str(node.get("login") or ""),
        name=str(node.get("name") or ""),
        email=str(node.get("email") or ""),
        avatar=str(node.get("avatarUrl") or ""),
        url=str(node.get("url") or ""),
        kind="HUMAN",
        member=True,
    )


def rest_user(cust: str, user: dict[str, Any] | None) -> dict[str, Any]:
    """A user met in a pull request, review, comment or commit (REST's short user object)."""
    if not user or user_ref(user) == GHOST_REF_ID:
        return ghost_user(cust)
    kind = "BOT" if is_bot(user) else "HUMAN"
    return _user(
        cust,
        user_ref(user),
        login=str(user.get("login") or ""),
        name=str(user.get("name") or ""),
        email=str(user.get("email") or ""),
        avatar=str(user.get("avatar_url") or ""),
        url=str(user.get("html_url") or ""),
        kind=kind,
        member=False,
    )


def ghost_user(cust: str) -> dict[str, Any]:
    return _user(
        cust,
        GHOST_REF_ID,
        login="ghost",
        name="Deleted user",
        email="",
        avatar="",
        url="https://github.com/ghost",
        kind="DELETED_SPECIAL_USER",
        member=False,
    )


def noreply_user(cust: str) -> dict[str, Any]:
    return _user(
        cust,
        NOREPLY_REF_ID,
        login="github-noreply",
        name="GitHub",
        email=NOREPLY_EMAIL,
        avatar="",
        url="",
        kind="BOT",
        member=False,
    )


def commit_users(cust: str, commit: dict[str, Any]) -> list[dict[str, Any]]:
    """``CommitUser`` links (email <-> account) of one commit of the commits API, author and committer."""
    links = []
    detail = commit.get("commit") or {}
    for role in ("author", "committer"):
        person = detail.get(role) or {}
        email = str(person.get("email") or "")
        account = commit.get(role)
        if not email:
            continue
        if email.lower() == NOREPLY_EMAIL:
            source = NOREPLY_REF_ID
        elif account:
            source = user_ref(account)
        else:
            continue  # an email no account claims: git processing adds it as an unlinked git user
        links.append(
            {"customer_id": cust, "email": email, "name": str(person.get("name") or ""), "source_id": source}
        )
    return links


# -- repos and pull requests --------------------------------------------------------------------------------
def repo(cust: str, r: dict[str, Any]) -> dict[str, Any]:
    ref = node_ref(r, "Repository")
    return finish(
        {
            **_base(cust, repo_id(cust, REF_TYPE, ref), ref),
            "name": str(r["full_name"]),
            "url": str(r.get("html_url") or ""),
            "description": str(r.get("description") or ""),
            "language": str(r.get("language") or ""),
            "default_branch": str(r.get("default_branch") or ""),
            "active": not r.get("archived", False) and not r.get("disabled", False),
            "created_date": date(r.get("created_at")),
            "updated_date": date(r.get("updated_at")),
        }
    )


def pr_ref(pr: dict[str, Any]) -> str:
    return node_ref(pr, "PullRequest")


def pull_request(
    cust: str, repo_obj: dict[str, Any], pr: dict[str, Any], commit_shas: list[str]
) -> dict[str, Any]:
    """A pull request from the REST list/get object; ``commit_shas`` from its commits, oldest first.

    ``merged_by`` and ``closed_by`` are read from ``pr`` (REST's single pull request has ``merged_by``, the
    issue has ``closed_by``; the export adds both to list items, which carry neither). A pull request that
    is merged or closed but whose closer is ``null`` was closed by a since-deleted account: the ghost."""
    ref = pr_ref(pr)
    rid = repo_obj["id"]
    merged = bool(pr.get("merged_at")) or bool(pr.get("merged"))
    closed = pr.get("state") == "closed"
    merge_sha = str(pr.get("merge_commit_sha") or "") if merged else ""
    head = pr.get("head") or {}
    merged_by = _closer_ref(pr, "merged_by") if merged else ""
    closed_by = (_closer_ref(pr, "closed_by") or merged_by) if closed or merged else ""
    return finish(
        {
            **_base(cust, pull_request_id(cust, ref, REF_TYPE, rid), ref),
            "repo_id": rid,
            "identifier": f"{repo_obj['name']}#{pr['number']}",
            "number": int(pr["number"]),
            "title": str(pr.get("title") or ""),
            "description": str(pr.get("body") or ""),
            "url": str(pr.get("html_url") or ""),
            "status": "MERGED" if merged else ("CLOSED" if closed else "OPEN"),
            "draft": bool(pr.get("draft", False)),
            "labels": [str(lb.get("name", "")) for lb in pr.get("labels") or []],
            "merged": merged,
            "closed": closed or merged,
            "created_date": date(pr.get("created_at")),
            "updated_date": date(pr.get("updated_at")),
            "closed_date": date(pr.get("closed_at")),
            "merged_date": date(pr.get("merged_at")),
            "merge_sha": merge_sha,
            "merge_commit_id": commit_id(cust, merge_sha, REF_TYPE, rid) if merge_sha else "",
            "merged_by_ref_id": merged_by,
            "closed_by_ref_id": closed_by,
            "branch_name": str(head.get("ref") or ""),
            "last_commit_sha": str(head.get("sha") or ""),
            "created_by_ref_id": user_ref(pr.get("user")),
            "commit_shas": commit_shas,
            "commit_ids": [commit_id(cust, sha, REF_TYPE, rid) for sha in commit_shas],
        }
    )


def _closer_ref(pr: dict[str, Any], key: str) -> str:
    """``""`` when the payload does not say who (the key is absent); the ghost when GitHub says ``null``."""
    return user_ref(pr[key]) if key in pr else ""


def pr_commit(cust: str, repo_obj: dict[str, Any], pr_id: str, c: dict[str, Any]) -> dict[str, Any]:
    sha = str(c["sha"])
    rid = repo_obj["id"]
    detail = c.get("commit") or {}
    author, committer = detail.get("author") or {}, detail.get("committer") or {}
    return finish(
        {
            **_base(cust, commit_id(cust, sha, REF_TYPE, rid), sha),
            "repo_id": rid,
            "pull_request_id": pr_id,
            "sha": sha,
            "message": str(detail.get("message") or ""),
            "url": str(c.get("html_url") or ""),
            "author_ref_id": git_user_ref_id(cust, str(author.get("email") or "")),
            "committer_ref_id": git_user_ref_id(cust, str(committer.get("email") or "")),
            "created_date": date(committer.get("date") or author.get("date")),
        }
    )


def review(cust: str, repo_obj: dict[str, Any], pr_id: str, r: dict[str, Any]) -> dict[str, Any]:
    ref = node_ref(r, "PullRequestReview")
    rid = repo_obj["id"]
    return finish(
        {
            **_base(cust, values(cust, ref, REF_TYPE, rid), ref),
            "repo_id": rid,
            "pull_request_id": pr_id,
            "state": str(r.get("state") or ""),
            "url": str(r.get("html_url") or ""),
            "user_ref_id": user_ref(r.get("user")),
            "created_date": date(r.get("submitted_at")),
        }
    )


def comment(cust: str, repo_obj: dict[str, Any], pr_id: str, c: dict[str, Any]) -> dict[str, Any]:
    """An issue comment on a pull request (conversation) or a review comment (on the diff)."""
    ref = node_ref(c, "PullRequestReviewComment" if "pull_request_url" in c else "IssueComment")
    rid = repo_obj["id"]
    return finish(
        {
            **_base(cust, values(cust, ref, REF_TYPE, rid), ref),
            "repo_id": rid,
            "pull_request_id": pr_id,
            "body": str(c.get("body") or ""),
            "url": str(c.get("html_url") or ""),
            "user_ref_id": user_ref(c.get("user")),
            "created_date": date(c.get("created_at")),
            "updated_date": date(c.get("updated_at")),
        }
    )


def comment_pr_number(c: dict[str, Any]) -> int | None:
    """The pull request number a comment belongs to; ``None`` for comments on plain issues."""
    if "pull_request_url" in c:  # review comment
        url = str(c.get("pull_request_url") or "")
    else:  # issue comment: only those whose html_url points at a pull request
        html = str(c.get("html_url") or "")
        if "/pull/" not in html:
            return None
        url = str(c.get("issue_url") or "")
    tail = url.rstrip("/").rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else None
