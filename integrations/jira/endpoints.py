"""The REST endpoints the integration uses, as data: one table per flavor (Cloud v3, Data Center v2).

An export reads like a walk over these: ``SERVER_INFO`` + ``MYSELF`` (clock, the user's time zone for JQL) ->
``FIELDS`` (which custom fields hold story points, sprints, epic links) -> ``PROJECTS`` -> ``USERS`` -> per project
``SEARCH`` (issues with their fields, change log and rendered bodies in one call per page) -> per issue whose
embedded comments or change log were cut short ``COMMENTS`` / ``CHANGELOG`` -> ``BOARDS`` -> ``BOARD_SPRINTS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

# Fields the search asks for (custom fields are added once /field told which ids they have). ``comment`` and
# ``expand=changelog,renderedFields`` bring comments (rendered) and histories with the issue: one request per
# page of issues covers almost everything; only issues with many comments or changes need more.
ISSUE_FIELDS = (
    "summary", "issuetype", "status", "priority", "resolution", "resolutiondate", "assignee", "reporter",
    "creator", "labels", "components", "fixVersions", "parent", "subtasks", "issuelinks", "created", "updated",
    "duedate", "project", "description", "comment",
)
SEARCH_EXPAND = ("changelog", "renderedFields")


@dataclass(frozen=True)
class Endpoints:
    """Paths of one flavor; ``{key}``, ``{board}`` are filled by ``path``."""

    api: str
    search: str
    projects: str
    projects_paged: bool
    users: str
    changelog: str  # Cloud: the paged /changelog; Data Center: the issue with expand=changelog
    changelog_paged: bool

    def path(self, template: str, **parts: object) -> str:
        return template.format(api=self.api, **{k: quote(str(v), safe="") for k, v in parts.items()})


CLOUD = Endpoints(
    api="/rest/api/3",
    search="/rest/api/3/search/jql",
    projects="/rest/api/3/project/search",
    projects_paged=True,
    users="/rest/api/3/users/search",
    changelog="/rest/api/3/issue/{key}/changelog",
    changelog_paged=True,
)
HOSTED = Endpoints(
    api="/rest/api/2",
    search="/rest/api/2/search",
    projects="/rest/api/2/project",
    projects_paged=False,
    users="/rest/api/2/user/search",
    changelog="/rest/api/2/issue/{key}",
    changelog_paged=False,
)

SERVER_INFO = "{api}/serverInfo"
MYSELF = "{api}/myself"
FIELDS = "{api}/field"
MY_PERMISSIONS = "{api}/mypermissions"
STATUSES = "{api}/status"
PRIORITIES = "{api}/priority"
ISSUE_TYPES = "{api}/issuetype"
RESOLUTIONS = "{api}/resolution"
ISSUE = "{api}/issue/{key}"
COMMENTS = "{api}/issue/{key}/comment"
TRANSITIONS = "{api}/issue/{key}/transitions"
ASSIGNEE = "{api}/issue/{key}/assignee"
BOARDS = "/rest/agile/1.0/board"
BOARD_SPRINTS = "/rest/agile/1.0/board/{board}/sprint"


def for_flavor(cloud: bool) -> Endpoints:
    return CLOUD if cloud else HOSTED
