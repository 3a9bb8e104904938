"""Sprints, from the Agile API: every scrum board's sprints into one ``work.Sprint`` session.

Boards are listed with ``/rest/agile/1.0/board`` and their sprints with ``/board/{id}/sprint`` (both ``isLast``
pages). A sprint shared by several boards is sent once. Kanban boards have no sprints (Jira answers 400 when
asked): they are skipped. A Jira without Jira Software has no Agile API (404): no sprints, no error.
A failure is logged and leaves the sprints as they were (the session rolls back); the export goes on, since
the projects exported before it are complete. Rejected credentials still fail the export.
"""

from __future__ import annotations

from integrations.jira import endpoints as ep
from integrations.jira import models
from integrations.jira.client import JiraClient, JiraError, NotFound
from integrations.sdk import ConfigError, Logger, Session
from pinpoint_agent.errors import PinpointError


def export_sprints(session: Session, client: JiraClient, cust: str, base_url: str, log: Logger) -> None:
    """Sends the sprints into ``session`` and ends it (done, or rolled back after a failure)."""
    try:
        _board_sprints(session, client, cust, base_url, log)
    except ConfigError:
        session.rollback()
        raise
    except PinpointError as exc:
        session.rollback()
        log.warning("sprints not exported", error=str(exc))
        return
    session.done()


def _board_sprints(session: Session, client: JiraClient, cust: str, base_url: str, log: Logger) -> None:
    seen: set[str] = set()
    try:
        boards = [b for items, _ in client.offset_pages(ep.BOARDS, page_size=50) for b in items]
    except NotFound:
        log.info("no Agile API on this Jira (Jira Software not installed): no sprints")
        return
    for board in boards:
        if board.get("type") not in (None, "scrum"):
            continue
        try:
            for items, _ in client.offset_pages(ep.BOARD_SPRINTS.format(board=int(board["id"])), page_size=50):
                fresh = [s for s in items if str(s.get("id")) not in seen]
                seen.update(str(s.get("id")) for s in fresh)
                session.send_many(models.sprint(cust, s, base_url) for s in fresh)
        except JiraError as exc:
            if exc.status != 400:  # 400: "The board does not support sprints"
                raise
