"""The REST and GraphQL endpoints the integration uses, as data: path, fixed parameters, what pages them.

An export reads like a walk over these: ``ORG_MEMBERS`` (GraphQL) -> ``ORG_REPOS`` -> per repo
``PULLS_CREATED`` (first sync, oldest first) or ``PULLS_UPDATED`` (later syncs, newest first until the
cursor) -> per page, who merged or closed its closed pull requests (``PULL_CLOSERS``, one GraphQL query; the
list leaves that out) -> per changed pull request ``PULL_COMMITS`` and ``PULL_REVIEWS`` -> per repo
``ISSUE_COMMENTS`` and ``REVIEW_COMMENTS`` (``since`` the last sync).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote


@dataclass(frozen=True)
class Endpoint:
    """A REST path template (``{owner}``, ``{repo}``, ``{number}``, ``{org}``) and its fixed query parameters.

    ``cursor`` names the query parameter that carries the incremental position, if the API has one.
    """

    path: str
    params: dict[str, Any] = field(default_factory=dict)
    cursor: str = ""

    def url(self, **parts: Any) -> str:
        return self.path.format(**{k: quote(str(v), safe="") for k, v in parts.items()})

    def query(self, **extra: Any) -> dict[str, Any]:
        return {**self.params, **{k: v for k, v in extra.items() if v not in (None, "")}}


VIEWER = Endpoint("/user")
META = Endpoint("/meta")
ORG = Endpoint("/orgs/{org}")
ORG_MEMBERS_REST = Endpoint("/orgs/{org}/members")
ORG_REPOS = Endpoint("/orgs/{org}/repos", {"type": "all", "sort": "full_name", "direction": "asc"})
REPO = Endpoint("/repos/{owner}/{repo}")
# First sync: creation order is stable (new pull requests only append), so a walk resumed at a page
# neither skips nor repeats; later syncs: newest update first, stopping at the cursor.
PULLS_CREATED = Endpoint(
    "/repos/{owner}/{repo}/pulls", {"state": "all", "sort": "created", "direction": "asc"}
)
PULLS_UPDATED = Endpoint(
    "/repos/{owner}/{repo}/pulls", {"state": "all", "sort": "updated", "direction": "desc"}
)
PULL = Endpoint("/repos/{owner}/{repo}/pulls/{number}")
ISSUE = Endpoint("/repos/{owner}/{repo}/issues/{number}")  # a pull request's issue: ``closed_by``
PULL_COMMITS = Endpoint("/repos/{owner}/{repo}/pulls/{number}/commits")
PULL_REVIEWS = Endpoint("/repos/{owner}/{repo}/pulls/{number}/reviews")
ISSUE_COMMENTS = Endpoint(
    "/repos/{owner}/{repo}/issues/comments", {"sort": "updated", "direction": "asc"}, cursor="since"
)
REVIEW_COMMENTS = Endpoint(
    "/repos/{owner}/{repo}/pulls/comments", {"sort": "updated", "direction": "asc"}, cursor="since"
)

ORG_MEMBERS = """
query($org: String!, $first: Int!, $after: String) {
  organization(login: $org) {
    membersWithRole(first: $first, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { id login name email avatarUrl url }
    }
  }
}
"""

# Pull request ref ids are GraphQL node ids (as the original agent's); REST needs owner/repo/number.
PULL_BY_NODE = """
query($id: ID!) {
  node(id: $id) {
    ... on PullRequest { number repository { nameWithOwner } }
  }
}
"""

# Who merged / closed pull requests of one list page (up to 100 node ids a query): the REST list omits
# ``merged_by`` (and pulls have no ``closed_by``); reading each pull request would cost a request each.
PULL_CLOSERS = """
query($ids: [ID!]!) {
  nodes(ids: $ids) {
    ... on PullRequest {
      id
      mergedBy { ...actor }
      timelineItems(itemTypes: [CLOSED_EVENT], last: 1) { nodes { ... on ClosedEvent { actor { ...actor } } } }
    }
  }
}
fragment actor on Actor {
  __typename login avatarUrl url
  ... on User { id databaseId name }
  ... on Bot { id databaseId }
  ... on Mannequin { id databaseId }
  ... on Organization { id databaseId name }
}
"""
