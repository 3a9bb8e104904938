"""State store, output files and sessions without any plugin: the rules are plain functions."""

import gzip
import time
from contextlib import contextmanager

import orjson
import pytest

from pinpoint_agent.errors import SessionError
from pinpoint_agent.ids import hashcode
from pinpoint_agent.output import clean_temp_files
from pinpoint_agent.protocol import IntegrationConfig, IntegrationType
from pinpoint_agent.sessions import SessionManager, session_key
from pinpoint_agent.state import SqliteState


def obj(i, title="t"):
    o = {"id": f"id{i}", "ref_id": str(i), "ref_type": "mock", "title": title}
    o["hashcode"] = hashcode(o)
    return orjson.dumps(o)


@pytest.fixture(params=["sqlite", "postgres"])
def state(request, tmp_path):
    """Every test here runs against both stores: SQLite (the embedded default) and a real PostgreSQL."""
    if request.param == "sqlite":
        s = SqliteState(tmp_path / "state" / "state.db")
    else:
        from pinpoint_agent.state_pg import PostgresState

        s = PostgresState(request.getfixturevalue("pg_url"))
    yield s
    s.close()


@contextmanager
def write_lock_held(state):
    """Another connection holds the store's write lock meanwhile (commits queue up behind it)."""
    if isinstance(state, SqliteState):
        import sqlite3

        blocker = sqlite3.connect(state.path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
    else:
        import psycopg

        with psycopg.connect(state.url) as blocker:
            blocker.execute("LOCK TABLE staged_tokens IN EXCLUSIVE MODE")
            yield
            blocker.rollback()


def manager(tmp_path, state, export_id="e1", **kw):
    entry = IntegrationConfig(id="7", name="mock", type=IntegrationType.SOURCECODE)
    return SessionManager(entry, export_id=export_id, state=state, export_dir=tmp_path / "exports" / export_id, **kw)


def read_model(tmp_path, export_id, model):
    rows = []
    for f in sorted((tmp_path / "exports" / export_id / model).glob("*.json.gz")):
        rows += [orjson.loads(line) for line in gzip.decompress(f.read_bytes()).splitlines()]
    return rows


def test_session_keys_nest_under_the_integration_without_its_id():
    """Root keys are name@TYPE/name; children append /object/name (the id is left out on purpose)."""
    root = session_key(None, "github@SOURCECODE", "organization")
    assert root == "github@SOURCECODE/organization"
    assert session_key(root, "github@SOURCECODE", "sourcecode.PullRequest", "r1") == \
        "github@SOURCECODE/organization/r1/sourcecode.PullRequest"


def test_done_writes_a_final_file_and_stores_the_token(tmp_path, state):
    """SessionDone renames .temp.gz to .json.gz and the token is then returned to the next session."""
    m = manager(tmp_path, state)
    sid, token = m.session_start(False, "sourcecode.Repo", 0, "", "")
    assert token == ""
    m.send_exported(sid, [obj(1), obj(2)])
    assert list((tmp_path / "exports/e1/sourcecode.Repo").glob("*.temp.gz"))
    m.session_done(sid, "2026-01-01T00:00:00Z")
    assert [r["id"] for r in read_model(tmp_path, "e1", "sourcecode.Repo")] == ["id1", "id2"]
    assert not list((tmp_path / "exports/e1").rglob("*.temp.gz"))
    m2 = manager(tmp_path, state, export_id="e2")
    assert m2.session_start(False, "sourcecode.Repo", 0, "", "")[1] == "2026-01-01T00:00:00Z"


def test_unchanged_objects_are_dropped_changed_ones_kept(tmp_path, state):
    """Dedup drops an object whose hashcode equals the last one committed for its ref_type/model/id."""
    m = manager(tmp_path, state)
    sid, _ = m.session_start(False, "sourcecode.Repo", 0, "", "")
    m.send_exported(sid, [obj(1), obj(2)])
    m.session_done(sid, "t1")
    m2 = manager(tmp_path, state, export_id="e2")
    sid, _ = m2.session_start(False, "sourcecode.Repo", 0, "", "")
    m2.send_exported(sid, [obj(1), obj(2, title="changed"), obj(3)])
    m2.session_done(sid, "t2")
    assert [r["id"] for r in read_model(tmp_path, "e2", "sourcecode.Repo")] == ["id2", "id3"]
    assert m2.stats["sourcecode.Repo"].unchanged == 1


def test_rollback_discards_output_token_and_dedup(tmp_path, state):
    """SessionRollback removes the session's file and keeps the old token; its objects are sent again later."""
    m = manager(tmp_path, state)
    sid, _ = m.session_start(False, "sourcecode.Repo", 0, "", "")
    m.send_exported(sid, [obj(1)])
    m.session_rollback(sid)
    assert not list((tmp_path / "exports/e1").rglob("*.gz"))
    m2 = manager(tmp_path, state, export_id="e2")
    sid, token = m2.session_start(False, "sourcecode.Repo", 0, "", "")
    assert token == ""
    m2.send_exported(sid, [obj(1)])
    m2.session_done(sid, "t")
    assert len(read_model(tmp_path, "e2", "sourcecode.Repo")) == 1


def test_deferred_commit_waits_for_commit_export(tmp_path, state):
    """With a backend, tokens and dedup become current only when the export is committed (after upload)."""
    m = manager(tmp_path, state, commit_on_done=False)
    sid, _ = m.session_start(False, "sourcecode.Repo", 0, "", "")
    m.send_exported(sid, [obj(1)])
    m.session_done(sid, "t1")
    assert state.token("mock@SOURCECODE/sourcecode.Repo") == ""
    state.commit_export("e1")
    assert state.token("mock@SOURCECODE/sourcecode.Repo") == "t1"


def test_staged_state_of_a_killed_export_is_discarded(tmp_path, state):
    """What a killed export staged never becomes current: discard_export(None) at start drops it."""
    m = manager(tmp_path, state, commit_on_done=False)
    sid, _ = m.session_start(False, "sourcecode.Repo", 0, "", "")
    m.send_exported(sid, [obj(1)])
    m.session_done(sid, "t1")
    state.discard_export(None)
    state.commit_export("e1")
    assert state.token("mock@SOURCECODE/sourcecode.Repo") == ""
    assert state.known_hashes("mock@SOURCECODE", "sourcecode.Repo", [1, 2]) == {}


@pytest.mark.parametrize("call, words", [
    (lambda m, t, s: m.send_exported(t, [obj(1)]), "tracking session"),
    (lambda m, t, s: m.session_start(False, "x", t, "", ""), "must name its parent object"),
    (lambda m, t, s: m.session_done(999, ""), "unknown session"),
    (lambda m, t, s: (m.session_done(s, ""), m.send_exported(s, [obj(1)])), "already done"),
    (lambda m, t, s: m.send_exported(s, [b"{not json"]), "must be JSON objects"),
])
def test_session_rules_are_enforced(tmp_path, state, call, words):
    """Misuse of sessions is a SessionError with a clear message, never a crash."""
    m = manager(tmp_path, state)
    tracking, _ = m.session_start(True, "organization", 0, "", "")
    model, _ = m.session_start(False, "sourcecode.Repo", tracking, "org", "Org")
    with pytest.raises(SessionError, match=words):
        call(m, tracking, model)


def test_forget_makes_the_next_export_historical(tmp_path, state):
    """force-historical drops the integration's tokens and dedup, and no other integration's."""
    m = manager(tmp_path, state)
    sid, _ = m.session_start(False, "sourcecode.Repo", 0, "", "")
    m.send_exported(sid, [obj(1)])
    m.session_done(sid, "t1")
    with state._tx() as db:
        db.execute("INSERT INTO tokens (key, token) VALUES ('other@WORK/x', 'keep')")
    assert state.forget("mock@SOURCECODE") == 1
    assert state.token("mock@SOURCECODE/sourcecode.Repo") == "" and state.token("other@WORK/x") == "keep"


def test_leftover_temp_files_are_cleaned(tmp_path):
    """A .temp.gz left by a killed run is removed at start; final files stay."""
    d = tmp_path / "exports" / "e" / "m"
    d.mkdir(parents=True)
    (d / "1_1.temp.gz").write_bytes(b"x")
    (d / "1_2.json.gz").write_bytes(b"y")
    assert clean_temp_files(tmp_path / "exports") == 1
    assert [p.name for p in d.iterdir()] == ["1_2.json.gz"]


def test_dedup_keys_sent_by_the_integration_equal_parsing(tmp_path, state):
    """Keys an integration sends beside the objects dedup exactly as parsing the objects would."""
    from array import array

    from pinpoint_agent.ids import NO_KEY, object_key

    m = manager(tmp_path, state)
    sid, _ = m.session_start(False, "sourcecode.Repo", 0, "", "")
    m.send_exported(sid, [obj(1), obj(2)])  # no keys: the agent parses
    m.session_done(sid, "t1")
    batch = [obj(1), obj(2, title="changed"), b'{"no": "id"}']
    keys = array("q")
    for raw in batch:
        keys.extend(object_key(orjson.loads(raw)) if b'"id"' in raw else NO_KEY)
    m2 = manager(tmp_path, state, export_id="e2")
    sid, _ = m2.session_start(False, "sourcecode.Repo", 0, "", "")
    m2.send_exported(sid, batch, keys.tobytes())
    m2.session_done(sid, "t2")
    assert [r.get("id") for r in read_model(tmp_path, "e2", "sourcecode.Repo")] == [None, "id2"]
    with pytest.raises(SessionError, match="dedup holds"):
        m2.send_exported(m2.session_start(False, "x", 0, "", "")[0], batch, b"\x00" * 8)


def test_async_commits_land_in_order_and_wait_commits_waits(tmp_path, state):
    """With async commits SessionDone returns at once; wait_commits makes tokens and dedup current, in order."""
    m = manager(tmp_path, state, async_commit=True)
    for token in ("t1", "t2", "t3"):
        sid, _ = m.session_start(False, "sourcecode.Repo", 0, "", "")
        m.send_exported(sid, [obj(1, title=token)])
        m.session_done(sid, token)
    state.wait_commits()
    assert state.token("mock@SOURCECODE/sourcecode.Repo") == "t3"
    key, code = __import__("pinpoint_agent.ids", fromlist=["object_key"]).object_key(orjson.loads(obj(1, "t3")))
    assert state.known_hashes("mock@SOURCECODE", "sourcecode.Repo", [key]) == {key: code}


def test_async_done_finishes_the_file_before_the_token_and_a_failed_finish_stages_nothing(tmp_path, state):
    """With async commits the output file is completed on the committer thread, before its token: after
    wait_commits the file has its final name. A file that cannot be completed (here: its folder removed
    under the running export, so the rename fails) leaves the token and the hashcodes as they were, and the error
    reaches wait_commits."""
    import shutil

    m = manager(tmp_path, state, async_commit=True)
    sid, _ = m.session_start(False, "sourcecode.Repo", 0, "", "")
    m.send_exported(sid, [obj(1), obj(2)])
    m.session_done(sid, "t1")
    state.wait_commits()
    assert [r["id"] for r in read_model(tmp_path, "e1", "sourcecode.Repo")] == ["id1", "id2"]
    assert not list((tmp_path / "exports").rglob("*.temp.gz"))
    assert state.token("mock@SOURCECODE/sourcecode.Repo") == "t1"

    m2 = manager(tmp_path, state, export_id="e2", async_commit=True)
    sid, _ = m2.session_start(False, "sourcecode.Repo", 0, "", "")
    m2.send_exported(sid, [obj(1, title="changed")])
    shutil.rmtree(tmp_path / "exports" / "e2")  # removed under the running export: the rename fails
    m2.session_done(sid, "t2")
    from pinpoint_agent.errors import StateError

    with pytest.raises(StateError, match="committing a session failed: .*No such file"):
        state.wait_commits()
    assert state.token("mock@SOURCECODE/sourcecode.Repo") == "t1"
    key, code = __import__("pinpoint_agent.ids", fromlist=["object_key"]).object_key(orjson.loads(obj(1)))
    assert state.known_hashes("mock@SOURCECODE", "sourcecode.Repo", [key]) == {key: code}
    assert not list((tmp_path / "exports" / "e2").rglob("*.json.gz"))


def test_queued_session_commits_run_together_and_stop_at_the_first_failure(tmp_path, state):
    """Session commits queued behind a busy database run as one group: those before a failing one become
    current, the failing one and those after it do not, and the failure reaches wait_commits."""
    from array import array

    from pinpoint_agent.errors import StateError

    with write_lock_held(state):  # the commits below queue up meanwhile
        for i in range(6):
            pairs = array("q", [i, 100 + i]) if i != 3 else array("q", [3])  # an odd array cannot be paired
            state.done_async("e1", f"s{i}", f"key{i}", f"token{i}", scope="mock", model="m", pairs=pairs,
                             commit=True)
        time.sleep(0.3)  # the committer took the first one and waits for the lock; the rest queue behind it
    with pytest.raises(StateError, match="committing a session failed"):
        state.wait_commits()
    assert [state.token(f"key{i}") for i in range(6)] == ["token0", "token1", "token2", "", "", ""]
    assert state.known_hashes("mock", "m", [0, 1, 2, 3, 4, 5]) == {0: 100, 1: 101, 2: 102}


def _log_and_table(state):
    with state._tx() as db:
        return [db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("dedup_log", "dedup")]


def test_commits_append_to_the_dedup_log_and_lookups_merge_it_later_commits_winning(state, monkeypatch):
    """A session commit only appends its packed pairs; the first look-up moves them into the table in commit
    order (a key written again later keeps its last hashcode), a chunk of pairs at a time."""
    from array import array

    import pinpoint_agent.state as state_module

    monkeypatch.setattr(state_module, "MERGE_PAIRS", 3)  # several chunks, and a key repeated across them
    commits = [[(1, 10), (2, 20)], [(3, 30), (1, 11)], [(4, 40), (5, 50), (2, 21)], [(6, 60), (1, 12)]]
    for i, pairs in enumerate(commits):
        state.stage_done("e1", f"s{i}", f"k{i}", "t", scope="mock", model="m",
                         pairs=array("q", [v for pair in pairs for v in pair]))
        state.commit_session("e1", f"s{i}")
    assert _log_and_table(state) == [4, 0]  # committed, not yet merged
    assert state.has_hashes("mock", "m") and not state.has_hashes("mock", "other")

    assert state.known_hashes("mock", "m", [1, 2, 3, 4, 5, 6, 7]) == {1: 12, 2: 21, 3: 30, 4: 40, 5: 50, 6: 60}
    assert _log_and_table(state) == [0, 6]

    state.stage_done("e2", "s9", "k9", "t", scope="mock", model="m", pairs=array("q", [3, 33, 7, 70]))
    state.commit_session("e2", "s9")
    assert state.known_hashes("mock", "m", [3, 7]) == {3: 33, 7: 70}  # merged over the table's rows
    assert _log_and_table(state) == [0, 7]


def test_forget_drops_merged_and_unmerged_hashcodes(state):
    from array import array

    for i, pairs in enumerate(([1, 10], [2, 20])):
        state.stage_done("e1", f"s{i}", f"mock@SOURCECODE/k{i}", "t", scope="mock@SOURCECODE", model="m",
                         pairs=array("q", pairs))
        state.commit_session("e1", f"s{i}")
        if i == 0:
            assert state.known_hashes("mock@SOURCECODE", "m", [1]) == {1: 10}  # the first one merged
    assert _log_and_table(state) == [1, 1]
    state.forget("mock@SOURCECODE")
    assert _log_and_table(state) == [0, 0]
    assert not state.has_hashes("mock@SOURCECODE", "m")


@pytest.mark.parametrize("with_unkeyed", [False, True])
def test_a_historical_batch_with_keys_is_written_whole_and_its_keys_staged(tmp_path, state, with_unkeyed):
    """Nothing to compare and every object keyed: the batch and its keys go through as sent (no per-object
    work); one unkeyed object takes the per-object path. Either way the next export drops what is unchanged."""
    from array import array

    from pinpoint_agent.ids import NO_KEY, object_key

    batch = [obj(i) for i in range(5)] + ([b'{"no": "id"}'] if with_unkeyed else [])
    keys = array("q")
    for raw in batch:
        keys.extend(object_key(orjson.loads(raw)) if b'"id"' in raw else NO_KEY)
    for export_id in ("e1", "e2"):
        m = manager(tmp_path, state, export_id=export_id)
        sid, _ = m.session_start(False, "sourcecode.Repo", 0, "", "")
        m.send_exported(sid, batch, keys.tobytes())
        m.session_done(sid, export_id)
    assert len(read_model(tmp_path, "e1", "sourcecode.Repo")) == len(batch)
    assert [r.get("id") for r in read_model(tmp_path, "e2", "sourcecode.Repo")] == ([None] if with_unkeyed else [])


def test_an_export_merges_earlier_commits_once_and_leaves_its_own_for_the_next(tmp_path, state):
    """What earlier exports committed is merged once per model and export (by its first session of the
    model); the export's own commits stay in the log (an object it sends twice is written twice) until the
    next export merges them."""
    def run(export_id, *batches):
        m = manager(tmp_path, state, export_id=export_id, async_commit=True)
        for batch in batches:
            sid, _ = m.session_start(False, "sourcecode.Repo", 0, "", "")
            m.send_exported(sid, batch)
            m.session_done(sid, export_id)
            state.wait_commits()
        return [r["id"] for r in read_model(tmp_path, export_id, "sourcecode.Repo")]

    assert run("e1", [obj(1), obj(2), obj(3)]) == ["id1", "id2", "id3"]
    assert _log_and_table(state) == [1, 0]  # committed to the log only
    # e2: id1 unchanged (dropped: e1's commit was merged), id4 new; then id4 again, unchanged, in a later session
    assert sorted(run("e2", [obj(1), obj(4)], [obj(4)])) == ["id4", "id4"]
    assert _log_and_table(state) == [2, 3]  # e1 merged by e2's first session, e2's own two commits not
    assert run("e3", [obj(4), obj(5)]) == ["id5"]  # e3 merges e2's commits: id4 is known
    assert _log_and_table(state)[1] == 4
