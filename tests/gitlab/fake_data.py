"""The fake GitLab's content: the group ``acme`` (with subgroup ``acme/platform``), its projects, users with
emails, merge requests with commits, approvals and notes (system notes among them), and issues.

Payloads follow GitLab's documented API v4 shapes, including what they leave out: list items of merge
requests carry no ``diff_refs``, ``changes_count``, ``merge_error`` or ``head_pipeline`` (the single merge
request has them); user objects embedded anywhere, and ``/users`` for a non-admin, carry no ``email``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def iso(when: datetime) -> str:
    """GitLab's time format: UTC, milliseconds, ``Z``."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def sha(*parts: Any) -> str:
    return hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()


@dataclass
class FakeUser:
    id: int
    username: str
    name: str
    email: str
    secondary: list[str] = field(default_factory=list)
    bot: bool = False
    admin: bool = False


USERS = [
    FakeUser(1, "alice", "Alice Liddell", "alice@acme.example", ["alice@home.example"], admin=True),
    FakeUser(2, "bob", "Bob Builder", "bob@acme.example"),
    FakeUser(3, "carol", "Carol Danvers", "carol@acme.example", ["c.danvers@old.example"]),
    FakeUser(4, "project_11_bot_3f2a", "api deploy bot", "project11_bot@noreply.example", bot=True),
]


@dataclass
class FakeProject:
    id: int
    path: str  # path_with_namespace
    archived: bool = False
    merge_requests_enabled: bool = True
    mrs: list[dict[str, Any]] = field(default_factory=list)
    commits: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    approvals: dict[int, list[int]] = field(default_factory=dict)
    reviewers: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    notes: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    issues: list[dict[str, Any]] = field(default_factory=list)
    issue_notes: dict[int, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        return self.path.rsplit("/", 1)[0]


class FakeData:
    """Builds and changes the payloads; ``base`` is the fake server's url (web urls)."""

    def __init__(self, base: str, *, mrs_per_project: dict[str, int] | None = None, notes_per_mr: int = 3) -> None:
        self.base = base
        self.users = list(USERS)  # this fake's users: tests may add some
        self.by_id = {u.id: u for u in self.users}
        self.clock = T0
        self.projects: dict[int, FakeProject] = {}
        self.clone_urls: dict[str, str] = {}  # path -> a local git repo the project's clone url points at
        self.groups = {"acme": 100, "acme/platform": 101}
        self._ids = 10_000
        counts = mrs_per_project or {"acme/api": 5, "acme/web": 3, "acme/platform/infra": 2, "acme/old": 1}
        for n, (path, count) in enumerate(counts.items()):
            p = FakeProject(11 + n, path, archived=path == "acme/old")
            self.projects[p.id] = p
            for iid in range(1, count + 1):
                self._add_mr(p, iid, notes_per_mr)
            for iid in range(1, 3):
                self._add_issue(p, iid)
        # a project outside the group that alice is a member of (seen without groups configured)
        self.projects[90] = FakeProject(90, "alice/sandbox")

    # -- building --------------------------------------------------------------------------------------
    def next_id(self) -> int:
        self._ids += 1
        return self._ids

    def tick(self) -> str:
        self.clock += timedelta(minutes=1)
        return iso(self.clock)

    def short_user(self, uid: int) -> dict[str, Any]:
        u = self.by_id[uid]
        return {
            "id": u.id,
            "username": u.username,
            "name": u.name,
            "state": "active",
            "locked": False,
            "avatar_url": f"{self.base}/uploads/-/system/user/avatar/{u.id}/avatar.png",
            "web_url": f"{self.base}/{u.username}",
        }

    def admin_user(self, u: FakeUser) -> dict[str, Any]:
        return {
            **self.short_user(u.id),
            "email": u.email,
            "is_admin": u.admin,
            "bot": u.bot,
            "created_at": iso(T0),
            "last_sign_in_at": iso(T0),
            "confirmed_at": iso(T0),
            "two_factor_enabled": False,
            "external": False,
        }

    def _add_mr(self, p: FakeProject, iid: int, notes: int) -> None:
        states = ["merged", "opened", "closed", "merged", "locked"]
        state = states[(iid - 1) % len(states)]
        created = self.tick()
        author = [1, 2, 3][iid % 3]
        branch = f"feature-{iid}"
        commits = [
            {
                "id": sha(p.path, iid, k),
                "short_id": sha(p.path, iid, k)[:8],
                "title": f"change {k} of !{iid}",
                "message": f"change {k} of !{iid}\n",
                "author_name": self.by_id[author].name,
                "author_email": self.by_id[author].email,
                "authored_date": created,
                "committer_name": self.by_id[author].name,
                "committer_email": self.by_id[author].email,
                "committed_date": created,
                "created_at": created,
                "parent_ids": [],
                "web_url": f"{self.base}/{p.path}/-/commit/{sha(p.path, iid, k)}",
            }
            for k in (1, 2)
        ]
        p.commits[iid] = list(reversed(commits))  # GitLab lists a merge request's commits newest first
        mr: dict[str, Any] = {
            "id": 500_000 + p.id * 1000 + iid,
            "iid": iid,
            "project_id": p.id,
            "title": f"Merge request {iid} of {p.path}",
            "description": f"Does thing {iid}",
            "state": state,
            "created_at": created,
            "updated_at": created,
            "merged_by": self.short_user(2) if state == "merged" else None,
            "merge_user": self.short_user(2) if state == "merged" else None,
            "merged_at": created if state == "merged" else None,
            "closed_by": self.short_user(3) if state == "closed" else None,
            "closed_at": created if state == "closed" else None,
            "target_branch": "main",
            "source_branch": branch,
            "user_notes_count": notes,
            "upvotes": 0,
            "downvotes": 0,
            "author": self.short_user(author),
            "assignees": [self.short_user(2)],
            "assignee": self.short_user(2),
            "reviewers": [self.short_user(3)],
            "source_project_id": p.id,
            "target_project_id": p.id,
            "labels": ["feature", "backend"] if iid % 2 else [],
            "draft": state == "opened",
            "work_in_progress": state == "opened",
            "milestone": {"id": 70 + p.id, "iid": 1, "project_id": p.id, "title": "v1.0", "state": "active"}
            if iid == 1
            else None,
            "merge_when_pipeline_succeeds": False,
            "merge_status": "can_be_merged",
            "detailed_merge_status": "mergeable" if state == "opened" else "not_open",
            "sha": commits[-1]["id"],
            "merge_commit_sha": sha(p.path, iid, "merge") if state == "merged" else None,
            "squash_commit_sha": None,
            "discussion_locked": None,
            "should_remove_source_branch": None,
            "force_remove_source_branch": True,
            "reference": f"!{iid}",
            "references": {"short": f"!{iid}", "relative": f"!{iid}", "full": f"{p.path}!{iid}"},
            "web_url": f"{self.base}/{p.path}/-/merge_requests/{iid}",
            "time_stats": {"time_estimate": 0, "total_time_spent": 0},
            "squash": False,
            "task_completion_status": {"count": 0, "completed_count": 0},
            "has_conflicts": False,
            "blocking_discussions_resolved": True,
        }
        p.mrs.append(mr)
        p.approvals[iid] = [3] if state == "merged" else []
        review_state = {"merged": "approved", "opened": "requested_changes", "closed": "reviewed"}.get(
            state, "unreviewed"
        )
        p.reviewers[iid] = [{"user": self.short_user(3), "state": review_state, "created_at": created}]
        p.notes[iid] = [self._note(mr, "MergeRequest", [1, 2, 3][k % 3], f"comment {k}") for k in range(notes)]
        p.notes[iid].append(self._note(mr, "MergeRequest", 2, "added 1 commit", system=True))

    def _note(self, parent: dict[str, Any], kind: str, uid: int, body: str, *, system: bool = False) -> dict[str, Any]:
        at = self.tick()
        return {
            "id": self.next_id(),
            "type": None if system else "DiscussionNote",
            "body": body,
            "attachment": None,
            "author": self.short_user(uid),
            "created_at": at,
            "updated_at": at,
            "system": system,
            "noteable_id": parent["id"],
            "noteable_type": kind,
            "project_id": parent["project_id"],
            "resolvable": False,
            "confidential": False,
            "internal": False,
            "noteable_iid": parent["iid"],
        }

    def _add_issue(self, p: FakeProject, iid: int) -> None:
        at = self.tick()
        issue = {
            "id": 800_000 + p.id * 1000 + iid,
            "iid": iid,
            "project_id": p.id,
            "title": f"Issue {iid} of {p.path}",
            "description": "It breaks",
            "state": "closed" if iid == 2 else "opened",
            "created_at": at,
            "updated_at": at,
            "closed_at": at if iid == 2 else None,
            "closed_by": self.short_user(1) if iid == 2 else None,
            "labels": ["bug"],
            "milestone": None,
            "assignees": [self.short_user(3)],
            "assignee": self.short_user(3),
            "author": self.short_user(2),
            "type": "ISSUE",
            "issue_type": "issue",
            "user_notes_count": 1,
            "due_date": "2024-03-01" if iid == 1 else None,
            "confidential": False,
            "weight": None,
            "web_url": f"{self.base}/{p.path}/-/issues/{iid}",
            "references": {"short": f"#{iid}", "relative": f"#{iid}", "full": f"{p.path}#{iid}"},
        }
        p.issues.append(issue)
        p.issue_notes[iid] = [
            self._note(issue, "Issue", 1, "seen it"),
            self._note(issue, "Issue", 1, "changed the description", system=True),
        ]

    # -- payloads --------------------------------------------------------------------------------------
    def project(self, p: FakeProject) -> dict[str, Any]:
        web = f"{self.base}/{p.path}"
        ns = p.namespace
        return {
            "id": p.id,
            "description": f"the {p.path} project",
            "name": p.path.rsplit("/", 1)[1],
            "name_with_namespace": p.path.replace("/", " / "),
            "path": p.path.rsplit("/", 1)[1],
            "path_with_namespace": p.path,
            "created_at": iso(T0),
            "updated_at": iso(T0),
            "last_activity_at": iso(T0),
            "default_branch": "main",
            "ssh_url_to_repo": f"git@fake:{p.path}.git",
            "http_url_to_repo": self.clone_urls.get(p.path, f"{web}.git"),
            "web_url": web,
            "archived": p.archived,
            "visibility": "private",
            "empty_repo": False,
            "issues_enabled": True,
            "merge_requests_enabled": p.merge_requests_enabled,
            "merge_requests_access_level": "enabled" if p.merge_requests_enabled else "disabled",
            "repository_access_level": "enabled",
            "namespace": {
                "id": self.groups.get(ns, 1),
                "full_path": ns,
                "kind": "group" if ns in self.groups else "user",
            },
        }

    def mr_full(self, mr: dict[str, Any]) -> dict[str, Any]:
        """The single merge request: what lists leave out is there."""
        return {
            **mr,
            "merge_error": None,
            "changes_count": "2",
            "diff_refs": {"base_sha": sha("base"), "head_sha": mr["sha"], "start_sha": sha("base")},
            "head_pipeline": None,
            "first_contribution": False,
            "user": {"can_merge": True},
        }

    def approvals(self, p: FakeProject, mr: dict[str, Any]) -> dict[str, Any]:
        ids = p.approvals[mr["iid"]]
        return {
            "id": mr["id"],
            "iid": mr["iid"],
            "project_id": p.id,
            "title": mr["title"],
            "state": mr["state"],
            "approved": bool(ids),
            "approved_by": [{"user": self.short_user(uid)} for uid in ids],
        }

    # -- changes ---------------------------------------------------------------------------------------
    def add_user(self, user: FakeUser) -> None:
        self.users.append(user)
        self.by_id[user.id] = user

    def touch_mr(self, pid: int, iid: int, **changes: Any) -> dict[str, Any]:
        p = self.projects[pid]
        mr = next(m for m in p.mrs if m["iid"] == iid)
        mr.update(changes)
        mr["updated_at"] = self.tick()
        return mr

    def add_mr_note(self, pid: int, iid: int, uid: int, body: str) -> dict[str, Any]:
        p = self.projects[pid]
        mr = self.touch_mr(pid, iid)  # a note touches its merge request, as GitLab does
        note = self._note(mr, "MergeRequest", uid, body)
        p.notes[iid].append(note)
        return note

    def touch_issue(self, pid: int, iid: int, **changes: Any) -> dict[str, Any]:
        issue = next(i for i in self.projects[pid].issues if i["iid"] == iid)
        issue.update(changes)
        issue["updated_at"] = self.tick()
        return issue

    def add_issue_note(self, pid: int, iid: int, uid: int, body: str) -> dict[str, Any]:
        issue = self.touch_issue(pid, iid)
        note = self._note(issue, "Issue", uid, body)
        self.projects[pid].issue_notes[iid].append(note)
        return note
