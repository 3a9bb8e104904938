"""The CLI's live progress bars (Rich), one per integration, fed by session progress."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pinpoint_agent import progress
from pinpoint_agent.sessions import SessionInfo


@contextmanager
def progress_display(enabled: bool, console: Any = None) -> Iterator[None]:
    """Live bars on ``console`` (default: stderr) while the block runs; nothing when not ``enabled``."""
    if not enabled:
        yield
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bars: dict[str, Any] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[detail]}"),
                  TimeElapsedColumn(), transient=False, console=console or Console(stderr=True)) as ui:

        def on_progress(s: SessionInfo) -> None:
            integration = s.key.split("/", 1)[0]
            if integration not in bars:
                bars[integration] = ui.add_task(integration, total=None, detail="")
            detail = f"{s.name} {s.current}/{s.total}" if s.total else s.name
            ui.update(bars[integration], detail=detail,
                      total=s.total or None, completed=s.current if s.total else 0)

        unsubscribe = progress.subscribe(on_progress)
        try:
            yield
        finally:
            unsubscribe()
