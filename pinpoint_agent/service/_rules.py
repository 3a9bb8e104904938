"""Which scheduled runs the service takes: pure rules, no I/O.

A request older than its command's limit when the agent first sees it is refused (the original agent
ignored export requests older than 5 minutes, mutations older than 15 s and webhooks older than 5
minutes: after an outage, the backend has moved on). "First sees": an export that has to wait behind
another export is marked ``ACCEPTED_TAG`` when the agent sees it, so waiting in the queue, or across a
restart of the service, never makes it too old.
"""

from __future__ import annotations

from datetime import datetime

ACCEPTED_TAG = "pinpoint-accepted"


def age_seconds(due: datetime, now: datetime) -> float:
    """Seconds since the run was due (its expected start; for a new run, when it was created)."""
    return (now - due).total_seconds()


def refusal(command: str, max_age: float, *, due: datetime, tags: list[str], now: datetime) -> str | None:
    """The message a refused run is cancelled with, or None when the run may go ahead."""
    if ACCEPTED_TAG in tags:
        return None
    age = age_seconds(due, now)
    if age <= max_age:
        return None
    return (f"ignored by the agent: this {command} request was {age:.1f}s old when the agent saw it; "
            f"{command} requests older than {max_age:g}s are ignored")
