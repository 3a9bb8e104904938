"""The code export: users (with emails for an admin token), projects, and per project its merge requests with
their children, in nested sessions; then ``ExportGitRepo`` per project.

Sessions (the tracking root ``projects``; every other session is a child of it)::

    projects (tracking)
    ├── <key>/sourcecode.User                    admin: every active user; else group/project members
    ├── <key>/sourcecode.CommitUser              admin only: each user's emails (primary and secondary)
    ├── <key>/sourcecode.Repo                    the projects exported
    └── per project <repo id>/
        ├── sourcecode.PullRequest               token: the updated_after cursor (see ``cursor``)
        ├── sourcecode.PullRequestCommit         ┐
        ├── sourcecode.PullRequestReview         │ opened with each batch of merge requests and
        ├── sourcecode.PullRequestComment        │ closed just before its PullRequest session
        └── sourcecode.User                      ┘ (authors, mergers, reviewers, note authors met)

Merge requests are walked oldest update first from the stored position; every ``checkpoint_pages`` pages the
batch is closed with the position reached, so a failure keeps what was done. Notes touch their merge request
(GitLab bumps its ``updated_at``), so commits, approvals, reviewers and notes are read for the merge requests
the walk meets and for no other: an unchanged project costs one request. A project that fails is reported with its
error and the others go on; after more than ``MAX_FAILED_PROJECTS`` failures the rest are not started.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from integrations.gitlab import endpoints as ep
from integrations.gitlab import models
from integrations.gitlab.client import Forbidden, GitLabClient, NotFound
from integrations.gitlab.config import GitLabConfig
from integrations.gitlab.cursor import (
    EmailSweep,
    UpdatedCursor,
    format_cursor,
    format_sweep,
    format_time,
    parse_cursor,
    parse_sweep,
)
from integrations.gitlab.walks import ProjectInfo, git_request, is_admin, list_projects, users
from integrations.sdk import (
    AgentClient,
    ConfigError,
    Context,
    ExportProject,
    ExportResult,
    GitPullRequest,
    Session,
)
from integrations.sdk.batch import SessionBatch
from integrations.sdk.pagination import PaginationLoop
from pinpoint_agent.errors import PinpointError

MAX_FAILED_PROJECTS = 10
T = TypeVar("T")
MAX_PAGES = 100_000


class UserSink:
    """Sends each user once per export, whichever thread meets it first."""

    def __init__(self) -> None:
        self._sent: set[str] = set()
        self._lock = threading.Lock()

    def first_time(self, ref_id: str) -> bool:
        with self._lock:
            if not ref_id or ref_id in self._sent:
                return False
            self._sent.add(ref_id)
            return True


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def scope_key(cfg: GitLabConfig) -> str:
    """The object the root's model sessions hang under: the configured groups, or the token's projects."""
    return ",".join(sorted(g.lower() for g in cfg.groups)) or "membership"


def walk_updated(
    client: GitLabClient,
    path: str,
    params: dict[str, Any],
    cursor: UpdatedCursor,
    on_page: Callable[[list[dict[str, Any]], int | None, bool], None],
) -> None:
    """Walks a list ordered by ``updated_at`` from ``cursor`` (see ``cursor``): ``on_page(items, total, more)``
    gets the objects not yet stored, page by page (``total``: ``X-Total`` of the first answer, when GitLab sends
    it; ``more``: another page follows), and may close a batch; the cursor has moved past the page by then."""
    page_no, total, walked = 1, None, 0
    while True:
        walked += 1
        if walked > MAX_PAGES:
            raise PaginationLoop(f"GitLab {path}: more than {MAX_PAGES} pages; stopping")
        resp = client.get(
            path,
            params={
                "per_page": client.per_page,
                **params,
                **({"updated_after": cursor.after} if cursor.after else {}),
                "page": page_no,
            },
        )
        items = resp.data if isinstance(resp.data, list) else []
        if total is None and resp.headers.get("x-total"):
            total = int(resp.headers["x-total"])
        fresh = [i for i in items if not cursor.seen(str(i.get("updated_at")), int(i["id"]))]
        more = bool(resp.headers.get("x-next-page"))
        restart = cursor.advance([(str(i.get("updated_at")), int(i["id"])) for i in items])
        on_page(fresh, total, more)
        if not more:
            return
        page_no = 1 if restart else page_no + 1


@dataclass
class MergeRequestDetails:
    mr: dict[str, Any]
    commits: list[dict[str, Any]]
    approved: list[dict[str, Any]]
    notes: list[dict[str, Any]]
    reviews: list[dict[str, Any]] = field(default_factory=list)


class Exporter:
    """One code export run of one integration entry."""

    def __init__(self, ctx: Context, cfg: GitLabConfig, client: GitLabClient) -> None:
        self.ctx, self.cfg, self.client = ctx, cfg, client
        self.agent: AgentClient | None = ctx.agent
        self.cust = ctx.customer_id
        self.log = ctx.log
        self.users = UserSink()
        self._failed = 0
        self._lock = threading.Lock()
        # One pool for the reads of every project's merge requests: a project left alone at the end of a run
        # gets all of it (bench/gitlab_bench.py, 5 projects of 1,000 merge requests at concurrency 4: with
        # 4 threads in all, the fifth project alone took 9 of 36 s and the run 128 MRs/s; with 16, 180 MRs/s).
        self._pool = ThreadPoolExecutor(max_workers=cfg.concurrency * cfg.detail_concurrency, thread_name_prefix="mr")

    def run(self) -> ExportResult:
        try:
            return self._run()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _run(self) -> ExportResult:
        key = scope_key(self.cfg)
        self.agent = self.ctx.require_agent()
        admin = is_admin(self.client)
        with self.agent.session("projects", tracking=True) as root:
            projects: list[ExportProject] = []
            infos = list_projects(self.cfg, self.client, self.cust, missing=projects)
            if not self.cfg.only_git:
                self._users(root, key, infos, admin)
            with root.child("sourcecode.Repo", key, key) as repos:
                repos.send_many(p.obj for p in infos)
            self.log.info("projects to export", projects=len(infos), admin=admin)
            done = 0
            with ThreadPoolExecutor(max_workers=self.cfg.concurrency, thread_name_prefix="project") as pool:
                for project in pool.map(lambda p: self._project(root, p), infos):
                    projects.append(project)
                    done += 1
                    root.progress(done, len(infos))
            root.progress(done, len(infos), force=True)
        return ExportResult(projects=projects)

    # -- users ---------------------------------------------------------------------------------------------
    def _users(self, root: Session, key: str, infos: list[ProjectInfo], admin: bool) -> None:
        """Users; with an admin token also each user's emails as CommitUser links (DESIGN §6): the primary email
        every time, the secondary ones per the sweep rule (see ``cursor.EmailSweep``)."""
        links = root.child("sourcecode.CommitUser", key, key) if admin else None
        sweep = parse_sweep(links.last_processed) if links is not None else EmailSweep()
        now = datetime.now(UTC)
        full = sweep.due(now, self.cfg.emails_refresh_hours)
        seen_max = sweep.max_id
        try:
            with root.child("sourcecode.User", key, key) as session:
                for chunk in _chunks(users(self.cfg, self.client, infos, admin), 100):
                    session.send_many(
                        models.user(self.cust, u, member=True) for u in chunk if self.users.first_time(models.ref(u))
                    )
                    if links is None:
                        continue
                    # one /emails request per user: on the detail pool, a chunk at a time
                    wanted = [u if sweep.wants(int(u["id"]), full) else None for u in chunk]
                    for u, secondary in zip(chunk, self._pool.map(self._emails, wanted), strict=True):
                        links.send_many(models.commit_users(self.cust, u, secondary))
                        seen_max = max(seen_max, int(u["id"]))
        except BaseException:
            if links is not None:
                links.rollback()
            raise
        if links is not None:
            links.done(format_sweep(EmailSweep(format_time(now) if full else sweep.swept, seen_max)))

    def _emails(self, u: dict[str, Any] | None) -> list[dict[str, Any]]:
        if u is None:
            return []
        try:
            return list(self.client.all(ep.USER_EMAILS.url(user=u["id"])))
        except (Forbidden, NotFound):
            return []  # not an admin after all, or the user is gone

    # -- one project -----------------------------------------------------------------------------------------
    def _project(self, root: Session, p: ProjectInfo) -> ExportProject:
        project = ExportProject(id=p.obj["id"], ref_id=p.obj["ref_id"], name=p.path)
        with self._lock:
            if self._failed > MAX_FAILED_PROJECTS:
                project.error = f"not exported: more than {MAX_FAILED_PROJECTS} projects failed before it"
                return project
        log = self.log.bind(project=p.path)
        assert self.agent is not None  # set by run()
        try:
            wanted = not self.cfg.only_git and p.enabled("merge_requests")
            heads = self._merge_requests(root, p) if wanted else {}
            if p.raw.get("empty_repo") or not p.enabled("repository"):
                log.info("no repository content: no git processing")
            else:
                auth = self.client.auth
                self.agent.export_git_repo(git_request(p, list(heads.values()), auth.token, oauth=auth.oauth))
        except ConfigError:
            raise  # a rejected token fails every project: the whole export says so once
        except PinpointError as exc:
            with self._lock:
                self._failed += 1
            project.error = str(exc)
            log.warning("project export failed", error=str(exc))
            return project
        log.info("project exported", merge_requests=len(heads))
        return project

    def _merge_requests(self, root: Session, p: ProjectInfo) -> dict[int, GitPullRequest]:
        """The project's merge requests updated since the stored position; returns the git heads of those met."""
        first = root.child("sourcecode.PullRequest", p.obj["id"], p.path)
        cursor = parse_cursor(first.last_processed)
        batches = [SessionBatch(root, p.obj["id"], p.path, first)]
        heads: dict[int, GitPullRequest] = {}
        state = {"pages": 0, "done": 0}

        def on_page(items: list[dict[str, Any]], total: int | None, more: bool) -> None:
            batch = batches[-1]
            # The three reads per merge request wait on the network: several merge requests at a time.
            for details in self._pool.map(lambda mr: self._details(p, mr), items):
                self._merge_request(p, batch, details, heads)
            state["pages"] += 1
            state["done"] += len(items)
            batch.main.progress(state["done"], max(total or 0, state["done"]))
            if more and state["pages"] % self.cfg.checkpoint_pages == 0:
                batch.done(format_cursor(cursor))
                batches.append(batch.next())

        try:
            walk_updated(self.client, ep.MERGE_REQUESTS.url(project=p.pid), ep.MERGE_REQUESTS.query(), cursor, on_page)
        except BaseException:
            batches[-1].rollback()  # the batches before it are done: kept, and their tokens say so
            raise
        batches[-1].done(format_cursor(cursor) or first.last_processed)
        return heads

    def _details(self, p: ProjectInfo, mr: dict[str, Any]) -> MergeRequestDetails:
        """A merge request's commits (oldest first), approvals, reviewers and user notes: I/O only, run on the
        detail pool."""
        parts = {"project": p.pid, "iid": int(mr["iid"])}
        commits = list(reversed(self.client.all(ep.MR_COMMITS.url(**parts))))  # GitLab lists newest first
        approved = self._approvals(ep.MR_APPROVALS.url(**parts))
        # reviewers' states: asked only for merge requests that have reviewers (the list item names them)
        reviews = self._reviewers(ep.MR_REVIEWERS.url(**parts)) if mr.get("reviewers") else []
        notes = models.user_notes(self.client.all(ep.MR_NOTES.url(**parts), ep.MR_NOTES.query()))
        return MergeRequestDetails(mr, commits, approved, notes, reviews)

    def _merge_request(
        self, p: ProjectInfo, batch: SessionBatch, d: MergeRequestDetails, heads: dict[int, GitPullRequest]
    ) -> None:
        """Sends one merge request and its children (in the project's thread: sessions are not shared)."""
        mr, commits, approved, notes = d.mr, d.commits, d.approved, d.notes
        iid = int(mr["iid"])
        obj = models.pull_request(self.cust, p.obj, mr, [str(c["id"]) for c in commits])
        pr_id = obj["id"]
        met = [
            mr.get("author"),
            mr.get("merge_user") or mr.get("merged_by"),
            mr.get("closed_by"),
            *(mr.get("reviewers") or []),
            *(mr.get("assignees") or []),
        ]
        if commits:
            batch.session("sourcecode.PullRequestCommit").send_many(
                models.pr_commit(self.cust, p.obj, pr_id, c) for c in commits
            )
        reviews = [models.approval(self.cust, p.obj, pr_id, mr, a) for a in approved]
        reviews.extend(r for r in (models.review(self.cust, p.obj, pr_id, mr, r) for r in d.reviews) if r)
        if reviews:
            batch.session("sourcecode.PullRequestReview").send_many(reviews)
            met.extend(a.get("user") for a in approved)
        if notes:
            batch.session("sourcecode.PullRequestComment").send_many(
                models.comment(self.cust, p.obj, pr_id, mr, n) for n in notes
            )
            met.extend(n.get("author") for n in notes)
        for u in met:
            if u and self.users.first_time(models.ref(u)):
                batch.session("sourcecode.User").send(models.user(self.cust, u))
        batch.main.send(obj)
        head = GitPullRequest(
            id=pr_id,
            ref_id=obj["ref_id"],
            url=obj["url"],
            branch_name=obj["branch_name"],
            last_commit_sha=obj["last_commit_sha"],
        )
        if all((head.url, head.branch_name, head.last_commit_sha)):
            heads[iid] = head

    def _reviewers(self, path: str) -> list[dict[str, Any]]:
        """The reviewers of a merge request with their review state; [] on GitLab versions without the
        endpoint (404)."""
        try:
            return [r for r in self.client.all(path) if isinstance(r, dict) and r.get("user")]
        except (NotFound, Forbidden):
            return []

    def _approvals(self, path: str) -> list[dict[str, Any]]:
        """``approved_by`` of a merge request; [] where approvals are off for the project (404/403)."""
        try:
            data = self.client.get(path).data or {}
        except (NotFound, Forbidden):
            return []
        return [a for a in data.get("approved_by") or [] if isinstance(a, dict) and a.get("user")]
