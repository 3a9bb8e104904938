"""The agent's transactional state: last processed tokens, dedup hashcodes and git checkpoints, in one
SQLite database under ``<root>/state/``.

Nothing here advances on its own. A session's token, the dedup hashcodes of what it wrote and a git
checkpoint are first *staged* under the export id; ``commit_session`` (no backend) or ``commit_export``
(after a successful upload) makes them current in one transaction. A crash before that leaves the old
state, so the next run exports the same data again: duplicates are possible, loss is not.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from array import array
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from pinpoint_agent.errors import StateError

if TYPE_CHECKING:
    from pinpoint_agent.root import Root

SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    key TEXT PRIMARY KEY, token TEXT NOT NULL, updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE IF NOT EXISTS dedup_models (
    id INTEGER PRIMARY KEY, scope TEXT NOT NULL, model TEXT NOT NULL, UNIQUE (scope, model));
CREATE TABLE IF NOT EXISTS dedup (
    model_id INTEGER NOT NULL, key INTEGER NOT NULL, hash INTEGER NOT NULL,
    PRIMARY KEY (model_id, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dedup_log (
    id INTEGER PRIMARY KEY, model_id INTEGER NOT NULL, pairs BLOB NOT NULL);  -- committed, not yet in dedup
CREATE INDEX IF NOT EXISTS dedup_log_model ON dedup_log (model_id, id);
CREATE TABLE IF NOT EXISTS staged_hashes (
    export_id TEXT NOT NULL, session TEXT NOT NULL, scope TEXT NOT NULL, model TEXT NOT NULL,
    pairs BLOB NOT NULL);  -- one row per batch: int64 key, hash, key, hash… (array 'q', native order)
CREATE INDEX IF NOT EXISTS staged_hashes_session ON staged_hashes (export_id, session);
CREATE TABLE IF NOT EXISTS staged_tokens (
    export_id TEXT NOT NULL, session TEXT NOT NULL, key TEXT NOT NULL, token TEXT NOT NULL,
    done INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS checkpoints (key TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS staged_checkpoints (
    export_id TEXT NOT NULL, session TEXT NOT NULL, key TEXT NOT NULL, data TEXT NOT NULL,
    done INTEGER NOT NULL DEFAULT 0);
"""

_CHUNK = 500
MERGE_PAIRS = 1 << 18  # the dedup log merges into the table this many (key, hash) pairs at a time
COMMIT_GROUP = 64  # queued session commits run together in one transaction, at most this many
_NO_LOCK = nullcontext()


class StateStore:
    """Thread-safe; one connection guarded by a lock (every operation is short)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = self._connect()
            self._db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"cannot open the state store {path}: {exc}") from exc
        self._lock = threading.RLock()
        # Session commits can run on a thread of their own (``commit_session_async``) so that writing a
        # big session's hashcodes does not stall the integration; its connection writes, ours reads (WAL).
        self._commits: queue.Queue[Callable[[sqlite3.Connection], None] | None] | None = None
        self._committer: threading.Thread | None = None
        self._commit_error: BaseException | None = None

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=60)
        db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a power cut may lose the last commits (the export then repeats), never reorder
        # them; output files are fsynced before their token is committed.
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    @classmethod
    def open_root(cls, root: Root) -> StateStore:
        return cls(root.path / "state" / "state.db")

    def close(self) -> None:
        self.wait_commits(raise_error=False)
        if self._commits is not None and self._committer is not None:
            self._commits.put(None)
            self._committer.join()
            self._commits = self._committer = None
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self, db: sqlite3.Connection | None = None) -> Iterator[sqlite3.Connection]:
        """A transaction; inside one already open on ``db`` (the committer's group), a savepoint."""
        conn = db or self._db
        with self._lock if db is None else _NO_LOCK:
            nested = conn.in_transaction
            try:
                conn.execute("SAVEPOINT tx" if nested else "BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    if nested:
                        conn.execute("ROLLBACK TO tx")
                        conn.execute("RELEASE tx")
                    else:
                        conn.execute("ROLLBACK")
                    raise
                conn.execute("RELEASE tx" if nested else "COMMIT")
            except sqlite3.Error as exc:
                raise StateError(f"state store {self.path}: {exc}") from exc

    def _query(self, sql: str, args: Sequence[object] = ()) -> list[tuple[object, ...]]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise StateError(f"state store {self.path}: {exc}") from exc

    # -- tokens -------------------------------------------------------------------------------------
    def token(self, key: str) -> str:
        rows = self._query("SELECT token FROM tokens WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else ""

    def has_tokens(self, prefix: str) -> bool:
        return bool(self._query("SELECT 1 FROM tokens WHERE key >= ? AND key < ? LIMIT 1",
                                (prefix, prefix + "\U0010ffff")))

    def tokens(self, prefix: str = "") -> dict[str, str]:
        rows = self._query("SELECT key, token FROM tokens WHERE key >= ? AND key < ? ORDER BY key",
                           (prefix, prefix + "\U0010ffff"))
        return {str(k): str(t) for k, t in rows}

    def forget(self, state_key: str) -> int:
        """Drops an integration's tokens, dedup hashcodes and git checkpoints (historical next time)."""
        prefix, end = state_key + "/", state_key + "/\U0010ffff"
        with self._tx() as db:
            n = db.execute("DELETE FROM tokens WHERE key >= ? AND key < ?", (prefix, end)).rowcount
            for table in ("dedup", "dedup_log"):
                db.execute(f"DELETE FROM {table} WHERE model_id IN (SELECT id FROM dedup_models WHERE scope = ?)",
                           (state_key,))
            n += db.execute("DELETE FROM checkpoints WHERE key >= ? AND key < ?", (prefix, end)).rowcount
        return int(n)

    # -- dedup --------------------------------------------------------------------------------------
    def _model_id(self, scope: str, model: str) -> int | None:
        """The small integer that stands for (integration, model) in the dedup table."""
        rows = self._query("SELECT id FROM dedup_models WHERE scope = ? AND model = ?", (scope, model))
        return int(rows[0][0]) if rows else None  # type: ignore[call-overload]

    def known_hashes(self, scope: str, model: str, keys: Sequence[int], *, merge: bool = True) -> dict[int, int]:
        """Current hashcodes of the given object keys (missing keys are new objects). ``merge=False`` skips
        merging the commit log first (an export merges once per model, see ``merge_log``)."""
        mid = self._model_id(scope, model)
        found: dict[int, int] = {}
        if mid is None:
            return found
        if merge:
            self._merge_log(mid)
        for i in range(0, len(keys), _CHUNK):
            chunk = keys[i:i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._query(f"SELECT key, hash FROM dedup WHERE model_id = ? AND key IN ({marks})", (mid, *chunk))
            found.update((int(k), int(h)) for k, h in rows)  # type: ignore[call-overload]
        return found

    def merge_log(self, scope: str, model: str) -> None:
        """Makes the model's committed hashcodes current for ``known_hashes(..., merge=False)``."""
        mid = self._model_id(scope, model)
        if mid is not None:
            self._merge_log(mid)

    def has_hashes(self, scope: str, model: str) -> bool:
        """Whether any hashcode is stored for the model (if not, a whole batch is new: no look-ups)."""
        mid = self._model_id(scope, model)
        return mid is not None and any(self._query(f"SELECT 1 FROM {table} WHERE model_id = ? LIMIT 1", (mid,))
                                       for table in ("dedup_log", "dedup"))

    def _merge_log(self, model_id: int) -> None:
        """Moves the model's committed hashcodes from the log into the table, later commits winning.

        A session's commit only appends its packed pairs to ``dedup_log``: inserting them into the table
        then and there cost more than anything else in a big export (random keys land on pages spread over
        the whole B-tree: 1M objects, ~6 s of a core). The table is needed only for look-ups, which come
        when a later export compares; they merge first, a few hundred thousand sorted keys at a time."""
        rows = self._query("SELECT id, length(pairs) FROM dedup_log WHERE model_id = ? ORDER BY id", (model_id,))
        # One transaction per chunk, so the committer never waits long for the write lock: a chunk's pairs go
        # into the table and its log rows go away together.
        chunks: list[list[int]] = []
        size = 0
        for log_id, length in rows:
            if not chunks or size >= MERGE_PAIRS:
                chunks.append([])
                size = 0
            chunks[-1].append(int(log_id))  # type: ignore[call-overload]
            size += int(length) // 16  # type: ignore[call-overload]
        for chunk in chunks:
            with self._tx() as db:
                latest: dict[int, int] = {}
                for log_id in chunk:
                    row = db.execute("SELECT pairs FROM dedup_log WHERE id = ?", (log_id,)).fetchone()
                    if row is None:
                        continue  # a merge running beside this one took it (chunks still apply in id order)
                    pairs = array("q")
                    pairs.frombytes(row[0])
                    latest.update(zip(pairs[::2], pairs[1::2], strict=True))
                # Sorted keys insert into the B-tree in order: several times faster than as they come.
                db.executemany("INSERT OR REPLACE INTO dedup (model_id, key, hash) VALUES (?,?,?)",
                               ((model_id, k, latest[k]) for k in sorted(latest)))
                db.executemany("DELETE FROM dedup_log WHERE id = ?", ((log_id,) for log_id in chunk))

    # -- sessions -----------------------------------------------------------------------------------
    def stage_done(self, export_id: str, session: str, key: str, token: str, *, scope: str = "", model: str = "",
                   pairs: array[int] | None = None, db: sqlite3.Connection | None = None) -> None:
        """Marks a session done: its token and the (key, hash) pairs of what it wrote (packed, one row) wait
        for ``commit_session``/``commit_export``."""
        if pairs is not None and len(pairs) % 2:
            raise StateError(f"session {session}: {len(pairs)} dedup values cannot be (key, hash) pairs")
        with self._tx(db) as db:
            db.execute("INSERT INTO staged_tokens (export_id, session, key, token, done) VALUES (?,?,?,?,1)",
                       (export_id, session, key, token))
            if pairs is not None and len(pairs):
                db.execute("INSERT INTO staged_hashes (export_id, session, scope, model, pairs) VALUES (?,?,?,?,?)",
                           (export_id, session, scope, model, pairs.tobytes()))

    def discard_session(self, export_id: str, session: str) -> None:
        """Rollback: what the session staged is dropped; the old token stays."""
        with self._tx() as db:
            for table in ("staged_hashes", "staged_tokens", "staged_checkpoints"):
                db.execute(f"DELETE FROM {table} WHERE export_id = ? AND session = ?", (export_id, session))

    def commit_session(self, export_id: str, session: str) -> None:
        self.wait_commits()
        self._commit(export_id, session)

    def commit_session_async(self, export_id: str, session: str) -> None:
        """Commits on the committer thread, in order; ``wait_commits`` waits for all queued commits."""
        self._submit(lambda db: self._commit(export_id, session, db=db))

    def done_async(self, export_id: str, session: str, key: str, token: str, *, scope: str, model: str,
                   pairs: array[int], commit: bool, prepare: Callable[[], object] | None = None) -> None:
        """``stage_done`` (and, with ``commit``, the commit) on the committer thread, so the caller never
        waits for SQLite's write lock; a crash before it runs leaves the session not done (re-exported).
        ``prepare`` runs first, on that thread (completing the session's output file): if it fails, nothing
        of the session is staged and the error is raised by ``wait_commits``."""
        def job(db: sqlite3.Connection) -> None:
            if prepare is not None:
                prepare()
            self.stage_done(export_id, session, key, token, scope=scope, model=model, pairs=pairs, db=db)
            if commit:
                self._commit(export_id, session, db=db)

        self._submit(job)

    def _submit(self, job: Callable[[sqlite3.Connection], None]) -> None:
        if self._commits is None:
            self._commits = queue.Queue()
            self._committer = threading.Thread(target=self._run_commits, name="state-committer", daemon=True)
            self._committer.start()
        self._commits.put(job)

    def _run_commits(self) -> None:
        """Runs queued commits in order. Those queued meanwhile run together in one transaction (each in
        a savepoint of its own): one fsync of the WAL for many small sessions."""
        commits = self._commits
        assert commits is not None
        db = self._connect()
        stop = False
        try:
            while not stop:
                group = [commits.get()]
                while group[-1] is not None and len(group) < COMMIT_GROUP:
                    try:
                        group.append(commits.get_nowait())
                    except queue.Empty:
                        break
                if group[-1] is None:
                    stop = True
                jobs = [job for job in group if job is not None]
                try:
                    if jobs and self._commit_error is None:
                        self._run_group(db, jobs)
                except BaseException as exc:  # noqa: BLE001 (kept; wait_commits raises it in the caller)
                    self._commit_error = exc
                finally:
                    for _ in group:
                        commits.task_done()
        finally:
            db.close()

    def _run_group(self, db: sqlite3.Connection, jobs: list[Callable[[sqlite3.Connection], None]]) -> None:
        """Each job in a savepoint; after a failed one the rest are skipped; what succeeded is committed."""
        error: BaseException | None = None
        try:
            db.execute("BEGIN IMMEDIATE")
            for job in jobs:
                try:
                    job(db)
                except BaseException as exc:  # noqa: BLE001 (rolled back to its savepoint by _tx)
                    error = exc
                    break
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise StateError(f"state store {self.path}: {exc}") from exc
        if error is not None:
            raise error

    def wait_commits(self, *, raise_error: bool = True) -> None:
        """Returns when every queued session commit is done; raises the first one that failed."""
        if self._commits is not None:
            self._commits.join()
        if raise_error and self._commit_error is not None:
            raise StateError(f"committing a session failed: {self._commit_error}") from self._commit_error

    def commit_export(self, export_id: str) -> None:
        """Makes everything the export's done sessions staged current (after an upload succeeded)."""
        self.wait_commits()
        self._commit(export_id, None)

    def _commit(self, export_id: str, session: str | None, db: sqlite3.Connection | None = None) -> None:
        with self._tx(db) as db:
            if session is None:
                rows = db.execute("SELECT session FROM staged_tokens WHERE export_id = ? AND done = 1 UNION "
                                  "SELECT session FROM staged_checkpoints WHERE export_id = ? AND done = 1",
                                  (export_id, export_id)).fetchall()
                sessions = [str(r[0]) for r in rows]
            else:
                sessions = [session]
            for sid in sessions:
                args = (export_id, sid)
                for scope, model in db.execute("SELECT DISTINCT scope, model FROM staged_hashes WHERE "
                                               "export_id = ? AND session = ?", args).fetchall():
                    db.execute("INSERT OR IGNORE INTO dedup_models (scope, model) VALUES (?, ?)", (scope, model))
                    db.execute("INSERT INTO dedup_log (model_id, pairs) SELECT (SELECT id FROM dedup_models WHERE "
                               "scope = ? AND model = ?), pairs FROM staged_hashes WHERE export_id = ? AND "
                               "session = ? AND scope = ? AND model = ? ORDER BY rowid",
                               (scope, model, *args, scope, model))
                db.execute("INSERT OR REPLACE INTO tokens (key, token) SELECT key, token FROM staged_tokens "
                           "WHERE export_id = ? AND session = ? AND done = 1 ORDER BY rowid", args)
                db.execute("INSERT OR REPLACE INTO checkpoints (key, data) SELECT key, data FROM staged_checkpoints "
                           "WHERE export_id = ? AND session = ? AND done = 1 ORDER BY rowid", args)
                for table in ("staged_hashes", "staged_tokens", "staged_checkpoints"):
                    db.execute(f"DELETE FROM {table} WHERE export_id = ? AND session = ?", args)

    def discard_export(self, export_id: str | None = None) -> None:
        """Drops what an export (or, with ``None``, every earlier export) staged and never committed."""
        self.wait_commits(raise_error=False)
        with self._tx() as db:
            for table in ("staged_hashes", "staged_tokens", "staged_checkpoints"):
                if export_id is None:
                    db.execute(f"DELETE FROM {table}")
                else:
                    db.execute(f"DELETE FROM {table} WHERE export_id = ?", (export_id,))

    # -- git checkpoints ----------------------------------------------------------------------------
    def checkpoint(self, key: str) -> str | None:
        rows = self._query("SELECT data FROM checkpoints WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def stage_checkpoint(self, export_id: str, session: str, key: str, data: str) -> None:
        """Staged like a token: current after the session (and its objects) are committed."""
        with self._tx() as db:
            db.execute("INSERT INTO staged_checkpoints (export_id, session, key, data, done) VALUES (?,?,?,?,1)",
                       (export_id, session, key, data))
