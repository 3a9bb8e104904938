"""Which custom fields hold story points, sprints and epic links, from ``/field`` (never hard-coded ids).

Jira names custom fields per site (``customfield_10016`` on one, ``customfield_10002`` on another). The field
list tells each field's ``schema.custom`` type: the sprint field is ``com.pyxis.greenhopper.jira:gh-sprint``,
the epic link ``…:gh-epic-link``; story points are ``…:jsw-story-points`` ("Story point estimate", Cloud
team-managed and newer company-managed projects) or a number field named "Story Points". A site may have
both story point fields: the ``jsw`` one wins, the other is read when it is empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SPRINT_TYPE = "com.pyxis.greenhopper.jira:gh-sprint"
EPIC_LINK_TYPE = "com.pyxis.greenhopper.jira:gh-epic-link"
STORY_POINTS_TYPE = "com.pyxis.greenhopper.jira:jsw-story-points"
STORY_POINT_NAMES = ("story points", "story point estimate")


@dataclass(frozen=True)
class CustomFields:
    story_points: tuple[str, ...] = ()  # in the order to read them
    sprint: str = ""
    epic_link: str = ""
    names: dict[str, str] = field(default_factory=dict)  # id -> name of every custom field

    def ids(self) -> list[str]:
        return [f for f in (*self.story_points, self.sprint, self.epic_link) if f]


def discover(fields: list[dict[str, Any]]) -> CustomFields:
    points: list[tuple[int, str]] = []
    sprint = epic = ""
    names: dict[str, str] = {}
    for f in fields:
        if not isinstance(f, dict) or not f.get("custom"):
            continue
        fid, name = str(f.get("id") or ""), str(f.get("name") or "")
        kind = str((f.get("schema") or {}).get("custom") or "")
        names[fid] = name
        if kind == SPRINT_TYPE and not sprint:
            sprint = fid
        elif kind == EPIC_LINK_TYPE and not epic:
            epic = fid
        elif kind == STORY_POINTS_TYPE:
            points.append((0, fid))
        elif name.lower() in STORY_POINT_NAMES and (f.get("schema") or {}).get("type") == "number":
            points.append((1, fid))
    return CustomFields(tuple(fid for _, fid in sorted(points)), sprint, epic, names)
