"""The fake organization ``acme``: users, repos, pull requests, commits, reviews and comments, shaped like
GitHub's REST v3 documented responses (the fields a client reads, and a few it does not).

Lists carry GitHub's list shapes, including what they leave out: a pull request in ``GET /pulls`` has no
``merged``, ``merged_by``, ``mergeable`` or counts (``comments``, ``commits``, ``additions``…); only the single
pull request (``pr_full``) has them, and only its issue (``issue``) has ``closed_by``. Who merged or closed each
pull request is in ``FakeRepo.closers`` (``None``: an account deleted since, which GitHub shows as null)."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

ORG = "acme"
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def node_id(kind: str, n: int) -> str:
    """GitHub's legacy global node ids: base64 of ``<len>:<Type><id>`` (e.g. ``MDQ6VXNlcjE=`` for user 1)."""
    raw = f"0{len(kind)}:{kind}{n}"
    return base64.b64encode(raw.encode()).decode()


def iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_iso() -> str:
    return iso(datetime.now(UTC))


def sha(*parts: Any) -> str:
    return hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()


@dataclass
class FakeUser:
    id: int
    login: str
    name: str
    email: str
    bot: bool = False
    member: bool = True


USERS = [
    FakeUser(1001, "alice", "Alice Liddell", "alice@acme.example"),
    FakeUser(1002, "bob", "Bob Builder", "bob@acme.example"),
    FakeUser(1003, "carol", "Carol Danvers", ""),
    FakeUser(49699333, "dependabot[bot]", "", "", bot=True, member=False),
    FakeUser(19864447, "web-flow", "GitHub", "noreply@github.com", member=False),
]
BY_LOGIN = {u.login: u for u in USERS}


@dataclass
class FakeRepo:
    id: int
    name: str
    prs: list[dict[str, Any]] = field(default_factory=list)
    issue_comments: list[dict[str, Any]] = field(default_factory=list)
    review_comments: list[dict[str, Any]] = field(default_factory=list)
    commits: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    reviews: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    closers: dict[int, str | None] = field(default_factory=dict)  # merged or closed pull request -> login
    archived: bool = False

    @property
    def full_name(self) -> str:
        return f"{ORG}/{self.name}"


class FakeData:
    """Builds the payloads; ``base`` is the fake server's url (html urls) and ``api`` its REST root."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.api = f"{base}/api/v3"
        self.repos: dict[str, FakeRepo] = {}
        self.clone_urls: dict[
            str, str
        ] = {}  # repo name -> a local git repo to clone instead (end-to-end tests)
        self._ids = 5000
        spec = {"api": 5, "web": 3, "docs": 1, "legacy": 0}
        for i, (name, n_prs) in enumerate(spec.items()):
            repo = FakeRepo(100 + i, name, archived=name == "legacy")
            self.repos[name] = repo
            for n in range(1, n_prs + 1):
                self.add_pr(name, created=T0 + timedelta(days=i * 10 + n), updated_offset=timedelta(hours=n))

    def next_id(self) -> int:
        self._ids += 1
        return self._ids

    # -- shapes ----------------------------------------------------------------------------------------
    def user(self, login: str | None) -> dict[str, Any] | None:
        if login is None:
            return None  # a deleted account
        u = BY_LOGIN[login]
        return {
            "login": u.login,
            "id": u.id,
            "node_id": node_id("Bot" if u.bot else "User", u.id),
            "avatar_url": f"https://avatars.example/u/{u.id}?v=4",
            "gravatar_id": "",
            "url": f"{self.api}/users/{u.login}",
            "html_url": f"{self.base}/{u.login}",
            "type": "Bot" if u.bot else "User",
            "site_admin": False,
        }

    def actor(self, login: str | None) -> dict[str, Any] | None:
        """A GraphQL ``Actor`` as the PULL_CLOSERS query selects it."""
        if login is None:
            return None
        u = BY_LOGIN[login]
        kind = "Bot" if u.bot else "User"
        node: dict[str, Any] = {
            "__typename": kind, "login": u.login, "id": node_id(kind, u.id), "databaseId": u.id,
            "avatarUrl": f"https://avatars.example/u/{u.id}?v=4", "url": f"{self.base}/{u.login}",
        }
        if not u.bot:
            node["name"] = u.name or None
        return node

    def member_node(self, u: FakeUser) -> dict[str, Any]:
        return {
            "id": node_id("User", u.id),
            "login": u.login,
            "name": u.name or None,
            "email": u.email,
            "avatarUrl": f"https://avatars.example/u/{u.id}?v=4",
            "url": f"{self.base}/{u.login}",
        }

    def repo(self, name: str) -> dict[str, Any]:
        r = self.repos[name]
        return {
            "id": r.id,
            "node_id": node_id("Repository", r.id),
            "name": r.name,
            "full_name": r.full_name,
            "private": True,
            "owner": {
                "login": ORG,
                "id": 900,
                "node_id": node_id("Organization", 900),
                "type": "Organization",
            },
            "html_url": f"{self.base}/{r.full_name}",
            "description": f"The {r.name} repo",
            "fork": False,
            "url": f"{self.api}/repos/{r.full_name}",
            "clone_url": self.clone_urls.get(name, f"{self.base}/{r.full_name}.git"),
            "ssh_url": f"git@fake:{r.full_name}.git",
            "language": "Go" if r.name == "api" else "TypeScript",
            "default_branch": "main",
            "archived": r.archived,
            "disabled": False,
            "visibility": "private",
            "created_at": iso(T0 - timedelta(days=30)),
            "updated_at": iso(T0),
            "pushed_at": iso(T0),
        }

    def org(self) -> dict[str, Any]:
        return {
            "login": ORG,
            "id": 900,
            "node_id": node_id("Organization", 900),
            "name": "Acme Corp",
            "url": f"{self.api}/orgs/{ORG}",
            "html_url": f"{self.base}/{ORG}",
            "type": "Organization",
        }

    # -- pull requests ---------------------------------------------------------------------------------
    def add_pr(
        self,
        repo_name: str,
        *,
        created: datetime | None = None,
        updated_offset: timedelta = timedelta(hours=1),
        author: str | None = "alice",
    ) -> dict[str, Any]:
        repo = self.repos[repo_name]
        n = len(repo.prs) + 1
        pid = repo.id * 1000 + n
        created = created or datetime.now(UTC).replace(microsecond=0)
        updated = created + updated_offset if updated_offset else created
        merged = n % 3 == 1
        closed = merged or n % 3 == 2
        commits = [self._commit(repo, n, i) for i in range(2)]
        if merged:
            repo.closers[n] = "bob" if n == 1 else "alice"
        elif closed:
            repo.closers[n] = "carol" if n == 2 else None  # None: closed by an account deleted since
        pr_url = f"{self.api}/repos/{repo.full_name}/pulls/{n}"
        issue_url = f"{self.api}/repos/{repo.full_name}/issues/{n}"
        html = f"{self.base}/{repo.full_name}/pull/{n}"
        pr: dict[str, Any] = {
            "url": pr_url,
            "id": pid,
            "node_id": node_id("PullRequest", pid),
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "issue_url": issue_url,
            "commits_url": f"{pr_url}/commits",
            "review_comments_url": f"{pr_url}/comments",
            "review_comment_url": f"{self.api}/repos/{repo.full_name}/pulls/comments{{/number}}",
            "comments_url": f"{issue_url}/comments",
            "statuses_url": f"{self.api}/repos/{repo.full_name}/statuses/{commits[-1]['sha']}",
            "number": n,
            "state": "closed" if closed else "open",
            "locked": False,
            "title": f"Change {n} of {repo.name}",
            "user": self.user(None if n == 3 else ("dependabot[bot]" if n == 4 else author)),
            "body": f"Body of change {n}",
            "labels": [{"id": 1, "node_id": "LA_1", "name": "feature", "color": "fff"}] if n % 2 else [],
            "created_at": iso(created),
            "updated_at": iso(updated),
            "closed_at": iso(updated) if closed else None,
            "merged_at": iso(updated) if merged else None,
            "merge_commit_sha": sha(repo.name, n, "merge"),
            "draft": n == 2,
            "milestone": None,
            "active_lock_reason": None,
            "assignee": None,
            "assignees": [],
            "requested_reviewers": [],
            "requested_teams": [],
            "head": {"label": f"{ORG}:feature-{n}", "ref": f"feature-{n}", "sha": commits[-1]["sha"],
                     "user": self.user("alice"), "repo": self.repo(repo.name)},
            "base": {
                "label": f"{ORG}:main",
                "ref": "main",
                "sha": sha(repo.name, "main"),
                "user": None,
                "repo": self.repo(repo.name),
            },
            "_links": {"self": {"href": pr_url}, "html": {"href": html}, "issue": {"href": issue_url}},
            "author_association": "MEMBER",
            "auto_merge": None,
        }
        repo.prs.append(pr)
        repo.commits[n] = commits
        reviewer = self.user("bob")
        repo.reviews[n] = [
            {
                "id": pid * 10,
                "node_id": node_id("PullRequestReview", pid * 10),
                "user": reviewer,
                "body": "LGTM",
                "state": "APPROVED",
                "html_url": f"{pr['html_url']}#pullrequestreview-{pid * 10}",
                "submitted_at": iso(updated),
                "commit_id": commits[-1]["sha"],
            },
            {
                "id": pid * 10 + 1,
                "node_id": node_id("PullRequestReview", pid * 10 + 1),
                "user": self.user("carol"),
                "body": "",
                "state": "PENDING",
                "html_url": f"{pr['html_url']}#pullrequestreview-{pid * 10 + 1}",
                "commit_id": commits[-1]["sha"],
            },
        ]
        cid = self.next_id()
        repo.issue_comments.append(self._issue_comment(repo, n, cid, "bob", iso(updated), pull=True))
        if n == 1:  # a review comment on the diff, and a comment on a plain issue (not a pull request)
            rid = self.next_id()
            repo.review_comments.append(
                {
                    "id": rid,
                    "node_id": node_id("PullRequestReviewComment", rid),
                    "user": self.user("carol"),
                    "body": "nit: rename",
                    "path": "main.go",
                    "html_url": f"{pr['html_url']}#discussion_r{rid}",
                    "pull_request_url": pr["url"],
                    "created_at": iso(updated),
                    "updated_at": iso(updated),
                }
            )
            repo.issue_comments.append(
                self._issue_comment(repo, 900 + n, self.next_id(), "alice", iso(updated), pull=False)
            )
        return pr

    def _commit(self, repo: FakeRepo, n: int, i: int) -> dict[str, Any]:
        s = sha(repo.name, n, i)
        who = ("alice", "alice") if i == 0 else ("bob", "web-flow")
        author, committer = BY_LOGIN[who[0]], BY_LOGIN[who[1]]
        unlinked = n == 2 and i == 1  # an email no account claims
        when = iso(T0 + timedelta(days=n, minutes=i))
        return {
            "sha": s,
            "node_id": node_id("Commit", n * 10 + i),
            "html_url": f"{self.base}/{repo.full_name}/commit/{s}",
            "url": f"{self.api}/repos/{repo.full_name}/commits/{s}",
            "commit": {
                "author": {
                    "name": author.name,
                    "email": "temp@laptop.local"
                    if unlinked
                    else author.email or f"{author.login}@users.noreply.github.com",
                    "date": when,
                },
                "committer": {
                    "name": committer.name,
                    "email": committer.email or "x@acme.example",
                    "date": when,
                },
                "message": f"commit {i} of change {n}",
            },
            "author": None if unlinked else self.user(author.login),
            "committer": self.user(committer.login),
            "parents": [],
        }

    def _issue_comment(
        self, repo: FakeRepo, number: int, cid: int, login: str, when: str, pull: bool
    ) -> dict[str, Any]:
        kind = "pull" if pull else "issues"
        return {
            "id": cid,
            "node_id": node_id("IssueComment", cid),
            "user": self.user(login),
            "body": f"comment {cid}",
            "html_url": f"{self.base}/{repo.full_name}/{kind}/{number}#issuecomment-{cid}",
            "issue_url": f"{self.api}/repos/{repo.full_name}/issues/{number}",
            "created_at": when,
            "updated_at": when,
            "author_association": "MEMBER",
        }

    def pr_full(self, repo_name: str, number: int) -> dict[str, Any]:
        """The single pull request (GET): the list object plus merge details and counts."""
        pr = dict(self.find_pr(repo_name, number))
        merged = bool(pr["merged_at"])
        pr.update(
            {
                "merged": merged,
                "merged_by": self.user(self.repos[repo_name].closers.get(number)) if merged else None,
                "mergeable": None,
                "rebaseable": None,
                "mergeable_state": "unknown",
                "maintainer_can_modify": False,
                "comments": 1,
                "review_comments": 0,
                "commits": 2,
                "additions": 10,
                "deletions": 2,
                "changed_files": 1,
            }
        )
        return pr

    def issue(self, repo_name: str, number: int) -> dict[str, Any]:
        """A pull request's issue (``GET /issues/{number}``): the one place REST says who closed it."""
        pr = self.find_pr(repo_name, number)
        closed = pr["state"] == "closed"
        return {
            "url": pr["issue_url"],
            "id": pr["id"] + 7_000_000,
            "node_id": node_id("Issue", pr["id"] + 7_000_000),
            "number": number,
            "title": pr["title"],
            "user": pr["user"],
            "labels": pr["labels"],
            "state": pr["state"],
            "locked": False,
            "assignee": None,
            "assignees": [],
            "milestone": None,
            "comments": 1,
            "created_at": pr["created_at"],
            "updated_at": pr["updated_at"],
            "closed_at": pr["closed_at"],
            "closed_by": self.user(self.repos[repo_name].closers.get(number)) if closed else None,
            "author_association": "MEMBER",
            "body": pr["body"],
            "html_url": pr["html_url"],
            "pull_request": {"url": pr["url"], "html_url": pr["html_url"], "diff_url": pr["diff_url"],
                             "patch_url": pr["patch_url"], "merged_at": pr["merged_at"]},
        }

    def closers_node(self, nid: str) -> dict[str, Any] | None:
        """A pull request node as the PULL_CLOSERS GraphQL query selects it."""
        found = self.pr_by_node(nid)
        if found is None:
            return None
        name, pr = found
        login = self.repos[name].closers.get(pr["number"])
        closed = pr["state"] == "closed"
        return {
            "id": nid,
            "mergedBy": self.actor(login) if pr["merged_at"] else None,
            "timelineItems": {"nodes": [{"actor": self.actor(login)}] if closed else []},
        }

    def find_pr(self, repo_name: str, number: int) -> dict[str, Any]:
        return self.repos[repo_name].prs[number - 1]

    def touch_pr(self, repo_name: str, number: int, **fields: Any) -> dict[str, Any]:
        pr = self.find_pr(repo_name, number)
        pr.update(fields)
        pr["updated_at"] = now_iso()
        return pr

    def pr_by_node(self, nid: str) -> tuple[str, dict[str, Any]] | None:
        for name, repo in self.repos.items():
            for pr in repo.prs:
                if pr["node_id"] == nid:
                    return name, pr
        return None
