"""The ``git`` integration queues each configured repository for the agent's git processing.

Config::

    {"repos": ["/path/to/repo", "https://host/org/repo.git",
               {"url": "…", "name": "org/repo", "commit_url_template": "…@@@sha@@@",
                "branch_url_template": "…@@@branch@@@"}]}

Relative paths are taken from the agent's working directory. Each repo is a project of the result and a
``sourcecode.Repo`` object; commits, branches and git users come from the agent's git processing.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from integrations.sdk import (
    ConfigError,
    Context,
    ExportProject,
    ExportResult,
    GitRepoRequest,
    Integration,
    OnboardObjectType,
    ValidateResult,
    split_url,
)
from pinpoint_agent.askpass import credential_env, split_credentials
from pinpoint_agent.ids import hashcode, repo_id

REF_TYPE = "git"


@dataclass(frozen=True)
class RepoSpec:
    url: str  # without credentials: what is exported, logged and put on git's command line
    name: str
    commit_url_template: str
    branch_url_template: str
    credentials: str = field(default="", repr=False)  # split off the configured url (userinfo, token params)


def _is_url(text: str) -> bool:
    return "://" in text or (text.count(":") == 1 and "@" in text.split(":")[0])  # scheme or scp-like


def parse_repos(config: dict[str, Any]) -> list[RepoSpec]:
    repos = config.get("repos")
    if not isinstance(repos, list) or not repos:
        raise ConfigError('git: config needs "repos": a non-empty list of paths or urls')
    specs, names = [], set()
    for i, raw in enumerate(repos):
        item = {"url": raw} if isinstance(raw, str) else raw
        if not isinstance(item, dict) or not isinstance(item.get("url"), str) or not item["url"]:
            raise ConfigError(f"git: repos[{i}] must be a path, a url or {{\"url\": …}}")
        split = split_url(item["url"])
        url = split.url
        if not _is_url(url):
            url = os.path.abspath(os.path.expanduser(url))
            if not os.path.isdir(url):
                raise ConfigError(f"git: repos[{i}]: {url} is not a folder")
        path = urlparse(url).path if _is_url(url) else url
        name = item.get("name") or os.path.basename(path.rstrip("/")).removesuffix(".git") or f"repo{i}"
        if name in names:
            name = path.strip("/").removesuffix(".git")
        names.add(name)
        base = url if _is_url(url) else f"file://{url}"
        specs.append(RepoSpec(url, str(name), item.get("commit_url_template") or f"{base}#commit/@@@sha@@@",
                              item.get("branch_url_template") or f"{base}#branch/@@@branch@@@",
                              split.credentials))
    return specs


class GitIntegration(Integration):
    name = "git"

    def export(self, ctx: Context) -> ExportResult:
        specs = parse_repos(ctx.config)
        agent = ctx.require_agent()
        projects = []
        with agent.session("sourcecode.Repo") as repos:
            for spec in specs:
                rid = repo_id(ctx.customer_id, REF_TYPE, spec.name)
                repo = {"id": rid, "ref_id": spec.name, "ref_type": REF_TYPE, "customer_id": ctx.customer_id,
                        "name": spec.name, "url": spec.url, "active": True}
                repo["hashcode"] = hashcode(repo)
                repos.send(repo)
                agent.export_git_repo(GitRepoRequest(
                    repo_id=rid, unique_name=spec.name, ref_type=REF_TYPE, url=spec.url,
                    commit_url_template=spec.commit_url_template, branch_url_template=spec.branch_url_template,
                    credentials=spec.credentials))
                projects.append(ExportProject(id=rid, ref_id=spec.name, name=spec.name))
        return ExportResult(projects=projects)

    def validate_config(self, ctx: Context) -> ValidateResult:
        try:
            specs = parse_repos(ctx.config)
        except ConfigError as exc:
            return ValidateResult(errors=[str(exc)])
        errors = []
        for spec in specs:
            token, user = (None, "") if not spec.credentials else reversed(split_credentials(spec.credentials))
            with credential_env(token, user or "x-access-token") as cred:
                proc = subprocess.run(["git", "-c", "credential.helper=", "ls-remote", "--heads", "--", spec.url],
                                      capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                                      env={**os.environ, **cred})
            if proc.returncode != 0:
                errors.append(f"git: {spec.name}: not a readable repository")
        return ValidateResult(errors=errors, repo_url=specs[0].url, repo_credentials=specs[0].credentials,
                              server_version="git")

    def onboard_export(self, ctx: Context, object_type: OnboardObjectType) -> Any:
        if object_type != OnboardObjectType.REPOS:
            return super().onboard_export(ctx, object_type)
        return [{"id": repo_id(ctx.customer_id, REF_TYPE, s.name), "ref_id": s.name, "name": s.name, "url": s.url}
                for s in parse_repos(ctx.config)]
