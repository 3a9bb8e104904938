"""The list walks both the export and the interactive calls use: members, repos, who merged or closed pull
requests, and a repo's git request."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from integrations.github import endpoints as ep
from integrations.github import models
from integrations.github.client import GitHubClient, NotFound
from integrations.github.config import GitHubConfig
from integrations.sdk import ExportProject, GitPullRequest, GitRepoRequest


@dataclass
class RepoInfo:
    """A repo to export: GitHub's object and its datamodel object."""

    raw: dict[str, Any]
    obj: dict[str, Any]

    @property
    def owner(self) -> str:
        return str(self.raw["full_name"]).split("/", 1)[0]

    @property
    def name(self) -> str:
        return str(self.raw["full_name"]).split("/", 1)[1]

    @property
    def full_name(self) -> str:
        return str(self.raw["full_name"])

    def parts(self, **extra: Any) -> dict[str, Any]:
        return {"owner": self.owner, "repo": self.name, **extra}


def member_nodes(client: GitHubClient, organization: str) -> Iterator[dict[str, Any]]:
    """The organization's members from GraphQL (names and public emails included, 100 a request)."""
    for nodes in client.graphql_nodes(
        ep.ORG_MEMBERS,
        {"org": organization},
        lambda d: ((d or {}).get("organization") or {}).get("membersWithRole") or {},
    ):
        yield from (n for n in nodes if n)


def list_repos(
    cfg: GitHubConfig, client: GitHubClient, customer_id: str, missing: list[ExportProject] | None = None
) -> list[RepoInfo]:
    """The repos to export: the explicit ``repos`` list, else the organization's, filtered.

    An explicit repo that is not there is appended to ``missing`` as a failed project (raised without it).
    """
    raws: list[dict[str, Any]] = []
    if cfg.repos:
        for full in cfg.repos:
            owner, name = full.split("/", 1)
            try:
                raws.append(client.get(ep.REPO.url(owner=owner, repo=name)).data)
            except NotFound as exc:
                if missing is None:
                    raise
                missing.append(ExportProject(name=full, error=str(exc)))
    else:
        for page in client.pages(ep.ORG_REPOS.url(org=cfg.organization), ep.ORG_REPOS.query()):
            raws.extend(r for r in page.items if cfg.wants_repo(str(r.get("full_name", ""))))
    return [RepoInfo(r, models.repo(customer_id, r)) for r in raws]


def add_closers(client: GitHubClient, repo: RepoInfo, items: list[Any], log: Any = None) -> None:
    """Adds ``merged_by`` / ``closed_by`` to the merged / closed pull requests among ``items`` that lack them
    (GitHub's list carries neither): one GraphQL query for up to 100 of them, or, for pull requests without a
    node id (older Enterprise servers) or that GraphQL cannot resolve, one REST read each (merged: the pull
    request; closed: its issue). Changes ``items`` in place."""
    wanted = [pr for pr in items
              if ("merged_by" not in pr if pr.get("merged_at") else
                  pr.get("state") == "closed" and "closed_by" not in pr)]
    by_node = {str(pr["node_id"]): pr for pr in wanted if pr.get("node_id")}
    ids = list(by_node)
    answered: set[str] = set()
    for start in range(0, len(ids), 100):
        try:
            data = client.graphql(ep.PULL_CLOSERS, {"ids": ids[start:start + 100]}) or {}
        except NotFound as exc:  # a node GraphQL cannot resolve: read those pull requests by REST
            if log is not None:
                log.warning("closers query failed; reading each pull request", error=str(exc))
            continue
        for node in data.get("nodes") or []:
            pr = by_node.get(str((node or {}).get("id")))
            if pr is None:
                continue
            answered.add(str(pr["node_id"]))
            events = ((node.get("timelineItems") or {}).get("nodes")) or []
            if pr.get("merged_at"):
                pr["merged_by"] = models.actor_user(node.get("mergedBy"))
            if events:
                pr["closed_by"] = models.actor_user((events[-1] or {}).get("actor"))
    for pr in wanted:
        if str(pr.get("node_id") or "") in answered:
            continue
        if pr.get("merged_at"):
            full = client.get(ep.PULL.url(**repo.parts(number=pr["number"]))).data or {}
            pr["merged_by"] = full.get("merged_by")
        else:
            issue = client.get(ep.ISSUE.url(**repo.parts(number=pr["number"]))).data or {}
            pr["closed_by"] = issue.get("closed_by")


def git_request(repo: RepoInfo, prs: list[GitPullRequest], token: str) -> GitRepoRequest:
    """``ExportGitRepo`` for a repo: clone url without credentials (the token travels in ``credentials``)."""
    html = str(repo.raw.get("html_url") or "")
    return GitRepoRequest(
        repo_id=repo.obj["id"],
        unique_name=repo.full_name,
        url=str(repo.raw.get("clone_url") or f"{html}.git"),
        commit_url_template=f"{html}/commit/@@@sha@@@",
        branch_url_template=f"{html}/tree/@@@branch@@@",
        ref_type=models.REF_TYPE,
        prs=prs,
        credentials=token,
    )
