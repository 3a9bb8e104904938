"""Which state store a root uses: PostgreSQL when the state url names one, else SQLite under the root.

Apart from ``state.py`` (the contract and SQLite) and ``state_pg.py`` (PostgreSQL, built on that contract), so
that neither imports the other's importer.
"""

from __future__ import annotations

from pinpoint_agent.errors import ConfigError
from pinpoint_agent.root import Root
from pinpoint_agent.state import SqliteState, StateStore, state_url


def open_state(root: Root, url: str = "") -> StateStore:
    """The root's state store: PostgreSQL when ``state_url(url)`` names one, else SQLite under the root."""
    url = state_url(url)
    if not url:
        return SqliteState(root.path / "state" / "state.db")
    scheme = url.split(":", 1)[0].lower()
    if scheme not in ("postgresql", "postgres"):
        raise ConfigError(f"state_url must be a postgresql:// URL (or empty for SQLite), not {scheme}://…")
    from pinpoint_agent.state_pg import PostgresState

    return PostgresState(url)
