"""The state in PostgreSQL (``state_url = postgresql://…``): what several machines share, so that an
integration exported by one continues incrementally on the next. The contract is ``pinpoint_agent.state``'s.

- Same tables as SQLite, plus an ``owner`` (the integration ``name@TYPE``) on staged rows, so that the rows a
  killed run staged can be dropped without touching those of exports running elsewhere.
- Exclusion is cluster-wide: ``claim`` takes a session-level advisory lock keyed by the integration on a
  connection of its own; PostgreSQL drops it when that connection ends (a process killed, a machine gone
  once TCP keepalives give up), so a crashed holder never blocks the next run.
- The other side of that: the lock connection can end while its holder lives on (a server restart, a network
  cut, ``pg_terminate_backend``), and another agent may then start the same integration. So every commit first
  asks PostgreSQL, in the commit's own transaction, whether the lock connection (its backend pid and start
  time) still holds each integration it commits for; the rows of one that lost its claim are dropped in that
  transaction instead (its output files stay: the next export redoes them). Left open: the lock ending
  between that check and the transaction's commit (milliseconds); the other agent then starts from tokens a
  moment older than the ones committed, which duplicates objects and loses none.
- Packed dedup pairs are stored little-endian whatever the machine (rows move between machines).
- Text keys use the "C" collation so that prefix ranges (``key >= p AND key < p || U+10FFFF``) are bytewise
  whatever the database's locale.
- The URL's password never appears in a message: errors name the URL without it.
"""

from __future__ import annotations

import os
import socket
import sys
from array import array
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import psycopg
import xxhash

from pinpoint_agent.errors import ConfigError, StateError
from pinpoint_agent.state import IntegrationBusy, StateStore, redact_url

# Version n is MIGRATIONS[:n] applied; each runs in one transaction with its version row, under a lock.
MIGRATIONS: list[str] = ["""
CREATE TABLE tokens (
    key TEXT COLLATE "C" PRIMARY KEY, token TEXT NOT NULL, updated_at TIMESTAMPTZ NOT NULL DEFAULT now());
CREATE TABLE dedup_models (
    id SERIAL PRIMARY KEY, scope TEXT NOT NULL, model TEXT NOT NULL, UNIQUE (scope, model));
CREATE TABLE dedup (
    model_id INTEGER NOT NULL, key BIGINT NOT NULL, hash BIGINT NOT NULL, PRIMARY KEY (model_id, key));
CREATE TABLE dedup_log (
    id BIGSERIAL PRIMARY KEY, model_id INTEGER NOT NULL, pairs BYTEA NOT NULL);
CREATE INDEX dedup_log_model ON dedup_log (model_id, id);
CREATE TABLE staged_hashes (
    id BIGSERIAL PRIMARY KEY, export_id TEXT NOT NULL, session TEXT NOT NULL, owner TEXT NOT NULL,
    scope TEXT NOT NULL, model TEXT NOT NULL, pairs BYTEA NOT NULL);
CREATE INDEX staged_hashes_session ON staged_hashes (export_id, session);
CREATE TABLE staged_tokens (
    id BIGSERIAL PRIMARY KEY, export_id TEXT NOT NULL, session TEXT NOT NULL, owner TEXT NOT NULL,
    key TEXT COLLATE "C" NOT NULL, token TEXT NOT NULL);
CREATE INDEX staged_tokens_session ON staged_tokens (export_id, session);
CREATE TABLE checkpoints (key TEXT COLLATE "C" PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE staged_checkpoints (
    id BIGSERIAL PRIMARY KEY, export_id TEXT NOT NULL, session TEXT NOT NULL, owner TEXT NOT NULL,
    key TEXT COLLATE "C" NOT NULL, data TEXT NOT NULL);
CREATE INDEX staged_checkpoints_session ON staged_checkpoints (export_id, session);
CREATE TABLE secrets (
    name TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TIMESTAMPTZ NOT NULL DEFAULT now());
"""]
SCHEMA_VERSION = len(MIGRATIONS)

_STAGED = ("staged_hashes", "staged_tokens", "staged_checkpoints")
_MIGRATE_LOCK = 0x70696E706F696E74  # "pinpoint": serializes schema migrations of agents starting at once
_LITTLE = sys.byteorder == "little"


def lock_key(state_key: str) -> int:
    """The advisory lock (a signed 64-bit key) that stands for exporting the integration ``name@TYPE``."""
    return xxhash.xxh64_intdigest(f"pinpoint-agent export {state_key}".encode()) - (1 << 63)


def _lock_ids(state_key: str) -> tuple[int, int]:
    """The advisory lock's two halves as ``pg_locks`` shows them (``classid``, ``objid``)."""
    unsigned = lock_key(state_key) & 0xFFFF_FFFF_FFFF_FFFF
    return unsigned >> 32, unsigned & 0xFFFF_FFFF


def _owner(key: str) -> str:
    """The integration (``name@TYPE``) a state key belongs to: its first segment."""
    return key.partition("/")[0]


def _to_wire(pairs: array[int]) -> bytes:
    if _LITTLE:
        return pairs.tobytes()
    swapped = array("q", pairs)
    swapped.byteswap()
    return swapped.tobytes()


def _from_wire(data: bytes) -> array[int]:
    pairs = array("q")
    pairs.frombytes(data)
    if not _LITTLE:
        pairs.byteswap()
    return pairs


def connect(url: str, *, purpose: str) -> psycopg.Connection[Any]:
    """An autocommit connection (transactions are explicit), its failure one line without the password."""
    try:
        # keepalives: a lock held by a machine that vanished is dropped within about a minute.
        return psycopg.connect(url, autocommit=True, connect_timeout=15, keepalives=1, keepalives_idle=30,
                               keepalives_interval=10, keepalives_count=3,
                               application_name=f"pinpoint-agent {purpose} {socket.gethostname()} "
                                                f"pid {os.getpid()}"[:63])
    except (ValueError, psycopg.ProgrammingError) as exc:
        raise ConfigError(f"state_url {redact_url(url)} is not a valid PostgreSQL URL: {_clean(exc, url)}") from None
    except psycopg.Error as exc:
        raise StateError(f"cannot open the state store {redact_url(url)}: {_clean(exc, url)}") from None


def _clean(exc: BaseException, url: str) -> str:
    """The error's first line, with anything of the URL's credentials taken out."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    try:
        conninfo = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error:
        conninfo = {}
    for secret in (conninfo.get("password"), url):
        if secret and str(secret) in text:
            text = text.replace(str(secret), "***")
    return text


class PostgresState(StateStore):
    """One connection for reads and short writes (guarded by a lock), the committer's, and one that holds the
    integrations' advisory locks."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self.where = redact_url(url)
        _register_password(url)
        self._db = connect(url, purpose="state")
        self._locks: psycopg.Connection[Any] | None = None
        self._lock_backend: tuple[int, datetime] | None = None  # the lock connection's server process (pid, start)
        self._claims: set[str] = set()
        try:
            self._migrate()
        except BaseException:
            self._db.close()
            raise

    def _error(self, exc: BaseException) -> StateError:
        return StateError(f"state store {self.where}: {_clean(exc, self.url)}")

    def _migrate(self) -> None:
        try:
            with self._db.transaction():
                self._db.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATE_LOCK,))
                self._db.execute("CREATE TABLE IF NOT EXISTS pinpoint_schema (version INTEGER NOT NULL)")
                row = self._db.execute("SELECT max(version) FROM pinpoint_schema").fetchone()
                version = int(row[0]) if row and row[0] is not None else 0
                if version > SCHEMA_VERSION:
                    raise StateError(f"the state store {self.where} has schema version {version}, newer than this "
                                     f"agent's {SCHEMA_VERSION}: upgrade the agent")
                for step in range(version, SCHEMA_VERSION):
                    with self._db.transaction():
                        self._db.execute(MIGRATIONS[step].encode())  # several statements: no parameters
                        self._db.execute("INSERT INTO pinpoint_schema (version) VALUES (%s)", (step + 1,))
        except psycopg.Error as exc:
            raise self._error(exc) from None

    def schema_version(self) -> int:
        return int(self._query("SELECT max(version) FROM pinpoint_schema")[0][0])

    def _close(self) -> None:
        self._db.close()

    def _connect(self) -> psycopg.Connection[Any]:
        return connect(self.url, purpose="state committer")

    def _disconnect(self, db: psycopg.Connection[Any]) -> None:
        db.close()

    @contextmanager
    def _tx(self, db: psycopg.Connection[Any] | None = None) -> Iterator[psycopg.Connection[Any]]:
        """A transaction; inside one already open on ``db`` (the committer's group), a savepoint."""
        conn = db or self._db
        with self._lock if db is None else _nothing():
            try:
                with conn.transaction():
                    yield conn
            except psycopg.Error as exc:
                raise self._error(exc) from None

    @contextmanager
    def _group(self, db: psycopg.Connection[Any]) -> Iterator[None]:
        try:
            with db.transaction():
                yield
        except psycopg.Error as exc:
            raise self._error(exc) from None

    def _query(self, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._db.execute(sql.encode(), args).fetchall()
            except psycopg.Error as exc:
                raise self._error(exc) from None

    # -- exclusion ----------------------------------------------------------------------------------
    def claim(self, state_key: str) -> None:
        """A session advisory lock on the lock connection; on success, what earlier (killed) runs staged for
        the integration is dropped: nobody else can be staging it now."""
        with self._lock:
            if state_key in self._claims:
                return
            try:
                if self._locks is None or self._locks.closed:
                    self._locks = connect(self.url, purpose="export")
                    row = self._locks.execute("SELECT pid, backend_start FROM pg_stat_activity "
                                              "WHERE pid = pg_backend_pid()").fetchone()
                    assert row is not None
                    self._lock_backend = (int(row[0]), row[1])
                row = self._locks.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(state_key),)).fetchone()
                if not (row and row[0]):
                    raise IntegrationBusy(f"integration {state_key} is being exported by another agent "
                                          f"({self._holder(state_key)}); try again when it ends")
            except psycopg.Error as exc:
                raise self._error(exc) from None
            self._claims.add(state_key)
            try:
                with self._tx() as db:
                    for table in _STAGED:
                        db.execute(f"DELETE FROM {table} WHERE owner = %s".encode(), (state_key,))
            except BaseException:
                self.release(state_key)
                raise

    def _lost_owners(self, db: psycopg.Connection[Any], owners: set[str]) -> list[str]:
        """Which of ``owners`` this store claimed and no longer holds: the lock connection's backend (pid and
        start time, as claimed) does not hold their advisory lock now. Asked of the server, on ``db``."""
        claimed = sorted(o for o in owners if o in self._claims)
        lost = [o for o in claimed if o in self._lost]
        check = [o for o in claimed if o not in self._lost]
        if not check:
            return lost
        if self._lock_backend is None:
            return lost + check
        pid, started = self._lock_backend
        db.execute("SELECT pg_stat_clear_snapshot()")  # pg_stat_activity is cached per transaction otherwise
        row = db.execute("SELECT backend_start FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
        if row is None or row[0] != started:
            return lost + check
        held = {(int(c), int(o)) for c, o in db.execute(
            "SELECT classid::bigint, objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND objsubid = 1 AND pid = %s", (pid,)).fetchall()}
        return lost + [o for o in check if _lock_ids(o) not in held]

    def _lose(self, owner: str) -> None:
        self._lost.setdefault(owner, f"integration {owner} lost its claim while exporting (the PostgreSQL "
                                     f"connection holding its lock ended): nothing it finished since was "
                                     f"committed, so another agent may export it meanwhile; the next export "
                                     f"redoes it")

    def _holder(self, state_key: str) -> str:
        """Who holds the integration's lock, as PostgreSQL knows it (its application name and since when)."""
        key = lock_key(state_key)
        assert self._locks is not None
        row = self._locks.execute(
            "SELECT a.application_name, a.backend_start FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
            "AND ((l.classid::bigint << 32) | l.objid::bigint) = %s LIMIT 1", (key,)).fetchone()
        if not row or not row[0]:
            return "another process"
        return f"{row[0]}, since {row[1]:%Y-%m-%d %H:%M:%S %Z}".strip()

    def release(self, state_key: str) -> None:
        with self._lock:
            if state_key not in self._claims:
                return
            self._claims.discard(state_key)
            if self._locks is not None and not self._locks.closed:
                try:
                    self._locks.execute("SELECT pg_advisory_unlock(%s)", (lock_key(state_key),))
                except psycopg.Error:
                    self._locks.close()  # the lock goes with its connection

    def _release_all(self) -> None:
        with self._lock:
            self._claims.clear()
            if self._locks is not None:
                if not self._locks.closed:
                    try:  # at once: a closed connection's locks go when its server process has ended
                        self._locks.execute("SELECT pg_advisory_unlock_all()")
                    except psycopg.Error:
                        pass
                self._locks.close()
                self._locks = None
                self._lock_backend = None

    # -- tokens -------------------------------------------------------------------------------------
    def token(self, key: str) -> str:
        rows = self._query("SELECT token FROM tokens WHERE key = %s", (key,))
        return str(rows[0][0]) if rows else ""

    def has_tokens(self, prefix: str) -> bool:
        return bool(self._query("SELECT 1 FROM tokens WHERE key >= %s AND key < %s LIMIT 1",
                                (prefix, prefix + "\U0010ffff")))

    def tokens(self, prefix: str = "") -> dict[str, str]:
        rows = self._query("SELECT key, token FROM tokens WHERE key >= %s AND key < %s ORDER BY key",
                           (prefix, prefix + "\U0010ffff"))
        return {str(k): str(t) for k, t in rows}

    def forget(self, state_key: str) -> int:
        prefix, end = state_key + "/", state_key + "/\U0010ffff"
        with self._tx() as db:
            n = db.execute("DELETE FROM tokens WHERE key >= %s AND key < %s", (prefix, end)).rowcount
            for table in ("dedup", "dedup_log"):
                db.execute(f"DELETE FROM {table} WHERE model_id IN (SELECT id FROM dedup_models "
                           "WHERE scope = %s)".encode(), (state_key,))
            n += db.execute("DELETE FROM checkpoints WHERE key >= %s AND key < %s", (prefix, end)).rowcount
        return int(n)

    # -- dedup --------------------------------------------------------------------------------------
    def _model_id(self, scope: str, model: str) -> int | None:
        rows = self._query("SELECT id FROM dedup_models WHERE scope = %s AND model = %s", (scope, model))
        return int(rows[0][0]) if rows else None

    def _lookup(self, model_id: int, keys: Sequence[int]) -> dict[int, int]:
        if not keys:
            return {}
        rows = self._query("SELECT key, hash FROM dedup WHERE model_id = %s AND key = ANY(%s::bigint[])",
                           (model_id, list(keys)))
        return {int(k): int(h) for k, h in rows}

    def has_hashes(self, scope: str, model: str) -> bool:
        mid = self._model_id(scope, model)
        return mid is not None and bool(self._query(
            "SELECT EXISTS (SELECT 1 FROM dedup_log WHERE model_id = %s) OR "
            "EXISTS (SELECT 1 FROM dedup WHERE model_id = %s)", (mid, mid))[0][0])

    def _log_sizes(self, model_id: int) -> list[tuple[int, int]]:
        rows = self._query("SELECT id, length(pairs) FROM dedup_log WHERE model_id = %s ORDER BY id", (model_id,))
        return [(int(i), int(n) // 16) for i, n in rows]

    def _merge_chunk(self, model_id: int, log_ids: list[int]) -> None:
        """Merges of one model take turns (a transaction lock): rows taken by one are gone for the next, and
        a later chunk never lands before an earlier one."""
        with self._tx() as db:
            db.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_MIGRATE_LOCK >> 32, model_id))
            rows = db.execute("DELETE FROM dedup_log WHERE id = ANY(%s::bigint[]) RETURNING id, pairs",
                              (log_ids,)).fetchall()
            latest: dict[int, int] = {}
            for _, data in sorted(rows):
                pairs = _from_wire(bytes(data))
                latest.update(zip(pairs[::2], pairs[1::2], strict=True))
            if not latest:
                return
            # COPY is several times faster than INSERT … unnest(…): straight into the table when the model has
            # no rows yet (the first merge after a historical export), else through a temporary table.
            found = db.execute("SELECT EXISTS (SELECT 1 FROM dedup WHERE model_id = %s)", (model_id,)).fetchone()
            empty = not (found and found[0])
            if not empty:
                db.execute("CREATE TEMPORARY TABLE IF NOT EXISTS dedup_merge (key BIGINT NOT NULL, "
                           "hash BIGINT NOT NULL) ON COMMIT DELETE ROWS")
            target = "dedup (model_id, key, hash)" if empty else "dedup_merge (key, hash)"
            with db.cursor().copy(f"COPY {target} FROM STDIN".encode()) as copy:
                if empty:
                    for k in sorted(latest):
                        copy.write_row((model_id, k, latest[k]))
                else:
                    for k in sorted(latest):
                        copy.write_row((k, latest[k]))
            if not empty:
                db.execute("INSERT INTO dedup (model_id, key, hash) SELECT %s, key, hash FROM dedup_merge "
                           "ON CONFLICT (model_id, key) DO UPDATE SET hash = excluded.hash "
                           "WHERE dedup.hash <> excluded.hash", (model_id,))

    # -- sessions -----------------------------------------------------------------------------------
    def stage_done(self, export_id: str, session: str, key: str, token: str, *, scope: str = "", model: str = "",
                   pairs: array[int] | None = None, db: psycopg.Connection[Any] | None = None) -> None:
        if pairs is not None and len(pairs) % 2:
            raise StateError(f"session {session}: {len(pairs)} dedup values cannot be (key, hash) pairs")
        owner = _owner(key)
        with self._tx(db) as db:
            db.execute("INSERT INTO staged_tokens (export_id, session, owner, key, token) VALUES (%s,%s,%s,%s,%s)",
                       (export_id, session, owner, key, token))
            if pairs is not None and len(pairs):
                db.execute("INSERT INTO staged_hashes (export_id, session, owner, scope, model, pairs) "
                           "VALUES (%s,%s,%s,%s,%s,%s)", (export_id, session, owner, scope, model, _to_wire(pairs)))

    def discard_session(self, export_id: str, session: str) -> None:
        with self._tx() as db:
            for table in _STAGED:
                db.execute(f"DELETE FROM {table} WHERE export_id = %s AND session = %s".encode(), (export_id, session))

    def _commit(self, export_id: str, session: str | None, db: psycopg.Connection[Any] | None = None) -> None:
        """One session's (or, with ``None``, the whole export's) staged rows become current, later staged
        rows winning."""
        where = "export_id = %s" + ("" if session is None else " AND session = %s")
        where_s = "s.export_id = %s" + ("" if session is None else " AND s.session = %s")
        args = (export_id,) if session is None else (export_id, session)
        with self._tx(db) as db:
            owners = {str(r[0]) for table in _STAGED for r in db.execute(
                f"SELECT DISTINCT owner FROM {table} WHERE {where}".encode(), args).fetchall()}
            for owner in self._lost_owners(db, owners):  # refused: nothing of it becomes current
                self._lose(owner)
                for table in _STAGED:
                    db.execute(f"DELETE FROM {table} WHERE {where} AND owner = %s".encode(), (*args, owner))
            db.execute(f"INSERT INTO dedup_models (scope, model) SELECT DISTINCT scope, model FROM staged_hashes "
                       f"WHERE {where} ON CONFLICT DO NOTHING".encode(), args)
            db.execute(f"INSERT INTO dedup_log (model_id, pairs) SELECT m.id, s.pairs FROM staged_hashes s JOIN "
                       f"dedup_models m ON m.scope = s.scope AND m.model = s.model WHERE {where_s} "
                       f"ORDER BY s.id".encode(), args)
            db.execute(f"INSERT INTO tokens (key, token, updated_at) SELECT DISTINCT ON (key) key, token, now() FROM "
                       f"staged_tokens WHERE {where} ORDER BY key, id DESC ON CONFLICT (key) DO UPDATE SET "
                       f"token = excluded.token, updated_at = excluded.updated_at".encode(), args)
            db.execute(f"INSERT INTO checkpoints (key, data) SELECT DISTINCT ON (key) key, data FROM "
                       f"staged_checkpoints WHERE {where} ORDER BY key, id DESC ON CONFLICT (key) DO UPDATE SET "
                       f"data = excluded.data".encode(), args)
            for table in _STAGED:
                db.execute(f"DELETE FROM {table} WHERE {where}".encode(), args)

    def discard_export(self, export_id: str | None = None) -> None:
        """With ``None``: what earlier runs staged for integrations nobody is exporting now (their advisory
        lock is free); an export running elsewhere keeps its rows."""
        self.wait_commits(raise_error=False)
        if export_id is not None:
            with self._tx() as db:
                for table in _STAGED:
                    db.execute(f"DELETE FROM {table} WHERE export_id = %s".encode(), (export_id,))
            return
        owners = {str(r[0]) for table in _STAGED
                  for r in self._query(f"SELECT DISTINCT owner FROM {table}")}
        for owner in sorted(owners - self._claims):  # an integration this store holds is its own export's
            with self._tx() as db:  # the try-lock goes with the transaction
                row = db.execute("SELECT pg_try_advisory_xact_lock(%s)", (lock_key(owner),)).fetchone()
                if row and row[0]:
                    for table in _STAGED:
                        db.execute(f"DELETE FROM {table} WHERE owner = %s".encode(), (owner,))

    # -- git checkpoints ----------------------------------------------------------------------------
    def checkpoint(self, key: str) -> str | None:
        rows = self._query("SELECT data FROM checkpoints WHERE key = %s", (key,))
        return str(rows[0][0]) if rows else None

    def stage_checkpoint(self, export_id: str, session: str, key: str, data: str) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO staged_checkpoints (export_id, session, owner, key, data) VALUES (%s,%s,%s,%s,%s)",
                       (export_id, session, _owner(key), key, data))


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _register_password(url: str) -> None:
    """The URL's password joins the log masker's secrets (it is never logged; this is the second net)."""
    try:
        password = psycopg.conninfo.conninfo_to_dict(url).get("password")
    except psycopg.Error:
        return
    if password:
        from pinpoint_agent.log import register_secret

        register_secret(str(password))
