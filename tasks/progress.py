"""Progress of an integration as a Prefect progress artifact, updated at most every few seconds."""

from __future__ import annotations

import re
import threading
import time
from typing import Any
from uuid import UUID

from prefect.artifacts import create_progress_artifact, update_progress_artifact

from pinpoint_agent.sessions import SessionInfo, SessionManager

UPDATE_EVERY = 2.0


def artifact_key(text: str) -> str:
    """Artifact keys allow lower-case letters, digits and dashes."""
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")


class ProgressArtifact:
    """Created in the task's thread (so it links to the task run); updated from callback threads."""

    def __init__(self, display_key: str) -> None:
        self.key = display_key
        self._lock = threading.Lock()
        self._last = 0.0
        self._id: UUID | None = None
        try:
            self._id = create_progress_artifact(
                progress=0.0, key=artifact_key(f"progress-{display_key}"),
                description=f"Export progress of {display_key}")  # type: ignore[assignment]
        except Exception:  # noqa: BLE001 (progress display must never fail an export)
            self._id = None

    def update(self, manager: SessionManager, session: SessionInfo, *, force: bool = False) -> None:
        if self._id is None:
            return
        now = time.monotonic()
        with self._lock:
            if not force and now - self._last < UPDATE_EVERY:
                return
            self._last = now
        try:
            update_progress_artifact(artifact_id=self._id, progress=percent(manager),
                                     description=describe(manager))
        except Exception:  # noqa: BLE001
            pass


def percent(manager: SessionManager) -> float:
    """Share of sessions done, with open sessions counted by their own progress."""
    sessions = manager.sessions()
    if not sessions:
        return 0.0
    total = 0.0
    for s in sessions:
        total += 1.0 if s.closed else (min(s.current / s.total, 1.0) if s.total else 0.0)
    return round(100.0 * total / len(sessions), 1)


def describe(manager: SessionManager) -> str:
    objects = manager.objects_by_model()
    parts = ", ".join(f"{m}: {n}" for m, n in objects.items()) or "no objects yet"
    return f"{manager.entry.display_key}: {parts}"


def summary_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for i in result["integrations"]:
        mode = "incremental" if i["incremental"] else "historical"
        objects = i.get("objects") or {"(none)": 0}
        for model, n in objects.items():
            rows.append({"integration": f"{i['name']}@{i['id']}", "model": model, "objects": n, "mode": mode,
                         "error": i["error"] or ""})
        for p in i["projects"]:
            if p.get("error") or p.get("git_error"):
                rows.append({"integration": f"{i['name']}@{i['id']}", "model": f"project {p['name']}",
                             "objects": 0, "mode": mode, "error": p.get("error") or p.get("git_error")})
    return rows
