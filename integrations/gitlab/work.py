"""GitLab issues as work objects, for an entry whose type is WORK (0): ``work.Project`` per project,
``work.Issue`` per issue, ``work.IssueComment`` per user note (system notes left out), ``work.User``.

Ids follow the datamodel's pattern for work objects, ``values(customer_id, ref_id, ref_type)``, over GitLab's
global ids (the project id, the issue's ``id`` not its ``iid``, the note id).

Sessions::

    projects (tracking)
    ├── <key>/work.Project
    └── per project <project id>/
        ├── work.Issue                      token: the updated_after cursor (see ``cursor``)
        ├── work.IssueComment               ┐ opened with each batch of issues, closed before it
        └── work.User                       ┘
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from integrations.gitlab import endpoints as ep
from integrations.gitlab.client import GitLabClient
from integrations.gitlab.config import GitLabConfig
from integrations.gitlab.cursor import format_cursor, parse_cursor
from integrations.gitlab.export import MAX_FAILED_PROJECTS, UserSink, scope_key, walk_updated
from integrations.gitlab.models import REF_TYPE, date, finish, ref, user, user_notes
from integrations.gitlab.walks import ProjectInfo, list_projects
from integrations.sdk import ConfigError, Context, ExportProject, ExportResult, Session
from integrations.sdk.batch import SessionBatch
from pinpoint_agent.errors import PinpointError
from pinpoint_agent.ids import values


def _work_id(cust: str, ref_id: str) -> str:
    return values(cust, ref_id, REF_TYPE)


def project(cust: str, p: dict[str, Any]) -> dict[str, Any]:
    pref = str(p["id"])
    return finish(
        {
            "id": _work_id(cust, pref),
            "ref_id": pref,
            "ref_type": REF_TYPE,
            "customer_id": cust,
            "identifier": str(p.get("path_with_namespace") or ""),
            "name": str(p.get("name") or p.get("path") or ""),
            "url": str(p.get("web_url") or ""),
            "description": str(p.get("description") or ""),
            "active": not p.get("archived", False),
            "issue_types": ["issue", "incident", "test_case", "task"],
            "created_date": date(p.get("created_at")),
            "updated_date": date(p.get("updated_at") or p.get("last_activity_at")),
        }
    )


def issue(cust: str, project_obj: dict[str, Any], i: dict[str, Any]) -> dict[str, Any]:
    iref = str(i["id"])
    assignees = i.get("assignees") or ([i["assignee"]] if i.get("assignee") else [])
    milestone = i.get("milestone") or {}
    refs = i.get("references") or {}
    return finish(
        {
            "id": _work_id(cust, iref),
            "ref_id": iref,
            "ref_type": REF_TYPE,
            "customer_id": cust,
            "project_id": project_obj["id"],
            "identifier": str(refs.get("full") or f"{project_obj['identifier']}#{i['iid']}"),
            "number": int(i["iid"]),
            "title": str(i.get("title") or ""),
            "description": str(i.get("description") or ""),
            "url": str(i.get("web_url") or ""),
            "status": "closed" if i.get("state") == "closed" else "opened",
            "type": str(i.get("issue_type") or i.get("type") or "issue").lower(),
            "tags": [str(lb if isinstance(lb, str) else lb.get("name", "")) for lb in i.get("labels") or []],
            "creator_ref_id": ref(i.get("author")),
            "reporter_ref_id": ref(i.get("author")),
            "assignee_ref_id": ref(assignees[0]) if assignees else "",
            "closed_by_ref_id": ref(i.get("closed_by")),
            "milestone": str(milestone.get("title") or ""),
            "weight": i.get("weight"),
            "confidential": bool(i.get("confidential")),
            "created_date": date(i.get("created_at")),
            "updated_date": date(i.get("updated_at")),
            "closed_date": date(i.get("closed_at")),
            "due_date": date(f"{i['due_date']}T00:00:00Z" if i.get("due_date") else None),
        }
    )


def issue_comment(
    cust: str, project_obj: dict[str, Any], issue_obj: dict[str, Any], n: dict[str, Any]
) -> dict[str, Any]:
    nref = str(n["id"])
    return finish(
        {
            "id": _work_id(cust, nref),
            "ref_id": nref,
            "ref_type": REF_TYPE,
            "customer_id": cust,
            "project_id": project_obj["id"],
            "issue_id": issue_obj["id"],
            "body": str(n.get("body") or ""),
            "url": f"{issue_obj['url']}#note_{nref}",
            "user_ref_id": ref(n.get("author")),
            "created_date": date(n.get("created_at")),
            "updated_date": date(n.get("updated_at")),
        }
    )


class WorkExporter:
    """One work export run: projects and their issues with notes."""

    def __init__(self, ctx: Context, cfg: GitLabConfig, client: GitLabClient) -> None:
        self.ctx, self.cfg, self.client = ctx, cfg, client
        self.cust = ctx.customer_id
        self.log = ctx.log
        self.users = UserSink()
        self._failed = 0
        self._pool = ThreadPoolExecutor(max_workers=cfg.detail_concurrency, thread_name_prefix="issue")

    def run(self) -> ExportResult:
        try:
            return self._run()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _run(self) -> ExportResult:
        key = scope_key(self.cfg)
        agent = self.ctx.require_agent()
        with agent.session("projects", tracking=True) as root:
            results: list[ExportProject] = []
            infos = list_projects(self.cfg, self.client, self.cust, missing=results)
            objs = {p.pid: project(self.cust, p.raw) for p in infos}
            with root.child("work.Project", key, key) as s:
                s.send_many(objs.values())
            for n, p in enumerate(infos, 1):
                results.append(self._project(root, p, objs[p.pid]))
                root.progress(n, len(infos))
        return ExportResult(projects=results)

    def _project(self, root: Session, p: ProjectInfo, pobj: dict[str, Any]) -> ExportProject:
        result = ExportProject(id=pobj["id"], ref_id=pobj["ref_id"], name=p.path)
        if self._failed > MAX_FAILED_PROJECTS:
            result.error = f"not exported: more than {MAX_FAILED_PROJECTS} projects failed before it"
            return result
        if not p.enabled("issues"):
            return result
        info = ProjectInfo(p.raw, pobj)  # child sessions hang under the work project's id
        first = root.child("work.Issue", pobj["id"], p.path)
        cursor = parse_cursor(first.last_processed)
        batches = [SessionBatch(root, info.obj["id"], info.path, first)]
        pages = 0

        def on_page(items: list[dict[str, Any]], total: int | None, more: bool) -> None:
            nonlocal pages
            self._issues(p, pobj, batches[-1], items)
            pages += 1
            if more and pages % self.cfg.checkpoint_pages == 0:  # a failure later keeps these pages
                batches[-1].done(format_cursor(cursor))
                batches.append(batches[-1].next())

        try:
            walk_updated(self.client, ep.ISSUES.url(project=p.pid), ep.ISSUES.query(), cursor, on_page)
        except ConfigError:
            batches[-1].rollback()
            raise
        except PinpointError as exc:
            batches[-1].rollback()
            self._failed += 1
            result.error = str(exc)
            return result
        except BaseException:
            batches[-1].rollback()
            raise
        batches[-1].done(format_cursor(cursor) or first.last_processed)
        return result

    def _notes(self, pid: int, i: dict[str, Any]) -> list[dict[str, Any]]:
        return user_notes(self.client.all(ep.ISSUE_NOTES.url(project=pid, iid=i["iid"]), ep.ISSUE_NOTES.query()))

    def _issues(self, p: ProjectInfo, pobj: dict[str, Any], batch: SessionBatch, items: list[dict[str, Any]]) -> None:
        # the notes reads wait on the network: detail_concurrency issues at a time
        for i, notes in zip(items, self._pool.map(lambda i: self._notes(p.pid, i), items), strict=True):
            obj = issue(self.cust, pobj, i)
            if notes:
                batch.session("work.IssueComment").send_many(issue_comment(self.cust, pobj, obj, n) for n in notes)
            for u in [i.get("author"), *(i.get("assignees") or []), *(n.get("author") for n in notes)]:
                if u and self.users.first_time(ref(u)):
                    batch.session("work.User").send(user(self.cust, u))
            batch.main.send(obj)
