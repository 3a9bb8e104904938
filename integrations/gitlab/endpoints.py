"""The API v4 endpoints the integration uses, as data: path template, fixed parameters, pagination kind.

An export reads like a walk over these: ``CURRENT_USER`` (admin or not) -> ``GROUP_PROJECTS`` per configured
group (offset pages) or ``PROJECTS`` (keyset, by id) -> ``USERS`` (keyset; an admin sees emails, and
``USER_EMAILS`` each) or ``GROUP_MEMBERS`` -> per project ``MERGE_REQUESTS`` (``updated_after``, oldest update
first) -> per changed merge request ``MR_COMMITS``, ``MR_APPROVALS``, ``MR_REVIEWERS`` (when it has
reviewers) and ``MR_NOTES``. Work: ``ISSUES`` and ``ISSUE_NOTES``. validate-config adds ``VERSION``. Project
ids go in paths as numbers; names (``group/sub``) are url-encoded whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote


@dataclass(frozen=True)
class Endpoint:
    """A path template (``{project}``, ``{group}``, ``{iid}``, ``{user}``), its fixed query parameters and
    whether GitLab offers keyset pagination for it (with these parameters)."""

    path: str
    params: dict[str, Any] = field(default_factory=dict)
    keyset: bool = False

    def url(self, **parts: Any) -> str:
        return self.path.format(**{k: quote(str(v), safe="") for k, v in parts.items()})

    def query(self, **extra: Any) -> dict[str, Any]:
        return {**self.params, **{k: v for k, v in extra.items() if v not in (None, "")}}


VERSION = Endpoint("/version")
CURRENT_USER = Endpoint("/user")
GROUP = Endpoint("/groups/{group}")
GROUP_PROJECTS = Endpoint(
    "/groups/{group}/projects", {"include_subgroups": "true", "order_by": "id", "sort": "asc", "simple": "false"}
)
PROJECTS = Endpoint("/projects", {"membership": "true", "order_by": "id", "sort": "asc"}, keyset=True)
PROJECT = Endpoint("/projects/{project}")
GROUP_MEMBERS = Endpoint("/groups/{group}/members/all")
PROJECT_MEMBERS = Endpoint("/projects/{project}/members/all")
USERS = Endpoint("/users", {"order_by": "id", "sort": "asc"}, keyset=True)  # admins see emails; others do not
USER_EMAILS = Endpoint("/users/{user}/emails")  # admin only: the secondary emails
MERGE_REQUESTS = Endpoint(
    "/projects/{project}/merge_requests",
    {"state": "all", "scope": "all", "order_by": "updated_at", "sort": "asc"},
)
MERGE_REQUEST = Endpoint("/projects/{project}/merge_requests/{iid}")
MR_COMMITS = Endpoint("/projects/{project}/merge_requests/{iid}/commits")
MR_APPROVALS = Endpoint("/projects/{project}/merge_requests/{iid}/approvals")
MR_REVIEWERS = Endpoint("/projects/{project}/merge_requests/{iid}/reviewers")  # GitLab 15.x+: review states
MR_NOTES = Endpoint("/projects/{project}/merge_requests/{iid}/notes", {"sort": "asc", "order_by": "created_at"})
ISSUES = Endpoint("/projects/{project}/issues", {"scope": "all", "order_by": "updated_at", "sort": "asc"})
ISSUE = Endpoint("/projects/{project}/issues/{iid}")
ISSUE_NOTES = Endpoint("/projects/{project}/issues/{iid}/notes", {"sort": "asc", "order_by": "created_at"})
