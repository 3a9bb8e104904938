"""The fake Jira's data: projects, users, issues with change logs and comments, boards and sprints, in the
shapes Atlassian documents for Cloud (REST v3, ADF bodies, accountId) and Data Center (REST v2, wiki markup,
user key/name, legacy sprint strings). Issue payloads are built on demand from plain records, so an issue
changed by a test or a mutation shows the change everywhere.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

BASE_TIME = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
TZ_OFFSET = timedelta(hours=2)  # issue times are written in +0200, as a site in Berlin writes them (summer)


def jira_time(when: datetime) -> str:
    """``2024-03-01T11:00:00.000+0200``."""
    local = when.astimezone(UTC) + TZ_OFFSET
    return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}+0200"


@dataclass
class User:
    account_id: str  # Cloud
    key: str  # DC
    name: str  # DC user name
    display: str
    email: str
    email_visible: bool = True
    app: bool = False


USERS = [
    User("5b10a2844c20165700ede21g", "JIRAUSER10000", "alice", "Alice Liddell", "Alice@Acme.example"),
    User("5b10ac8d82e05b22cc7d4ef5", "JIRAUSER10001", "bob", "Bob Builder", "bob@acme.example"),
    User("712020:0e3d5c2f-aaaa-4d8e", "JIRAUSER10002", "carol", "Carol Danvers", "carol@acme.example",
         email_visible=False),
    User("557058:f58131cb-b67d-43c7-b30d-6b58d40bd077", "JIRAUSER10003", "automation", "Automation for Jira",
         "", email_visible=False, app=True),
]

STATUSES = [  # id, name, category key, category id
    ("10000", "To Do", "new", 2), ("3", "In Progress", "indeterminate", 4), ("10001", "Done", "done", 3),
]
PRIORITIES = [("1", "Highest"), ("2", "High"), ("3", "Medium"), ("4", "Low")]
ISSUE_TYPES = [("10001", "Story", False, 0), ("10002", "Bug", False, 0), ("10000", "Epic", False, 1),
               ("10003", "Sub-task", True, -1)]
RESOLUTIONS = [("10000", "Done"), ("10001", "Won't Do")]
TRANSITIONS = {"11": "10000", "21": "3", "31": "10001"}  # transition id -> target status id


@dataclass
class Comment:
    id: int
    author: int
    text: str
    created: datetime
    updated: datetime


@dataclass
class History:
    id: int
    author: int
    created: datetime
    items: list[dict[str, str]]


@dataclass
class Issue:
    id: int
    key: str
    project: str
    summary: str
    type_id: str
    status_id: str
    priority_id: str
    created: datetime
    updated: datetime
    reporter: int
    assignee: int | None
    labels: list[str] = field(default_factory=list)
    story_points: float | None = None
    sprint_ids: list[int] = field(default_factory=list)
    parent: int | None = None  # issue id
    epic_key: str = ""
    resolution_id: str = ""
    resolved: datetime | None = None
    links: list[tuple[str, int, bool]] = field(default_factory=list)  # (type, other issue id, inward)
    comments: list[Comment] = field(default_factory=list)
    histories: list[History] = field(default_factory=list)


@dataclass
class Project:
    id: str
    key: str
    name: str
    board_type: str  # scrum | kanban


class FakeData:
    def __init__(self, url: str, *, cloud: bool, issues_per_project: int = 7, comments_per_issue: int = 2,
                 histories_per_issue: int = 2, projects: int = 3) -> None:
        self.url = url
        self.cloud = cloud
        self.ids = itertools.count(10001)
        self.comment_ids = itertools.count(20001)
        self.history_ids = itertools.count(30001)
        names = [("ENG", "Engineering", "scrum"), ("OPS", "Operations", "kanban"), ("DOC", "Documentation", "scrum")]
        names += [(f"P{i:02d}", f"Project {i}", "scrum") for i in range(len(names), projects)]
        self.projects = [Project(str(10000 + i), k, n, b) for i, (k, n, b) in enumerate(names[:projects])]
        self.issues: dict[int, Issue] = {}
        self.sprints = {1: ("Sprint 1", "closed", 1), 2: ("Sprint 2", "active", 1), 3: ("Sprint 3", "future", 1),
                        4: ("Docs sprint", "active", 3)}
        self.clock = BASE_TIME
        for p in self.projects:
            for n in range(1, issues_per_project + 1):
                self._make(p, n, comments_per_issue, histories_per_issue)
        self.deleted: set[int] = set()

    # -- building ------------------------------------------------------------------------------------------
    def tick(self) -> datetime:
        self.clock += timedelta(minutes=7)
        return self.clock

    def _make(self, p: Project, n: int, comments: int, histories: int) -> None:
        created = self.tick()
        iid = next(self.ids)
        epic = n == 1
        issue = Issue(
            id=iid, key=f"{p.key}-{n}", project=p.id, summary=f"{p.name} task {n}",
            type_id="10000" if epic else ("10002" if n % 3 == 0 else "10001"), status_id="10000",
            priority_id=str(1 + n % 4), created=created, updated=created, reporter=n % 3,
            assignee=None if n % 5 == 0 else (n + 1) % 3, labels=["backend"] if n % 2 else [],
            story_points=float(n % 5) if n % 4 else None,
            sprint_ids=[1, 2] if p.key == "ENG" and n % 2 else ([4] if p.key == "DOC" else []),
        )
        if not epic:
            first = self.first_issue(p.id)
            if first is not None:
                if self.cloud:
                    issue.parent = first.id
                else:
                    issue.epic_key = first.key
        if n == 3:
            prev = self.first_issue(p.id)
            if prev is not None:
                issue.links.append(("Blocks", prev.id, False))
        self.issues[iid] = issue
        for h in range(histories):
            self.transition(issue, ["3", "10001", "10000", "3"][h % 4], author=(n + h) % 3, advance=False)
        for c in range(comments):
            self.add_comment(issue, (n + c) % 3, f"Comment {c + 1} on {issue.key}", advance=False)

    def first_issue(self, project_id: str) -> Issue | None:
        return next((i for i in self.issues.values() if i.project == project_id), None)

    def transition(self, issue: Issue, status_id: str, *, author: int = 0, advance: bool = True) -> None:
        when = self.tick()
        names = {s[0]: s[1] for s in STATUSES}
        issue.histories.append(History(next(self.history_ids), author, when, [
            {"field": "status", "fieldtype": "jira", "fieldId": "status", "from": issue.status_id,
             "fromString": names[issue.status_id], "to": status_id, "toString": names[status_id]}]))
        issue.status_id = status_id
        issue.resolution_id, issue.resolved = ("10000", when) if status_id == "10001" else ("", None)
        issue.updated = when

    def add_comment(self, issue: Issue, author: int, text: str, *, advance: bool = True) -> Comment:
        when = self.tick()
        c = Comment(next(self.comment_ids), author, text, when, when)
        issue.comments.append(c)
        issue.updated = when
        return c

    def touch(self, issue: Issue, **changes: Any) -> None:
        """Changes fields (summary, priority_id, assignee) with a history entry, as Jira records an edit."""
        when = self.tick()
        items = []
        for k, v in changes.items():
            old = getattr(issue, k)
            setattr(issue, k, v)
            name = {"summary": "summary", "priority_id": "priority", "assignee": "assignee"}[k]
            items.append({"field": name, "fieldtype": "jira", "from": str(old or ""), "fromString": str(old or ""),
                          "to": str(v or ""), "toString": str(v or "")})
        issue.histories.append(History(next(self.history_ids), 0, when, items))
        issue.updated = when

    def by_key(self, key_or_id: str) -> Issue | None:
        for i in self.issues.values():
            if (i.key == key_or_id or str(i.id) == key_or_id) and i.id not in self.deleted:
                return i
        return None

    # -- payloads ------------------------------------------------------------------------------------------
    def user(self, idx: int | None) -> dict[str, Any] | None:
        if idx is None:
            return None
        u = USERS[idx]
        avatars = {s: f"https://avatar.example/{u.name}/{s}" for s in ("48x48", "24x24", "16x16", "32x32")}
        if self.cloud:
            out: dict[str, Any] = {"self": f"{self.url}/rest/api/3/user?accountId={u.account_id}",
                                   "accountId": u.account_id, "avatarUrls": avatars, "displayName": u.display,
                                   "active": True, "timeZone": "Europe/Berlin",
                                   "accountType": "app" if u.app else "atlassian"}
        else:
            out = {"self": f"{self.url}/rest/api/2/user?username={u.name}", "key": u.key, "name": u.name,
                   "avatarUrls": avatars, "displayName": u.display, "active": True, "timeZone": "Europe/Berlin"}
        if u.email_visible:  # Cloud leaves emailAddress out when the user's privacy settings hide it
            out["emailAddress"] = u.email
        return out

    def users(self) -> list[dict[str, Any]]:
        return [u for i in range(len(USERS)) if (u := self.user(i)) is not None]

    def project(self, p: Project) -> dict[str, Any]:
        api = "3" if self.cloud else "2"
        out = {"self": f"{self.url}/rest/api/{api}/project/{p.id}", "id": p.id, "key": p.key, "name": p.name,
               "description": f"The {p.name} project", "projectTypeKey": "software", "simplified": False,
               "avatarUrls": {"48x48": f"{self.url}/avatar/{p.key}"},
               "projectCategory": {"id": "10000", "name": "Product", "description": ""}}
        if self.cloud:
            out["style"] = "classic"
            out["isPrivate"] = False
        return out

    def status(self, sid: str) -> dict[str, Any]:
        s = next(s for s in STATUSES if s[0] == sid)
        return {"self": f"{self.url}/rest/api/2/status/{sid}", "description": "", "name": s[1], "id": sid,
                "statusCategory": {"self": f"{self.url}/rest/api/2/statuscategory/{s[3]}", "id": s[3],
                                   "key": s[2], "colorName": "blue-gray", "name": s[1]}}

    def issue_type(self, tid: str) -> dict[str, Any]:
        t = next(t for t in ISSUE_TYPES if t[0] == tid)
        out: dict[str, Any] = {"self": f"{self.url}/rest/api/2/issuetype/{tid}", "id": tid, "name": t[1],
                               "subtask": t[2], "description": ""}
        if self.cloud:
            out["hierarchyLevel"] = t[3]
        return out

    def body(self, text: str) -> Any:
        """Cloud v3: ADF; Data Center v2: wiki markup."""
        if self.cloud:
            return {"type": "doc", "version": 1,
                    "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}]}
        return f"*{text}*"

    def comment(self, c: Comment, *, rendered: bool = False) -> dict[str, Any]:
        out = {"self": f"{self.url}/rest/api/2/issue/x/comment/{c.id}", "id": str(c.id),
               "author": self.user(c.author), "body": self.body(c.text), "updateAuthor": self.user(c.author),
               "created": jira_time(c.created), "updated": jira_time(c.updated), "jsdPublic": True}
        if rendered:
            out["renderedBody"] = f"<p>{c.text}</p>"
        return out

    def history(self, h: History) -> dict[str, Any]:
        return {"id": str(h.id), "author": self.user(h.author), "created": jira_time(h.created), "items": h.items}

    def sprint(self, sid: int) -> dict[str, Any]:
        name, state, board = self.sprints[sid]
        out: dict[str, Any] = {"id": sid, "self": f"{self.url}/rest/agile/1.0/sprint/{sid}", "state": state,
                               "name": name, "originBoardId": board, "goal": f"Goal of {name}"}
        if state != "future":
            out["startDate"] = "2024-02-01T09:00:00.000Z"
            out["endDate"] = "2024-02-15T09:00:00.000Z"
        if state == "closed":
            out["completeDate"] = "2024-02-15T10:30:00.000Z"
        return out

    def sprint_field(self, ids: list[int]) -> Any:
        if not ids:
            return None
        if self.cloud:
            return [{"id": s, "name": self.sprints[s][0], "state": self.sprints[s][1], "boardId": self.sprints[s][2],
                     "goal": ""} for s in ids]
        return [f"com.atlassian.greenhopper.service.sprint.Sprint@1f{s}a[id={s},rapidViewId={self.sprints[s][2]},"
                f"state={self.sprints[s][1].upper()},name={self.sprints[s][0]},startDate=<null>,endDate=<null>,"
                f"completeDate=<null>,sequence={s},goal=]" for s in ids]
