"""The export: projects, users, per project its issues (with change logs) and comments, then sprints.

Sessions (the tracking root ``work``; every other session is a child of it)::

    work (tracking)
    ├── site/work.Project                      the projects exported
    ├── site/work.User                         every user the credentials may list
    ├── per project <project id>/
    │   ├── work.Issue                         token: Jira's ``updated`` of the last issue stored (see ``cursor``)
    │   ├── work.IssueComment                  ┐ opened with each batch of issues, closed just before its
    │   └── work.User                          ┘ work.Issue session (users met in issues, once per export)
    └── site/work.Sprint                       sprints of every scrum board (Agile API)

Issues are searched ``ORDER BY updated ASC, key ASC``, ``updated >=`` the token minus the safety window, with the
fields, the change log and the rendered bodies in the same answer. An export closes its batch every
``checkpoint_pages`` pages (the walk is in ``updated`` order, so the last issue of any page is a valid token): a
failure keeps the batches already done and the next run resumes after them, on a first export as after an outage.
Only issues whose embedded comments or change log Jira cut short cost more requests; those run in parallel.
Projects export ``concurrency`` at a time; all threads share the host's ``max_requests_in_flight`` slots.

Deleted issues: Jira's search never returns a deleted issue and no API lists deletions, so an export cannot
see them. They reach the agent through the ``jira:issue_deleted`` webhook (``calls.webhook``: the issue with
``"deleted": true``); without webhooks a deleted issue stays as last exported. (A full re-export with
``reprocess_historical`` does not resend it either.)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from integrations.jira import endpoints as ep
from integrations.jira import models
from integrations.jira.client import JiraClient, JiraError, NotFound
from integrations.jira.config import JiraConfig
from integrations.jira.cursor import format_token, issues_jql, jql_since, later, parse_time, zone
from integrations.jira.fields import CustomFields, discover
from integrations.jira.sprints import export_sprints
from integrations.sdk import AgentClient, ConfigError, Context, ExportProject, ExportResult, Session
from integrations.sdk.batch import SessionBatch
from pinpoint_agent.errors import PinpointError

MAX_FAILED_PROJECTS = 10
COMMENTS_PAGE = 100
_END = object()
T = TypeVar("T")


def prefetched(pages: Iterator[T]) -> Iterator[T]:
    """Yields ``pages`` in order while the next one is already being fetched (one page ahead, one thread):
    a project's search pages come one after another (each needs the last one's token), so this overlaps
    Jira's answer time with the processing of the page before. A failure surfaces when its page is due."""
    with ThreadPoolExecutor(1, thread_name_prefix="prefetch") as ahead:
        pending = ahead.submit(next, pages, _END)
        while True:
            page = pending.result()
            if page is _END:
                return
            pending = ahead.submit(next, pages, _END)
            yield page  # type: ignore[misc]


@dataclass
class Site:
    """What an export learns once: Jira's clock, the user's time zone, the custom fields."""

    server_time: str
    tz: ZoneInfo
    custom: CustomFields
    version: str = ""


def site_info(client: JiraClient, cfg: JiraConfig) -> Site:
    e = ep.for_flavor(cfg.cloud)
    info = client.get(e.path(ep.SERVER_INFO)) or {}
    me = client.get(e.path(ep.MYSELF)) or {}
    fields = client.get(e.path(ep.FIELDS)) or []
    when = parse_time(str(info.get("serverTime") or ""))
    return Site(format_token(when) if when else "", zone(me.get("timeZone")), discover(fields),
                str(info.get("version") or ""))


def list_projects(cfg: JiraConfig, client: JiraClient,
                  missing: list[ExportProject] | None = None) -> list[dict[str, Any]]:
    """The projects to export (config filters applied); configured keys not found go to ``missing``."""
    e = ep.for_flavor(cfg.cloud)
    found: list[dict[str, Any]] = []
    if e.projects_paged:
        for items, _ in client.offset_pages(e.projects, {"expand": "description"}, page_size=50):
            found.extend(items)
    else:
        found = list(client.get(e.projects, {"expand": "description"}) or [])
    chosen = [p for p in found if cfg.wants_project(str(p.get("key", "")))]
    if missing is not None and cfg.projects:
        seen = {str(p.get("key", "")).upper() for p in found}
        missing.extend(ExportProject(id="", ref_id="", name=k, error=f"project {k} is not visible to this user")
                       for k in cfg.projects if k not in seen)
    return chosen


class UserSink:
    """Sends each user once per export, whichever thread meets it first."""

    def __init__(self) -> None:
        self._sent: set[str] = set()
        self._lock = threading.Lock()

    def first_time(self, ref: str) -> bool:
        with self._lock:
            if not ref or ref in self._sent:
                return False
            self._sent.add(ref)
            return True


@dataclass
class ProjectRun:
    issues: int = 0
    newest: str = ""
    extra_requests: int = 0
    keys: dict[str, str] = field(default_factory=dict)


class Exporter:
    """One export run of one integration entry."""

    def __init__(self, ctx: Context, cfg: JiraConfig, client: JiraClient) -> None:
        self.ctx, self.cfg, self.client = ctx, cfg, client
        self.ep = ep.for_flavor(cfg.cloud)
        self.cloud = cfg.cloud
        self.cust = ctx.customer_id
        self.log = ctx.log
        self.base = cfg.url
        self.users = UserSink()
        self.site: Site | None = None
        self._failed = 0
        self._lock = threading.Lock()
        self._epic_ids: dict[str, str] = {}
        self.site_key = urlsplit(cfg.url).hostname or "site"

    # -- the whole export --------------------------------------------------------------------------------
    def run(self) -> ExportResult:
        agent: AgentClient = self.ctx.require_agent()
        self.site = site_info(self.client, self.cfg)
        missing = [f for f, v in (("story points", self.site.custom.story_points),
                                  ("sprint", self.site.custom.sprint)) if not v]
        if missing:
            self.log.info("custom fields not found on this Jira", missing=missing)
        with agent.session("work", tracking=True) as root:
            results: list[ExportProject] = []
            raw_projects = self.projects(results)
            with root.child("work.Project", self.site_key, self.site_key) as s:
                s.send_many(models.project(self.cust, p, self.base) for p in raw_projects)
            with root.child("work.User", self.site_key, self.site_key) as s:
                self._all_users(s)
            self.log.info("projects to export", projects=len(raw_projects))
            done = 0
            workers = min(self.cfg.concurrency, max(len(raw_projects), 1))
            with ThreadPoolExecutor(workers, thread_name_prefix="project") as pool, \
                    ThreadPoolExecutor(self.cfg.max_requests_in_flight, thread_name_prefix="extra") as extras:
                for result in pool.map(lambda p: self._project(root, p, extras), raw_projects):
                    results.append(result)
                    done += 1
                    root.progress(done, len(raw_projects))
            if self.cfg.sprints:
                export_sprints(root.child("work.Sprint", self.site_key, self.site_key), self.client, self.cust,
                               self.base, self.log)
            root.progress(done, len(raw_projects), force=True)
        return ExportResult(projects=results)

    def projects(self, missing: list[ExportProject] | None = None) -> list[dict[str, Any]]:
        return list_projects(self.cfg, self.client, missing)

    def _all_users(self, session: Session) -> None:
        params = {} if self.cfg.cloud else {"username": ".", "includeInactive": "true"}
        try:
            for items, _ in self.client.offset_pages(self.ep.users, params, key=None, page_size=100):
                session.send_many(models.user(self.cust, u, self.base) for u in items
                                  if self.users.first_time(models.user_ref(u)))
        except JiraError as exc:  # 403 without "Browse users and groups": users still come from the issues
            self.log.warning("cannot list users; exporting the users met in issues only", error=str(exc))

    # -- one project -------------------------------------------------------------------------------------
    def _project(self, root: Session, raw: dict[str, Any], extras: ThreadPoolExecutor) -> ExportProject:
        obj = models.project(self.cust, raw, self.base)
        result = ExportProject(id=obj["id"], ref_id=obj["ref_id"], name=obj["identifier"])
        with self._lock:
            if self._failed > MAX_FAILED_PROJECTS:
                result.error = f"not exported: more than {MAX_FAILED_PROJECTS} projects failed before it"
                return result
        log = self.log.bind(project=obj["identifier"])
        try:
            run = self._issues(root, obj, extras)
        except ConfigError:
            raise  # rejected credentials fail every project: the whole export says so once
        except PinpointError as exc:
            with self._lock:
                self._failed += 1
            result.error = str(exc)
            log.warning("project export failed", error=str(exc))
            return result
        log.info("project exported", issues=run.issues, extra_requests=run.extra_requests)
        return result

    def _issues(self, root: Session, project: dict[str, Any], extras: ThreadPoolExecutor) -> ProjectRun:
        assert self.site is not None
        first = root.child("work.Issue", project["id"], project["identifier"])
        token = first.last_processed
        if self.ctx.reprocess_historical:
            token = ""
        since = jql_since(token, timedelta(minutes=self.cfg.safety_window_minutes), self.site.tz)
        jql = issues_jql(project["identifier"], since)
        batch = SessionBatch(root, project["id"], project["identifier"], first)
        run = ProjectRun(newest=token)
        in_batch = 0
        try:
            for total, items, more in prefetched(self._search(jql)):
                self._page(batch, project, items, run, extras)
                in_batch += 1
                batch.main.progress(run.issues, total or run.issues + (1 if more else 0))
                if more and in_batch >= self.cfg.checkpoint_pages:  # updated ASC: any prefix is a valid token
                    batch.done(run.newest)
                    batch = batch.next()
                    in_batch = 0
            batch.done(run.newest or self.site.server_time)
        except BaseException:
            batch.rollback()  # the batches before it are done: kept, and their token says so
            raise
        return run

    def _search(self, jql: str) -> Iterator[tuple[int | None, list[dict[str, Any]], bool]]:
        """Yields (total if known, issues, more) per page: Cloud ``POST /search/jql`` (nextPageToken), Data
        Center ``POST /search`` (startAt; it may answer fewer than asked)."""
        assert self.site is not None
        fields = [*ep.ISSUE_FIELDS, *self.site.custom.ids()]
        if self.cloud:
            body = {"jql": jql, "fields": fields, "expand": ",".join(ep.SEARCH_EXPAND),
                    "maxResults": self.cfg.page_size}
            for data, token_pager in self.client.token_pages(self.ep.search, body):
                yield None, list(data.get("issues") or []), token_pager.has_more
            return
        query = {"jql": jql, "fields": fields, "expand": list(ep.SEARCH_EXPAND)}
        for issues, pager in self.client.offset_pages(self.ep.search, key="issues", page_size=self.cfg.page_size,
                                                      json=query):
            yield pager.total, issues, pager.has_more

    def _page(self, batch: SessionBatch, project: dict[str, Any], items: list[dict[str, Any]], run: ProjectRun,
              extras: ThreadPoolExecutor) -> None:
        assert self.site is not None
        full = list(extras.map(self._complete, items))
        for raw, histories, comments, rendered, requests in full:
            run.extra_requests += requests
            epic = self._epic_ref(raw)
            obj = models.issue(self.cust, raw, self.site.custom, self.base, histories, epic)
            f = raw.get("fields") or {}
            met = [f.get("assignee"), f.get("reporter"), f.get("creator")]
            met += [h.get("author") for h in histories]
            for c in comments:
                batch.session("work.IssueComment").send(
                    models.comment(self.cust, raw, c, self.base, rendered.get(str(c.get("id")), "")))
                met.append(c.get("author"))
            new_users = [u for u in met if isinstance(u, dict) and self.users.first_time(models.user_ref(u))]
            if new_users:
                batch.session("work.User").send_many(models.user(self.cust, u, self.base) for u in new_users)
            batch.main.send(obj)
            with self._lock:  # an epic met in this run needs no lookup when its children come
                self._epic_ids.setdefault(str(raw.get("key") or ""), str(raw.get("id") or ""))
            run.issues += 1
            run.newest = later(run.newest, format_token(t) if (t := parse_time(f.get("updated"))) else "")

    def _complete(self, raw: dict[str, Any]) -> tuple[dict[str, Any], list[Any], list[Any], dict[str, str], int]:
        """The issue's whole change log and all its comments (with rendered bodies): what the search embedded,
        plus the rest where Jira cut them short. An issue deleted since the search (404) keeps what came."""
        requests = 0
        key = str(raw.get("key") or raw.get("id"))
        log = raw.get("changelog") or {}
        histories = list(log.get("histories") or [])
        f = raw.get("fields") or {}
        embedded = f.get("comment") or {}
        comments = list(embedded.get("comments") or [])
        rendered = {str(c.get("id")): str(c.get("body") or "")
                    for c in ((raw.get("renderedFields") or {}).get("comment") or {}).get("comments") or []}
        try:
            if int(log.get("total") or 0) > len(histories):
                requests += 1
                histories = self._changelog(key)
            if int(embedded.get("total") or 0) > len(comments):
                all_comments: list[Any] = []
                for items, _ in self.client.offset_pages(self.ep.path(ep.COMMENTS, key=key),
                                                         {"expand": "renderedBody", "orderBy": "created"},
                                                         key="comments", page_size=COMMENTS_PAGE):
                    requests += 1
                    all_comments.extend(items)
                    rendered.update({str(c.get("id")): str(c.get("renderedBody") or "") for c in items})
                comments = all_comments
        except NotFound:
            self.log.info("issue gone while exporting it; keeping what the search returned", issue=key)
        return raw, histories, comments, rendered, requests

    def _changelog(self, key: str) -> list[Any]:
        if self.ep.changelog_paged:  # Cloud: /issue/{key}/changelog, oldest first, isLast
            out: list[Any] = []
            for items, _ in self.client.offset_pages(self.ep.path(self.ep.changelog, key=key), page_size=100):
                out.extend(items)
            return out
        data = self.client.get(self.ep.path(self.ep.changelog, key=key), {"expand": "changelog", "fields": "created"})
        return list(((data or {}).get("changelog") or {}).get("histories") or [])

    def _epic_ref(self, raw: dict[str, Any]) -> str:
        """The epic's issue id for a company-managed Epic Link (a key): looked up once per key."""
        assert self.site is not None
        key = models.epic_key(raw, self.site.custom)
        if not key:
            return ""
        with self._lock:
            if key in self._epic_ids:
                return self._epic_ids[key]
        try:
            ref = str((self.client.get(self.ep.path(ep.ISSUE, key=key), {"fields": "issuetype"}) or {}).get("id") or "")
        except NotFound:
            ref = ""
        with self._lock:
            self._epic_ids[key] = ref
        return ref
