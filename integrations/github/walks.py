"""The list walks both the export and the interactive calls use: members, repos, and a repo's git request."""

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
