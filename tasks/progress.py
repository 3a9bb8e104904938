"""Progress of an integration as a Prefect progress artifact, updated at most every few seconds."""

from __future__ import annotations

import re
import threading
from typing import Any
from uuid import UUID

from prefect.artifacts import create_progress_artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import ArtifactUpdate

from pinpoint_agent.sessions import SessionManager

UPDATE_EVERY = 2.0


def artifact_key(text: str) -> str:
    """Artifact keys allow lower-case letters, digits and dashes."""
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")


class ProgressArtifact:
    """Created in the task's thread (so it links to the task run); kept current by a thread of its own.

    ``changed`` only wakes that thread: the callbacks that report progress never wait for the Prefect API
    (an update is an HTTP round trip, and Prefect's helper also builds a new client, SSL context included,
    for each one: ~50 ms of CPU). The thread sends at most one update every ``UPDATE_EVERY`` seconds over
    one client, and a last one at ``close``."""

    def __init__(self, display_key: str, manager: SessionManager) -> None:
        self.key = display_key
        self.manager = manager
        self._changed = threading.Event()
        self._closing = threading.Event()
        self._id: UUID | None = None
        try:
            self._id = create_progress_artifact(
                progress=0.0, key=artifact_key(f"progress-{display_key}"),
                description=f"Export progress of {display_key}")  # type: ignore[assignment]
        except Exception:  # noqa: BLE001 (progress display must never fail an export)
            return
        self._thread = threading.Thread(target=self._run, name=f"progress-{display_key}", daemon=True)
        self._thread.start()

    def changed(self) -> None:
        self._changed.set()

    def close(self, timeout: float = 10.0) -> None:
        """Sends the last state and stops the thread."""
        if self._id is not None:
            self._closing.set()
            self._changed.set()
            self._thread.join(timeout)

    def _run(self) -> None:
        assert self._id is not None
        try:
            self._loop(self._id)
        except Exception:  # noqa: BLE001 (no client: the export goes on without progress updates)
            return

    def _loop(self, artifact_id: UUID) -> None:
        with get_client(sync_client=True) as client:
            while True:
                self._changed.wait()
                self._changed.clear()
                last = self._closing.is_set()
                try:
                    client.update_artifact(artifact_id, ArtifactUpdate(data=percent(self.manager),
                                                                    description=describe(self.manager)))
                except Exception:  # noqa: BLE001 (progress display must never fail an export)
                    pass
                if last:
                    return
                self._closing.wait(UPDATE_EVERY)  # at most one update per interval; close() ends the wait


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
