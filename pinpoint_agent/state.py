"""The agent's transactional state: last processed tokens, dedup hashcodes and git checkpoints.

Two stores keep it, chosen by one setting (``state_url``; ``pinpoint_agent.stores.open_state``): SQLite under
``<root>/state/`` (the embedded default, this module) and PostgreSQL shared by several machines
(``pinpoint_agent.state_pg``). Both keep the same contract:

Nothing here advances on its own. A session's token, the dedup hashcodes of what it wrote and a git
checkpoint are first *staged* under the export id; ``commit_session`` (no backend) or ``commit_export``
(after a successful upload) makes them current in one transaction. A crash before that leaves the old
state, so the next run exports the same data again: duplicates are possible, loss is not.

Exclusion: ``claim(state_key)`` takes an integration (``name@TYPE``) for this store's export until ``release``
or ``close``: a file lock under the root for SQLite (one machine), a PostgreSQL advisory lock for the shared
store (every machine). A run that finds the integration taken gets ``IntegrationBusy`` (one line). A claim that
is lost while its export runs (PostgreSQL: the connection holding the lock ended) is noticed at the next commit:
what the integration staged is dropped instead of committed, and ``lost_claim`` says why (one line).

Each store's schema carries a version and migrates in place when it opens (``MIGRATIONS``).
"""

from __future__ import annotations

import fcntl
import os
import queue
import sqlite3
import threading
from abc import ABC, abstractmethod
from array import array
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pinpoint_agent.errors import ConfigError, StateError

if TYPE_CHECKING:
    pass

STATE_URL_ENV = "PINPOINT_STATE_URL"

# Today's schema is version 1 (a database made before versions existed has user_version 0 and these tables:
# the same statements, all IF NOT EXISTS, bring it to version 1 without touching its rows).
MIGRATIONS: list[str] = ["""
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
"""]
SCHEMA_VERSION = len(MIGRATIONS)

_CHUNK = 500
MERGE_PAIRS = 1 << 18  # the dedup log merges into the table this many (key, hash) pairs at a time
COMMIT_GROUP = 64  # queued session commits run together in one transaction, at most this many
_NO_LOCK = nullcontext()


class IntegrationBusy(ConfigError):
    """Another export holds the integration (on this root, or anywhere when the state is shared)."""


def state_url(configured: str = "") -> str:
    """The state setting: the agent config's ``state_url``, else ``$PINPOINT_STATE_URL``; empty means SQLite."""
    return configured or os.environ.get(STATE_URL_ENV, "")


def redact_url(url: str) -> str:
    """``url`` without its password (for messages): ``postgresql://user@host:5432/db``."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<state url>"
    user = f"{parts.username}@" if parts.username else ""
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"


class StateStore(ABC):
    """The state contract; thread-safe. Session commits can run on a committer thread of their own
    (``commit_session_async``/``done_async``) so that writing a big session's hashcodes does not stall the
    integration: that thread has its own connection and runs queued commits together in one transaction."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._commits: queue.Queue[Callable[[Any], None] | None] | None = None
        self._committer: threading.Thread | None = None
        self._commit_error: BaseException | None = None
        self._lost: dict[str, str] = {}  # integration (name@TYPE) -> why its claim is gone

    def close(self) -> None:
        self.wait_commits(raise_error=False)
        if self._commits is not None and self._committer is not None:
            self._commits.put(None)
            self._committer.join()
            self._commits = self._committer = None
        self._release_all()
        with self._lock:
            self._close()

    # -- what each store implements -----------------------------------------------------------------
    @abstractmethod
    def _close(self) -> None: ...

    @abstractmethod
    def _connect(self) -> Any:
        """A new connection (the committer thread's)."""

    @abstractmethod
    def _disconnect(self, db: Any) -> None: ...

    @abstractmethod
    def _group(self, db: Any) -> AbstractContextManager[None]:
        """The committer's transaction around a group of jobs (each job's ``_tx(db)`` is a savepoint in it)."""

    @abstractmethod
    def _tx(self, db: Any = None) -> AbstractContextManager[Any]: ...

    @abstractmethod
    def token(self, key: str) -> str: ...

    @abstractmethod
    def has_tokens(self, prefix: str) -> bool: ...

    @abstractmethod
    def tokens(self, prefix: str = "") -> dict[str, str]: ...

    @abstractmethod
    def forget(self, state_key: str) -> int:
        """Drops an integration's tokens, dedup hashcodes and git checkpoints (historical next time)."""

    @abstractmethod
    def _model_id(self, scope: str, model: str) -> int | None:
        """The small integer that stands for (integration, model) in the dedup table."""

    @abstractmethod
    def _lookup(self, model_id: int, keys: Sequence[int]) -> dict[int, int]: ...

    @abstractmethod
    def has_hashes(self, scope: str, model: str) -> bool:
        """Whether any hashcode is stored for the model (if not, a whole batch is new: no look-ups)."""

    @abstractmethod
    def _log_sizes(self, model_id: int) -> list[tuple[int, int]]:
        """(log id, pairs) of the model's dedup log, in commit order."""

    @abstractmethod
    def _merge_chunk(self, model_id: int, log_ids: list[int]) -> None:
        """One transaction: the given log rows' pairs into the table (later rows winning), the rows gone."""

    @abstractmethod
    def stage_done(self, export_id: str, session: str, key: str, token: str, *, scope: str = "", model: str = "",
                   pairs: array[int] | None = None, db: Any = None) -> None:
        """Marks a session done: its token and the (key, hash) pairs of what it wrote (packed, one row) wait
        for ``commit_session``/``commit_export``."""

    @abstractmethod
    def discard_session(self, export_id: str, session: str) -> None:
        """Rollback: what the session staged is dropped; the old token stays."""

    @abstractmethod
    def _commit(self, export_id: str, session: str | None, db: Any = None) -> None: ...

    @abstractmethod
    def discard_export(self, export_id: str | None = None) -> None:
        """Drops what an export (or, with ``None``, every earlier export no longer running) staged and
        never committed."""

    @abstractmethod
    def checkpoint(self, key: str) -> str | None: ...

    @abstractmethod
    def stage_checkpoint(self, export_id: str, session: str, key: str, data: str) -> None:
        """Staged like a token: current after the session (and its objects) are committed."""

    @abstractmethod
    def claim(self, state_key: str) -> None:
        """Takes the integration ``name@TYPE`` for this store's user until ``release``/``close``; raises
        ``IntegrationBusy`` when another export holds it. Claiming one already held here is a no-op."""

    @abstractmethod
    def release(self, state_key: str) -> None: ...

    @abstractmethod
    def _release_all(self) -> None: ...

    def lost_claim(self, state_key: str) -> str:
        """Why the integration's claim was lost while this store held it ("" if it was not): nothing it staged
        since then was committed (one line, for its result)."""
        return self._lost.get(state_key, "")

    @contextmanager
    def exclusive(self, state_key: str) -> Iterator[None]:
        """``claim`` for the block (what the flows call around everything one integration's export does)."""
        self.claim(state_key)
        try:
            yield
        finally:
            self.release(state_key)

    # -- dedup --------------------------------------------------------------------------------------
    def known_hashes(self, scope: str, model: str, keys: Sequence[int], *, merge: bool = True) -> dict[int, int]:
        """Current hashcodes of the given object keys (missing keys are new objects). ``merge=False`` skips
        merging the commit log first (an export merges once per model, see ``merge_log``)."""
        mid = self._model_id(scope, model)
        if mid is None:
            return {}
        if merge:
            self._merge_log(mid)
        return self._lookup(mid, keys)

    def merge_log(self, scope: str, model: str) -> None:
        """Makes the model's committed hashcodes current for ``known_hashes(..., merge=False)``."""
        mid = self._model_id(scope, model)
        if mid is not None:
            self._merge_log(mid)

    def _merge_log(self, model_id: int) -> None:
        """Moves the model's committed hashcodes from the log into the table, later commits winning.

        A session's commit only appends its packed pairs to ``dedup_log``: inserting them into the table
        then and there cost more than anything else in a big export (random keys land on pages spread over
        the whole B-tree: 1M objects, ~6 s of a core). The table is needed only for look-ups, which come
        when a later export compares; they merge first, a few hundred thousand sorted keys at a time."""
        # One transaction per chunk, so the committer never waits long for the write lock: a chunk's pairs go
        # into the table and its log rows go away together.
        chunks: list[list[int]] = []
        size = 0
        for log_id, pairs in self._log_sizes(model_id):
            if not chunks or size >= MERGE_PAIRS:
                chunks.append([])
                size = 0
            chunks[-1].append(log_id)
            size += pairs
        for chunk in chunks:
            self._merge_chunk(model_id, chunk)

    # -- sessions -----------------------------------------------------------------------------------
    def commit_session(self, export_id: str, session: str) -> None:
        self.wait_commits()
        self._commit(export_id, session)

    def commit_session_async(self, export_id: str, session: str) -> None:
        """Commits on the committer thread, in order; ``wait_commits`` waits for all queued commits."""
        self._submit(lambda db: self._commit(export_id, session, db=db))

    def done_async(self, export_id: str, session: str, key: str, token: str, *, scope: str, model: str,
                   pairs: array[int], commit: bool, prepare: Callable[[], object] | None = None) -> None:
        """``stage_done`` (and, with ``commit``, the commit) on the committer thread, so the caller never
        waits for the store's write lock; a crash before it runs leaves the session not done (re-exported).
        ``prepare`` runs first, on that thread (completing the session's output file): if it fails, nothing
        of the session is staged and the error is raised by ``wait_commits``."""
        def job(db: Any) -> None:
            if prepare is not None:
                prepare()
            self.stage_done(export_id, session, key, token, scope=scope, model=model, pairs=pairs, db=db)
            if commit:
                self._commit(export_id, session, db=db)

        self._submit(job)

    def _submit(self, job: Callable[[Any], None]) -> None:
        if self._commits is None:
            self._commits = queue.Queue()
            self._committer = threading.Thread(target=self._run_commits, name="state-committer", daemon=True)
            self._committer.start()
        self._commits.put(job)

    def _run_commits(self) -> None:
        """Runs queued commits in order. Those queued meanwhile run together in one transaction (each in
        a savepoint of its own): one flush of the log for many small sessions."""
        commits = self._commits
        assert commits is not None
        db = None
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
                        if db is None:
                            db = self._connect()
                        self._run_group(db, jobs)
                except BaseException as exc:  # noqa: BLE001 (kept; wait_commits raises it in the caller)
                    self._commit_error = exc
                finally:
                    for _ in group:
                        commits.task_done()
        finally:
            if db is not None:
                self._disconnect(db)

    def _run_group(self, db: Any, jobs: list[Callable[[Any], None]]) -> None:
        """Each job in a savepoint; after a failed one the rest are skipped; what succeeded is committed."""
        error: BaseException | None = None
        with self._group(db):
            for job in jobs:
                try:
                    job(db)
                except BaseException as exc:  # noqa: BLE001 (rolled back to its savepoint by _tx)
                    error = exc
                    break
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


class SqliteState(StateStore):
    """The embedded default: one SQLite database; one connection guarded by a lock (every operation is
    short), and the committer's own (WAL: it writes while ours reads)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = self._connect()
            self._migrate()
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"cannot open the state store {path}: {exc}") from exc
        self._claims: dict[str, IO[str]] = {}

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=60)
        db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a power cut may lose the last commits (the export then repeats), never reorder
        # them; output files are fsynced before their token is committed.
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    def _migrate(self) -> None:
        """Brings the schema to ``SCHEMA_VERSION`` (``PRAGMA user_version``), each step in one transaction
        with its version, so that a crash leaves the database at one version or the next."""
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StateError(f"the state store {self.path} has schema version {version}, newer than this agent's "
                             f"{SCHEMA_VERSION}: upgrade the agent")
        while version < SCHEMA_VERSION:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                current = int(self._db.execute("PRAGMA user_version").fetchone()[0])
                if current == version:  # else another process migrated meanwhile
                    for statement in MIGRATIONS[version].split(";"):
                        if statement.strip():
                            self._db.execute(statement)
                    self._db.execute(f"PRAGMA user_version = {version + 1}")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            version = int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def schema_version(self) -> int:
        with self._lock:
            return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _close(self) -> None:
        self._db.close()

    def _disconnect(self, db: sqlite3.Connection) -> None:
        db.close()

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

    @contextmanager
    def _group(self, db: sqlite3.Connection) -> Iterator[None]:
        try:
            db.execute("BEGIN IMMEDIATE")
            yield
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise StateError(f"state store {self.path}: {exc}") from exc

    def _query(self, sql: str, args: Sequence[object] = ()) -> list[tuple[object, ...]]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise StateError(f"state store {self.path}: {exc}") from exc

    # -- exclusion ----------------------------------------------------------------------------------
    def claim(self, state_key: str) -> None:
        """A file lock per integration beside the database (the root's export lock stays too)."""
        with self._lock:
            if state_key in self._claims:
                return
            path = self.path.parent / f".export-{state_key.replace('/', '_')}.lock"
            file = open(path, "a+")  # noqa: SIM115 (held for the claim's life)
            try:
                fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                file.seek(0)
                holder = file.read().strip() or "another process"
                file.close()
                raise IntegrationBusy(f"integration {state_key} is being exported by another run on this root "
                                      f"({holder}); try again when it ends") from None
            file.truncate(0)
            file.write(f"pid {os.getpid()}")
            file.flush()
            self._claims[state_key] = file

    def release(self, state_key: str) -> None:
        with self._lock:
            file = self._claims.pop(state_key, None)
            if file is not None:
                fcntl.flock(file.fileno(), fcntl.LOCK_UN)
                file.close()

    def _release_all(self) -> None:
        for key in list(self._claims):
            self.release(key)

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
        rows = self._query("SELECT id FROM dedup_models WHERE scope = ? AND model = ?", (scope, model))
        return int(rows[0][0]) if rows else None  # type: ignore[call-overload]

    def _lookup(self, model_id: int, keys: Sequence[int]) -> dict[int, int]:
        found: dict[int, int] = {}
        for i in range(0, len(keys), _CHUNK):
            chunk = keys[i:i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._query(f"SELECT key, hash FROM dedup WHERE model_id = ? AND key IN ({marks})",
                               (model_id, *chunk))
            found.update((int(k), int(h)) for k, h in rows)  # type: ignore[call-overload]
        return found

    def has_hashes(self, scope: str, model: str) -> bool:
        mid = self._model_id(scope, model)
        return mid is not None and any(self._query(f"SELECT 1 FROM {table} WHERE model_id = ? LIMIT 1", (mid,))
                                       for table in ("dedup_log", "dedup"))

    def _log_sizes(self, model_id: int) -> list[tuple[int, int]]:
        rows = self._query("SELECT id, length(pairs) FROM dedup_log WHERE model_id = ? ORDER BY id", (model_id,))
        return [(int(i), int(n) // 16) for i, n in rows]  # type: ignore[call-overload]

    def _merge_chunk(self, model_id: int, log_ids: list[int]) -> None:
        with self._tx() as db:
            latest: dict[int, int] = {}
            for log_id in log_ids:
                row = db.execute("SELECT pairs FROM dedup_log WHERE id = ?", (log_id,)).fetchone()
                if row is None:
                    continue  # a merge running beside this one took it (chunks still apply in id order)
                pairs = array("q")
                pairs.frombytes(row[0])
                latest.update(zip(pairs[::2], pairs[1::2], strict=True))
            # Sorted keys insert into the B-tree in order: several times faster than as they come.
            db.executemany("INSERT OR REPLACE INTO dedup (model_id, key, hash) VALUES (?,?,?)",
                           ((model_id, k, latest[k]) for k in sorted(latest)))
            db.executemany("DELETE FROM dedup_log WHERE id = ?", ((log_id,) for log_id in log_ids))

    # -- sessions -----------------------------------------------------------------------------------
    def stage_done(self, export_id: str, session: str, key: str, token: str, *, scope: str = "", model: str = "",
                   pairs: array[int] | None = None, db: sqlite3.Connection | None = None) -> None:
        if pairs is not None and len(pairs) % 2:
            raise StateError(f"session {session}: {len(pairs)} dedup values cannot be (key, hash) pairs")
        with self._tx(db) as db:
            db.execute("INSERT INTO staged_tokens (export_id, session, key, token, done) VALUES (?,?,?,?,1)",
                       (export_id, session, key, token))
            if pairs is not None and len(pairs):
                db.execute("INSERT INTO staged_hashes (export_id, session, scope, model, pairs) VALUES (?,?,?,?,?)",
                           (export_id, session, scope, model, pairs.tobytes()))

    def discard_session(self, export_id: str, session: str) -> None:
        with self._tx() as db:
            for table in ("staged_hashes", "staged_tokens", "staged_checkpoints"):
                db.execute(f"DELETE FROM {table} WHERE export_id = ? AND session = ?", (export_id, session))

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
        """With ``None``: everything staged (the database is the root's, and the root's export lock is held)."""
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
        with self._tx() as db:
            db.execute("INSERT INTO staged_checkpoints (export_id, session, key, data, done) VALUES (?,?,?,?,1)",
                       (export_id, session, key, data))
