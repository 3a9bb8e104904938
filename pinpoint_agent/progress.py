"""A tiny in-process fan-out of session progress, for displays (the CLI's progress bars)."""

from __future__ import annotations

from collections.abc import Callable

from pinpoint_agent.sessions import SessionInfo

_listeners: list[Callable[[SessionInfo], None]] = []


def subscribe(listener: Callable[[SessionInfo], None]) -> Callable[[], None]:
    _listeners.append(listener)
    return lambda: _listeners.remove(listener)


def notify(session: SessionInfo) -> None:
    for listener in list(_listeners):
        listener(session)
