"""The export: organization members, repos, and per repo its pull requests with their children.

Sessions (the tracking root ``organization``; every other session is a child of it)::

    organization (tracking)
    ├── <org>/sourcecode.User                    members (GraphQL), the ghost and github-noreply users
    ├── <org>/sourcecode.Repo                    the repos exported
    └── per repo <repo id>/
        ├── sourcecode.PullRequest               token: the pull request cursor (see ``cursor``)
        ├── sourcecode.PullRequestCommit         ┐
        ├── sourcecode.PullRequestReview         │ opened with each batch of pull requests and
        ├── sourcecode.User                      │ closed just before its PullRequest session
        ├── sourcecode.CommitUser                ┘
        └── sourcecode.PullRequestComment        token: GitHub's time of the last sync (``since``)

A first sync walks pull requests oldest first and closes its batch every ``checkpoint_pages`` pages, so a
failure halfway keeps the batches already done and the next run resumes after them. Later syncs walk
newest first and stop at the cursor (with the first page's ETag a repo without changes costs one free 304).
A repo that fails is reported in its project with its error and the others go on; after more than
``MAX_FAILED_PROJECTS`` failures the rest are not started (as the original agent did).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from integrations.github import endpoints as ep
from integrations.github import models
from integrations.github.client import GitHubClient
from integrations.github.config import GitHubConfig
from integrations.github.cursor import (
    PullRequestCursor,
    format_cursor,
    parse_cursor,
    server_time,
    updated_before,
)
from integrations.github.walks import RepoInfo, add_closers, git_request, list_repos, member_nodes
from integrations.sdk import (
    AgentClient,
    ConfigError,
    Context,
    ExportProject,
    ExportResult,
    GitPullRequest,
    GitRepoRequest,
    Session,
)
from integrations.sdk.batch import SessionBatch
from pinpoint_agent.errors import PinpointError

MAX_FAILED_PROJECTS = 10
BATCH_MODELS = (
    "sourcecode.PullRequestCommit",
    "sourcecode.PullRequestReview",
    "sourcecode.User",
    "sourcecode.CommitUser",
)


class UserSink:
    """Sends each user once per export, whichever thread meets it first."""

    def __init__(self) -> None:
        self._sent: set[str] = set()
        self._lock = threading.Lock()

    def first_time(self, ref_id: str) -> bool:
        with self._lock:
            if ref_id in self._sent:
                return False
            self._sent.add(ref_id)
            return True


@dataclass
class RepoOutcome:
    prs: dict[int, tuple[str, dict[str, Any]]] = field(default_factory=dict)  # exported: number -> (id, raw)
    looked_up: dict[int, str] = field(default_factory=dict)  # older pull requests' ids, for their comments


class Exporter:
    """One export run of one integration entry."""

    def __init__(self, ctx: Context, cfg: GitHubConfig, client: GitHubClient) -> None:
        self.ctx, self.cfg, self.client = ctx, cfg, client
        self.agent: AgentClient | None = ctx.agent
        self.cust = ctx.customer_id
        self.log = ctx.log
        self.users = UserSink()
        self._failed = 0
        self._lock = threading.Lock()

    # -- the whole export --------------------------------------------------------------------------------
    def run(self) -> ExportResult:
        key = self.cfg.organization or "repos"
        self.agent = self.ctx.require_agent()
        with self.agent.session("organization", tracking=True) as org:
            if not self.cfg.only_git:
                with org.child("sourcecode.User", key, key) as users:
                    self._members(users)
            projects: list[ExportProject] = []
            repos = self.repos(missing=projects)
            with org.child("sourcecode.Repo", key, key) as repo_session:
                repo_session.send_many(r.obj for r in repos)
            self.log.info("repos to export", repos=len(repos), organization=self.cfg.organization)
            done = 0
            with ThreadPoolExecutor(max_workers=self.cfg.concurrency, thread_name_prefix="repo") as pool:
                for project in pool.map(lambda r: self._project(org, r), repos):
                    projects.append(project)
                    done += 1
                    org.progress(done, len(repos))
            org.progress(done, len(repos), force=True)
        return ExportResult(projects=projects)

    def _members(self, users: Session) -> None:
        """The organization's members (GraphQL: names and public emails included), then the special users."""
        if self.cfg.organization:
            for node in member_nodes(self.client, self.cfg.organization):
                if self.users.first_time(str(node["id"])):
                    users.send(models.member_user(self.cust, node))
        for special in (models.ghost_user(self.cust), models.noreply_user(self.cust)):
            if self.users.first_time(special["ref_id"]):
                users.send(special)

    def repos(self, missing: list[ExportProject] | None = None) -> list[RepoInfo]:
        return list_repos(self.cfg, self.client, self.cust, missing)

    # -- one repo = one project --------------------------------------------------------------------------
    def _project(self, org: Session, repo: RepoInfo) -> ExportProject:
        project = ExportProject(id=repo.obj["id"], ref_id=repo.obj["ref_id"], name=repo.full_name)
        with self._lock:
            if self._failed > MAX_FAILED_PROJECTS:
                project.error = f"not exported: more than {MAX_FAILED_PROJECTS} repos failed before it"
                return project
        log = self.log.bind(repo=repo.full_name)
        assert self.agent is not None  # set by run()
        try:
            outcome = RepoOutcome() if self.cfg.only_git else self._pull_requests(org, repo)
            if not self.cfg.only_git:
                self._comments(org, repo, outcome)
            self.agent.export_git_repo(self._git_request(repo, outcome))
        except ConfigError:
            raise  # a rejected token fails every repo: the whole export says so once
        except PinpointError as exc:
            with self._lock:
                self._failed += 1
            project.error = str(exc)
            log.warning("repo export failed", error=str(exc))
            return project
        log.info("repo exported", pull_requests=len(outcome.prs))
        return project

    def _git_request(self, repo: RepoInfo, outcome: RepoOutcome) -> GitRepoRequest:
        prs = []
        for pr_id, raw in outcome.prs.values():
            head = raw.get("head") or {}
            pr = GitPullRequest(
                id=pr_id,
                ref_id=models.pr_ref(raw),
                url=str(raw.get("html_url") or ""),
                branch_name=str(head.get("ref") or ""),
                last_commit_sha=str(head.get("sha") or ""),
            )
            if all((pr.url, pr.branch_name, pr.last_commit_sha)):
                prs.append(pr)
        return git_request(repo, prs, self.cfg.token)

    # -- pull requests -----------------------------------------------------------------------------------
    def _pull_requests(self, org: Session, repo: RepoInfo) -> RepoOutcome:
        first = org.child("sourcecode.PullRequest", repo.obj["id"], repo.full_name)
        cursor = parse_cursor(first.last_processed)
        if cursor.historical and cursor.per_page not in (0, self.client.per_page):
            cursor = PullRequestCursor()  # pages of another size: start the first sync again
        batches = [SessionBatch(org, repo.obj["id"], repo.full_name, first)]
        outcome = RepoOutcome()
        try:
            if cursor.historical:
                self._historical(org, repo, batches, cursor, outcome)
            else:
                self._incremental(repo, batches[0], cursor, outcome)
        except BaseException:
            batches[-1].rollback()  # the batches before it are done: kept, and the cursor says so
            raise
        return outcome

    def _historical(
        self,
        org: Session,
        repo: RepoInfo,
        batches: list[SessionBatch],
        cursor: PullRequestCursor,
        outcome: RepoOutcome,
    ) -> None:
        """Oldest first from the page after the stored one, closing a batch every ``checkpoint_pages``."""
        batch = batches[-1]
        started, page_no, in_batch = cursor.started, cursor.page, 0
        pages = self.client.pages(
            ep.PULLS_CREATED.url(**repo.parts()), ep.PULLS_CREATED.query(), start_page=page_no + 1
        )
        for page in pages:
            started = started or server_time(page.headers.get("date"))
            add_closers(self.client, repo, page.items, self.log)
            for pr in page.items:
                self._pull_request(repo, batch, pr, outcome)
            page_no += 1
            in_batch += 1
            total = page.paginator.total_pages
            batch.main.progress(page_no, total or page_no + 1)
            partial = PullRequestCursor(started=started, page=page_no, per_page=self.client.per_page)
            if self._stop(outcome):
                batch.done(format_cursor(partial))
                return
            if in_batch >= self.cfg.checkpoint_pages and page.paginator.has_more:
                batch.done(format_cursor(partial))
                batch = batch.next()
                batches.append(batch)
                in_batch = 0
        batch.done(format_cursor(PullRequestCursor(since=started or server_time(None))))

    def _incremental(
        self, repo: RepoInfo, batch: SessionBatch, cursor: PullRequestCursor, outcome: RepoOutcome
    ) -> None:
        new = PullRequestCursor(etag=cursor.etag)
        pages = self.client.pages(
            ep.PULLS_UPDATED.url(**repo.parts()), ep.PULLS_UPDATED.query(), etag=cursor.etag
        )
        for page in pages:
            if not new.since:
                new.since = server_time(page.headers.get("date"))
                new.etag = page.headers.get("etag", "") or cursor.etag
            if page.not_modified:
                break
            changed = [pr for pr in page.items if not updated_before(pr.get("updated_at"), cursor.since)]
            add_closers(self.client, repo, changed, self.log)
            if self._walk_newest_first(repo, batch, page.items, cursor.since, outcome):
                break
        new.since = new.since or cursor.since
        batch.done(format_cursor(new))

    def _walk_newest_first(
        self, repo: RepoInfo, batch: SessionBatch, items: list[Any], since: str, outcome: RepoOutcome
    ) -> bool:
        """Exports the pull requests updated since ``since``; True when the walk reached older ones."""
        for pr in items:
            if updated_before(pr.get("updated_at"), since) or self._stop(outcome):
                return True
            self._pull_request(repo, batch, pr, outcome)
        return False

    def _stop(self, outcome: RepoOutcome) -> bool:
        return bool(self.cfg.stop_after_n) and len(outcome.prs) >= self.cfg.stop_after_n

    def _pull_request(self, repo: RepoInfo, batch: SessionBatch, pr: dict[str, Any], outcome: RepoOutcome) -> None:
        number = int(pr["number"])
        commits = [
            c
            for page in self.client.pages(ep.PULL_COMMITS.url(**repo.parts(number=number)))
            for c in page.items
        ]
        reviews = [
            r
            for page in self.client.pages(ep.PULL_REVIEWS.url(**repo.parts(number=number)))
            for r in page.items
        ]
        obj = models.pull_request(self.cust, repo.obj, pr, [str(c["sha"]) for c in commits])
        pr_id = obj["id"]
        met: list[dict[str, Any] | None] = [pr.get("user")]  # null: a deleted account, the ghost user
        met.extend(pr[k] for k in ("merged_by", "closed_by") if pr.get(k))
        for c in commits:
            batch.session("sourcecode.PullRequestCommit").send(
                models.pr_commit(self.cust, repo.obj, pr_id, c)
            )
            for link in models.commit_users(self.cust, c):
                batch.session("sourcecode.CommitUser").send(link)
            met.extend(u for u in (c.get("author"), c.get("committer")) if u)  # null: an unlinked email
        for r in reviews:
            if r.get("state") == "PENDING":
                continue  # a draft review only its author can see
            batch.session("sourcecode.PullRequestReview").send(models.review(self.cust, repo.obj, pr_id, r))
            met.append(r.get("user"))
        self._met_users(batch, met)
        batch.main.send(obj)
        outcome.prs[number] = (pr_id, pr)

    def _met_users(self, batch: SessionBatch, users: list[dict[str, Any] | None]) -> None:
        for u in users:
            ref = models.user_ref(u)
            if self.users.first_time(ref):
                batch.session("sourcecode.User").send(models.rest_user(self.cust, u))

    # -- comments ----------------------------------------------------------------------------------------
    def _comments(self, org: Session, repo: RepoInfo, outcome: RepoOutcome) -> None:
        """Issue and review comments of the repo's pull requests, since the last sync (one walk per repo).

        A new comment also updates its pull request, so a sync that found no changed pull request skips this.
        """
        comments = org.child("sourcecode.PullRequestComment", repo.obj["id"], repo.full_name)
        since = comments.last_processed
        if since and not outcome.prs:
            comments.done(since)
            return
        with comments:
            new_since = ""
            for endpoint in (ep.ISSUE_COMMENTS, ep.REVIEW_COMMENTS):
                for page in self.client.pages(endpoint.url(**repo.parts()), endpoint.query(since=since)):
                    new_since = new_since or server_time(page.headers.get("date"))
                    for c in page.items:
                        number = models.comment_pr_number(c)
                        pr_id = self._pr_id(repo, number, outcome) if number is not None else None
                        if pr_id is not None:
                            comments.send(models.comment(self.cust, repo.obj, pr_id, c))
            comments.done(new_since or since)

    def _pr_id(self, repo: RepoInfo, number: int, outcome: RepoOutcome) -> str | None:
        """A pull request's id by number: from this run, else looked up (a comment edited on an old one)."""
        if number in outcome.prs:
            return outcome.prs[number][0]
        if number in outcome.looked_up:
            return outcome.looked_up[number]
        if self.cfg.stop_after_n:
            return None
        raw = self.client.get(ep.PULL.url(**repo.parts(number=number))).data
        outcome.looked_up[number] = models.pull_request(self.cust, repo.obj, raw, [])["id"]
        return outcome.looked_up[number]
