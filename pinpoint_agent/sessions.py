"""Sessions: what the integrations' session callbacks do on the agent side.

A session is a model session (named after the model, it can send objects) or a tracking session
(progress and nesting of tokens only). Keys: a root is ``<name@TYPE>/<name>``, a child its parent's key
plus ``/<object id>/<name>``. Objects pass through dedup (hashcode per ``ref_type``/model/id, staged and
committed with the token) into the session's output file; ``CommitUser`` sessions are turned into users.
"""

from __future__ import annotations

import sys
import threading
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from pinpoint_agent.errors import NotSupportedError, SessionError, StateError
from pinpoint_agent.host.callbacks import Callbacks
from pinpoint_agent.ids import NO_KEY, object_key
from pinpoint_agent.output import SessionFile
from pinpoint_agent.protocol import GitRepoRequest, IntegrationConfig
from pinpoint_agent.state import StateStore
from pinpoint_agent.users import COMMIT_USER_SESSION, CommitUserTransform


def session_key(parent_key: str | None, root: str, name: str, object_id: str = "") -> str:
    """The state key of a session: ``root/name`` for a root, ``parent/object_id/name`` for a child."""
    return f"{root}/{name}" if parent_key is None else f"{parent_key}/{object_id}/{name}"


@dataclass
class SessionInfo:
    id: int
    key: str
    name: str
    tracking: bool
    parent: int
    file: SessionFile | None
    lock: threading.Lock = field(default_factory=threading.Lock)
    current: int = 0
    total: int = 0
    closed: bool = False
    compare: bool = True  # look up stored hashcodes (False when none exist for the model, or reprocessing)
    pairs: array[int] = field(default_factory=lambda: array("q"))  # (key, hash) of what was written
    internal: bool = False  # opened by the agent itself (git processing), not by the plugin


@dataclass
class ModelStats:
    received: int = 0
    written: int = 0
    unchanged: int = 0


class SessionManager(Callbacks):
    """Implements the session callbacks for one integration in one export."""

    def __init__(self, entry: IntegrationConfig, *, export_id: str, state: StateStore, export_dir: Path,
                 reprocess_historical: bool = False, commit_on_done: bool = True,
                 git_queue: Callable[[GitRepoRequest], None] | None = None,
                 on_progress: Callable[[SessionInfo], None] | None = None, async_commit: bool = False) -> None:
        self.entry = entry
        self.root = entry.state_key
        self.export_id = export_id
        self.state = state
        self.export_dir = export_dir
        self.reprocess = reprocess_historical
        self.commit_on_done = commit_on_done
        # Commit sessions on the state store's committer thread: SessionDone returns once the file is final
        # and the token staged; the caller must ``state.wait_commits()`` before reporting the export.
        self.async_commit = async_commit
        self.git_queue = git_queue
        self.on_progress = on_progress
        self.stats: dict[str, ModelStats] = {}
        self._sessions: dict[int, SessionInfo] = {}
        self._next_id = 0
        self._lock = threading.Lock()
        self._users = CommitUserTransform()
        self._internal_roots: dict[str, int] = {}
        self._has_hashes: dict[str, bool] = {}
        self._hashes_lock = threading.Lock()  # held while a model's first session merges its hashcodes
        self._roots_lock = threading.Lock()

    # -- lifecycle ----------------------------------------------------------------------------------
    def _uid(self, s: SessionInfo) -> str:
        return f"{self.entry.display_key}#{s.id}"

    def _get(self, session_id: int) -> SessionInfo:
        with self._lock:
            s = self._sessions.get(session_id)
        if s is None:
            raise SessionError(f"unknown session id {session_id}")
        if s.closed:
            raise SessionError(f"session {session_id} ({s.key}) is already done")
        return s

    def session_start(self, is_tracking: bool, name: str, parent_id: int, parent_object_id: str,
                      parent_object_name: str) -> tuple[int, str]:
        return self._start(is_tracking, name, parent_id, parent_object_id, internal=False)

    def start_internal(self, is_tracking: bool, name: str, parent_id: int = 0,
                       parent_object_id: str = "") -> tuple[int, str]:
        """A session the agent opens itself (git processing); ``rollback_open`` leaves it alone."""
        return self._start(is_tracking, name, parent_id, parent_object_id, internal=True)

    def _start(self, is_tracking: bool, name: str, parent_id: int, parent_object_id: str, *,
               internal: bool) -> tuple[int, str]:
        if not name:
            raise SessionError("a session needs a name")
        lost = self.state.lost_claim(self.root)
        if lost:  # nothing it finishes could be committed: stop the integration at its next session
            raise StateError(lost)
        if parent_id:
            parent = self._get(parent_id)
            if not parent_object_id:
                raise SessionError(f"child session {name!r} of {parent.key} must name its parent object")
            key = session_key(parent.key, self.root, name, parent_object_id)
        else:
            key = session_key(None, self.root, name)
        with self._lock:
            self._next_id += 1
            sid = self._next_id
            folder = self.export_dir / name
            # File names carry the integration id too: session ids count from 1 in every integration.
            file = None if is_tracking else SessionFile(folder, f"{self.entry.id}-{sid}")
            info = SessionInfo(sid, key, name, is_tracking, parent_id, file, internal=internal)
            self._sessions[sid] = info
        if not is_tracking:
            info.compare = not self.reprocess and self._model_has_hashes(name)
        token = "" if self.reprocess else self.state.token(key)
        return sid, token

    def session_progress(self, session_id: int, current: int, total: int) -> None:
        s = self._get(session_id)
        s.current, s.total = current, total
        if self.on_progress is not None:
            self.on_progress(s)

    def session_done(self, session_id: int, last_processed: str) -> None:
        s = self._get(session_id)
        with s.lock:
            s.closed = True  # no write after this: the file is complete once finished
            if s.total:
                s.current = s.total  # done is complete, whatever progress was last reported
        uid = self._uid(s)
        pairs, s.pairs = s.pairs, array("q")
        if self.async_commit:
            # The file is finished (flushed, fsynced, renamed) on the committer thread, before the token is
            # staged: SessionDone returns without waiting for the disk. A crash before the commit leaves the
            # session to be re-exported.
            self.state.done_async(self.export_id, uid, s.key, last_processed, scope=self.root, model=s.name,
                                  pairs=pairs, commit=self.commit_on_done,
                                  prepare=None if s.file is None else s.file.finish)
        else:
            if s.file is not None:
                s.file.finish()
            self.state.stage_done(self.export_id, uid, s.key, last_processed, scope=self.root, model=s.name,
                                  pairs=pairs)
            self._commit(uid)
        if self.on_progress is not None:
            self.on_progress(s)

    def session_rollback(self, session_id: int) -> None:
        s = self._get(session_id)
        self._rollback(s)

    def _rollback(self, s: SessionInfo) -> None:
        with s.lock:
            if s.closed:
                return  # done meanwhile (its file may be being finished on the committer thread) or rolled back
            if s.file is not None:
                s.file.discard()
            s.closed = True
            s.pairs = array("q")
        self.state.discard_session(self.export_id, self._uid(s))

    def _model_has_hashes(self, model: str) -> bool:
        """Whether earlier exports stored hashcodes for the model, asked once per export: hashcodes this
        export commits itself are no reason to look every later batch up (on a historical export they are
        all new). An object sent twice within one export is then written twice, never lost. The first
        session of a model that has them merges them for look-ups (its others wait for that): merging on
        every batch cost an incremental export a third of its time."""
        with self._hashes_lock:
            known = self._has_hashes.get(model)
            if known is None:
                known = self.state.has_hashes(self.root, model)
                if known:
                    self.state.merge_log(self.root, model)
                self._has_hashes[model] = known
        return known

    def internal_root(self, name: str) -> int:
        """The agent's own tracking root session ``name`` (e.g. ``git``), opened once and shared."""
        with self._roots_lock:
            sid = self._internal_roots.get(name)
            if sid is None:
                sid, _ = self.start_internal(True, name)
                self._internal_roots[name] = sid
            return sid

    def rollback_open(self, *, internal: bool = False) -> int:
        """Rolls back every session the integration left open (it failed or was stopped); with
        ``internal`` also the agent's own (git) sessions."""
        with self._lock:
            open_sessions = [s for s in self._sessions.values() if not s.closed and (internal or not s.internal)]
        for s in open_sessions:
            self._rollback(s)
        return len(open_sessions)

    # -- objects ------------------------------------------------------------------------------------
    def send_exported(self, session_id: int, objects: Sequence[bytes], dedup: bytes = b"") -> None:
        s = self._get(session_id)
        if s.tracking or s.file is None:
            raise SessionError(f"session {s.key} is a tracking session and cannot send objects")
        model = s.name
        if model == COMMIT_USER_SESSION:  # users are the one model the agent makes itself
            batch, dedup = self._users(objects), b""
        else:
            batch = list(objects)
        stats = self.stats.setdefault(model, ModelStats())
        kept, staged = self._dedup(s, model, batch, dedup)
        with s.lock:
            if s.closed:
                raise SessionError(f"session {s.key} is already done")
            s.file.write(kept)
            s.pairs.extend(staged)
        stats.received += len(objects)
        stats.written += len(kept)
        stats.unchanged += len(batch) - len(kept)

    def _dedup(self, s: SessionInfo, model: str, batch: list[bytes],
               dedup: bytes) -> tuple[list[bytes], array[int]]:
        """Drops objects whose hashcode equals the last one committed for the same ref_type/id; returns
        what to write and the (key, hash) pairs to stage. Keys come from the integration (``dedup``) or,
        when it sent none, from parsing the objects. The hot path of an export: kept tight."""
        keyed: list[tuple[bytes, int, int]] = []
        kept: list[bytes] = []
        given = array("q")
        if len(dedup) == 16 * len(batch):
            given.frombytes(dedup)
            if sys.byteorder != "little":
                given.byteswap()
        elif dedup:
            raise SessionError(f"{model}: dedup holds {len(dedup)} bytes for {len(batch)} objects")
        if given and not s.compare and 0 not in given:
            return batch, given  # every object keyed, nothing to compare (a historical export): all kept
        for i, raw in enumerate(batch):
            k, h = (given[2 * i], given[2 * i + 1]) if given else NO_KEY
            if (k, h) == NO_KEY:
                try:
                    obj = orjson.loads(raw)
                    k, h = object_key(obj)
                except (orjson.JSONDecodeError, AttributeError) as exc:
                    raise SessionError(f"{model}: objects must be JSON objects ({exc})") from exc
                if (k, h) == NO_KEY:
                    kept.append(raw)  # nothing to compare: always written
                    continue
            keyed.append((raw, k, h))
        pairs = array("q")
        if not keyed:
            return kept, pairs
        # Merged when the session started (_model_has_hashes): no merge per batch.
        known = self.state.known_hashes(self.root, model, [k for _, k, _ in keyed], merge=False) \
            if s.compare else {}
        for raw, k, h in keyed:
            if known.get(k) != h:
                kept.append(raw)
                pairs.append(k)
                pairs.append(h)
        return kept, pairs

    def export_git_repo(self, request: GitRepoRequest) -> None:
        if self.git_queue is None:
            raise NotSupportedError("git processing is not available for this command")
        self.git_queue(request)

    def commit_checkpoint(self, key: str, data: str) -> None:
        """Stores a git checkpoint once everything before it is done (same durability rule as tokens)."""
        with self._lock:
            self._next_id += 1
            uid = f"{self.entry.display_key}#checkpoint{self._next_id}"
        self.state.stage_checkpoint(self.export_id, uid, key, data)
        self._commit(uid)

    def _commit(self, uid: str) -> None:
        if not self.commit_on_done:
            return  # the export commits everything after its upload
        if self.async_commit:
            self.state.commit_session_async(self.export_id, uid)
        else:
            self.state.commit_session(self.export_id, uid)

    def checkpoint(self, key: str) -> str | None:
        return None if self.reprocess else self.state.checkpoint(key)

    # -- reporting ----------------------------------------------------------------------------------
    def objects_by_model(self) -> dict[str, int]:
        return {m: s.written for m, s in sorted(self.stats.items())}

    def sessions(self) -> list[SessionInfo]:
        with self._lock:
            return list(self._sessions.values())
