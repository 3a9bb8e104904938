"""The interactive calls: validate-config, onboarding, mutations and webhooks.

Each is a plain function of the config, a client and the customer, so tests can call them in-process
against the fake GitHub as well as through the plugin.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import orjson

from integrations.github import endpoints as ep
from integrations.github import models
from integrations.github.client import GitHubClient, NotFound
from integrations.github.config import GitHubConfig
from integrations.github.walks import RepoInfo, add_closers, git_request
from integrations.sdk import (
    AgentClient,
    ConfigError,
    MutateResult,
    NotSupportedError,
    ValidateResult,
    WebhookResult,
)
from pinpoint_agent.errors import PinpointError

REPO_SCOPES = {"repo", "public_repo"}


# -- validate-config ---------------------------------------------------------------------------------------
def validate(cfg: GitHubConfig, client: GitHubClient) -> ValidateResult:
    """The token works (with a repo scope), the organization or repos are visible; a repo to test-clone."""
    result = ValidateResult()
    try:
        viewer = client.get(ep.VIEWER.url())
        scopes = viewer.headers.get("x-oauth-scopes")
        if (
            scopes is not None and scopes.strip()
        ):  # classic tokens list their scopes; fine-grained ones do not
            have = {s.strip() for s in scopes.split(",")}
            if not have & REPO_SCOPES:
                result.errors.append(f"the token lacks the repo scope (it has: {', '.join(sorted(have))})")
        result.server_version = _server_version(
            cfg, client, viewer.headers.get("x-github-enterprise-version")
        )
        first = _first_repo(cfg, client, result.errors)
        if first is not None:
            result.repo_url = str(first.get("clone_url") or "")
            result.repo_credentials = cfg.token
    except ConfigError as exc:
        result.errors.append(str(exc))
    except PinpointError as exc:
        result.errors.append(f"cannot use GitHub at {cfg.api().rest}: {exc}")
    return result


def _server_version(cfg: GitHubConfig, client: GitHubClient, header: str | None) -> str:
    if header or not cfg.api().enterprise:
        return header or ""
    try:
        meta = client.get(ep.META.url()).data or {}
    except PinpointError:
        return ""
    return str(meta.get("installed_version") or "")


def _first_repo(cfg: GitHubConfig, client: GitHubClient, errors: list[str]) -> dict[str, Any] | None:
    if cfg.repos:
        found = None
        for full in cfg.repos:
            owner, name = full.split("/", 1)
            try:
                repo = client.get(ep.REPO.url(owner=owner, repo=name)).data
            except NotFound:
                errors.append(f"repo {full} is not visible to this token")
                continue
            found = found or repo
        return found
    try:
        client.get(ep.ORG.url(org=cfg.organization))
    except NotFound:
        errors.append(f"organization {cfg.organization!r} is not visible to this token")
        return None
    for page in client.pages(ep.ORG_REPOS.url(org=cfg.organization), ep.ORG_REPOS.query()):
        for repo in page.items:
            if cfg.wants_repo(str(repo.get("full_name", ""))):
                return dict(repo)
    errors.append(
        f"organization {cfg.organization!r} has no repo this token can see (after inclusions/exclusions)"
    )
    return None


# -- mutations ---------------------------------------------------------------------------------------------
MUTATIONS = {"PR_SET_TITLE": ("title", "title"), "PR_SET_DESCRIPTION": ("body_markdown", "body")}


def mutate(client: GitHubClient, customer_id: str, fn: str, data: Any) -> MutateResult:
    """``PR_SET_TITLE {ref_id,title}`` / ``PR_SET_DESCRIPTION {ref_id,body_markdown}``; returns the PR as it
    is now.

    GitHub's PATCH answer is the pull request as stored after the change, so it serves as the refetch; its
    commits are read so the object is as complete as an exported one.
    """
    if fn not in MUTATIONS:
        raise NotSupportedError(f"github does not support mutation {fn}")
    key, field = MUTATIONS[fn]
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("ref_id"), str)
        or not data["ref_id"]
        or not isinstance(data.get(key), str)
    ):
        raise ConfigError(f'{fn} needs {{"ref_id": str, "{key}": str}}')
    owner, repo, number = pull_by_node(client, data["ref_id"])
    raw = client.request(
        "PATCH", ep.PULL.url(owner=owner, repo=repo, number=number), json={field: data[key]}
    ).data
    return MutateResult(
        mutated_objects={"sourcecode.PullRequest": [pull_request_object(client, customer_id, raw)]}
    )


def pull_by_node(client: GitHubClient, ref_id: str) -> tuple[str, str, int]:
    """owner, repo and number of the pull request with this GraphQL node id (our ref id)."""
    try:
        node = (client.graphql(ep.PULL_BY_NODE, {"id": ref_id}) or {}).get("node")
    except NotFound:
        node = None
    if not node or "number" not in node:
        raise ConfigError(f"no pull request with ref_id {ref_id!r} is visible to this token")
    owner, repo = str(node["repository"]["nameWithOwner"]).split("/", 1)
    return owner, repo, int(node["number"])


def pull_request_object(client: GitHubClient, customer_id: str, raw: dict[str, Any]) -> dict[str, Any]:
    """The datamodel pull request of a full REST pull request (its repo from ``base.repo``), with commits and,
    as the export has them, who merged or closed it."""
    repo_raw = raw["base"]["repo"]
    info = RepoInfo(repo_raw, models.repo(customer_id, repo_raw))
    raw = dict(raw)
    add_closers(client, info, [raw])  # a closed, unmerged PR: who closed it (the PR object does not say)
    shas = [
        str(c["sha"])
        for page in client.pages(ep.PULL_COMMITS.url(**info.parts(number=raw["number"])))
        for c in page.items
    ]
    return models.pull_request(customer_id, info.obj, raw, shas)


# -- webhooks ----------------------------------------------------------------------------------------------
def webhook(
    cfg: GitHubConfig,
    client: GitHubClient,
    agent: AgentClient | None,
    customer_id: str,
    headers: dict[str, str],
    body: bytes,
) -> WebhookResult:
    """One delivery: pull_request, pull_request_review, issue_comment -> objects; push -> queues git."""
    lower = {k.lower(): v for k, v in headers.items()}
    event = lower.get("x-github-event", "")
    if not event:
        raise NotSupportedError("github: not a GitHub webhook delivery (no X-GitHub-Event header)")
    if event not in ("pull_request", "pull_request_review", "issue_comment", "push", "ping"):
        raise NotSupportedError(f"github: webhook event {event!r} is not supported")
    if cfg.webhook_secret:
        expected = "sha256=" + hmac.new(cfg.webhook_secret.get().encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, lower.get("x-hub-signature-256", "")):
            raise ConfigError(
                "github: the webhook signature (X-Hub-Signature-256) does not match webhook_secret"
            )
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"github: the {event} webhook body is not JSON ({exc})") from exc
    if not isinstance(payload, dict) or (event != "ping" and not isinstance(payload.get("repository"), dict)):
        raise ConfigError(f"github: the {event} webhook has no repository")
    if event == "ping":
        return WebhookResult()
    repo_raw = payload["repository"]
    repo_obj = models.repo(customer_id, repo_raw)
    info = RepoInfo(repo_raw, repo_obj)
    if event == "push":
        return _push(agent, cfg, info)
    if event == "pull_request":
        return WebhookResult(
            {
                "sourcecode.PullRequest": [
                    pull_request_object(client, customer_id, _with_base(payload, repo_raw))
                ]
            }
        )
    if event == "pull_request_review":
        pr_id = models.pull_request(customer_id, repo_obj, payload["pull_request"], [])["id"]
        return WebhookResult(
            {"sourcecode.PullRequestReview": [models.review(customer_id, repo_obj, pr_id, payload["review"])]}
        )
    issue = payload.get("issue") or {}
    if "pull_request" not in issue or payload.get("action") == "deleted":
        return (
            WebhookResult()
        )  # a comment on a plain issue (or a deletion): nothing for the pull request models
    # The issue's node id is not the pull request's: read the pull request for its ref id.
    raw = client.get(ep.PULL.url(**info.parts(number=issue["number"]))).data
    pr_id = models.pull_request(customer_id, repo_obj, raw, [])["id"]
    return WebhookResult(
        {"sourcecode.PullRequestComment": [models.comment(customer_id, repo_obj, pr_id, payload["comment"])]}
    )


def _with_base(payload: dict[str, Any], repo_raw: dict[str, Any]) -> dict[str, Any]:
    pr = dict(payload["pull_request"])
    pr["base"] = {**(pr.get("base") or {}), "repo": (pr.get("base") or {}).get("repo") or repo_raw}
    if payload.get("action") == "closed" and "closed_by" not in pr:
        pr["closed_by"] = payload.get("sender")  # who closed (or merged) it: the delivery's sender
    return pr


def _push(agent: AgentClient | None, cfg: GitHubConfig, info: RepoInfo) -> WebhookResult:
    if agent is None:
        raise NotSupportedError("github: a push needs the agent's git processing, which is not available")
    agent.export_git_repo(git_request(info, [], cfg.token))
    return WebhookResult()
