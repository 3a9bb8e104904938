"""The list walks the export and the interactive calls share: who the token is, projects, users, git."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from integrations.gitlab import endpoints as ep
from integrations.gitlab import models
from integrations.gitlab.client import GitLabClient, NotFound
from integrations.gitlab.config import GitLabConfig
from integrations.sdk import ExportProject, GitPullRequest, GitRepoRequest


@dataclass
class ProjectInfo:
    """A project to export: GitLab's object and its ``sourcecode.Repo``."""

    raw: dict[str, Any]
    obj: dict[str, Any]

    @property
    def pid(self) -> int:
        return int(self.raw["id"])

    @property
    def path(self) -> str:
        return str(self.raw["path_with_namespace"])

    def enabled(self, feature: str) -> bool:
        """Whether a project feature (``merge_requests``, ``issues``, ``repository``) is on: GitLab's
        ``<feature>_access_level`` (since 12.x), else the older ``<feature>_enabled``; on when neither is there."""
        level = self.raw.get(f"{feature}_access_level")
        if level is not None:
            return bool(level != "disabled")
        return bool(self.raw.get(f"{feature}_enabled", True))


def is_admin(client: GitLabClient) -> bool:
    """Whether the token is an administrator's: ``/user`` has ``is_admin`` true only for them (GitLab leaves the
    field out for everybody else)."""
    me = client.get(ep.CURRENT_USER.url()).data or {}
    return bool(me.get("is_admin"))


def list_projects(
    cfg: GitLabConfig, client: GitLabClient, customer_id: str, missing: list[ExportProject] | None = None
) -> list[ProjectInfo]:
    """The projects to export: each configured group's (subgroups included, offset pages), else every project
    the token is a member of (keyset pages ordered by id), filtered by archived/inclusions/exclusions.

    A configured group that is not there is appended to ``missing`` as a failed project (raised without it)."""
    raws: dict[int, dict[str, Any]] = {}
    walks: list[tuple[str, dict[str, Any], bool]] = []
    if cfg.groups:
        for group in cfg.groups:
            q = ep.GROUP_PROJECTS.query(archived=None if cfg.include_archived else "false")
            walks.append((ep.GROUP_PROJECTS.url(group=group), q, False))
    else:
        q = ep.PROJECTS.query(archived=None if cfg.include_archived else "false")
        walks.append((ep.PROJECTS.url(), q, ep.PROJECTS.keyset))
    for (path, query, keyset), group in zip(walks, cfg.groups or [""], strict=True):
        try:
            for page in client.pages(path, query, keyset=keyset):
                for p in page.items:
                    if cfg.wants_project(str(p.get("path_with_namespace", "")), archived=bool(p.get("archived"))):
                        raws.setdefault(int(p["id"]), p)
        except NotFound as exc:
            if missing is None:
                raise
            missing.append(ExportProject(name=group, error=f"group {group!r} is not visible to this token ({exc})"))
    return [ProjectInfo(p, models.repo(customer_id, p)) for p in raws.values()]


def users(
    cfg: GitLabConfig, client: GitLabClient, projects: list[ProjectInfo], admin: bool
) -> Iterator[dict[str, Any]]:
    """The users to export: with an admin token every active user of the instance (``/users`` with emails);
    otherwise the members of the configured groups, or of each exported project."""
    if admin:
        for page in client.pages(ep.USERS.url(), ep.USERS.query(active="true"), keyset=ep.USERS.keyset):
            yield from page.items
        return
    seen: set[int] = set()
    sources = (
        [ep.GROUP_MEMBERS.url(group=g) for g in cfg.groups]
        if cfg.groups
        else [ep.PROJECT_MEMBERS.url(project=p.pid) for p in projects]
    )
    for path in sources:
        try:
            for page in client.pages(path):
                for u in page.items:
                    if int(u["id"]) not in seen:
                        seen.add(int(u["id"]))
                        yield u
        except NotFound:
            continue  # a group or project gone since it was listed: its members come with it


def git_request(project: ProjectInfo, prs: list[GitPullRequest], token: str, *, oauth: bool = False) -> GitRepoRequest:
    """``ExportGitRepo`` for a project: the http clone url; the token only in ``credentials``.

    GitLab takes an OAuth token over git only with the user name ``oauth2``; that name (no secret) goes in the
    url's user-info, which the agent's git layer takes as the user name for the credentials and strips from
    what it logs. Access tokens take any user name, so their url stays as GitLab gives it.

    A mirror clone fetches every ref, ``refs/merge-requests/<iid>/head`` included, so merge request heads
    whose source branch is gone (or lives in a fork) are still there for the git processing."""
    web = str(project.raw.get("web_url") or "")
    url = str(project.raw.get("http_url_to_repo") or f"{web}.git")
    if oauth and "://" in url and "@" not in url.split("://", 1)[1].split("/", 1)[0]:
        scheme, rest = url.split("://", 1)
        url = f"{scheme}://oauth2@{rest}"
    return GitRepoRequest(
        repo_id=project.obj["id"],
        unique_name=project.path,
        url=url,
        commit_url_template=f"{web}/-/commit/@@@sha@@@",
        branch_url_template=f"{web}/-/tree/@@@branch@@@",
        ref_type=models.REF_TYPE,
        prs=prs,
        credentials=token,
    )
