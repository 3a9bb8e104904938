"""The state store's setting, migrations, exclusion and crash safety, on SQLite and on a real PostgreSQL
server the tests start (``postgres_server`` in tests/conftest.py)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from array import array
from pathlib import Path

import orjson
import pytest

from pinpoint_agent.errors import ConfigError, StateError
from pinpoint_agent.root import Root
from pinpoint_agent.state import SCHEMA_VERSION, IntegrationBusy, SqliteState
from pinpoint_agent.stores import open_state
from pinpoint_agent.testing.postgres import PASSWORD

# The schema of the state store before versions existed (pinpoint_agent/state.py as of main 6d97652), verbatim.
SCHEMA_BEFORE_VERSIONS = """
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
KEY = "mock@SOURCECODE"
REPO = f"{KEY}/sourcecode.Repo"


def open_store(kind: str, tmp_path: Path, request: pytest.FixtureRequest):
    if kind == "sqlite":
        return SqliteState(tmp_path / "state" / "state.db")
    from pinpoint_agent.state_pg import PostgresState

    return PostgresState(request.getfixturevalue("pg_url"))


# -- the setting -----------------------------------------------------------------------------------------------

def test_one_setting_chooses_the_store_config_before_environment(tmp_path, pg_url, monkeypatch):
    """No setting: SQLite under the root. $PINPOINT_STATE_URL or the agent config's state_url: PostgreSQL, the
    config winning. Anything but postgresql:// is one clear line."""
    from pinpoint_agent.config import AgentConfig
    from pinpoint_agent.state_pg import PostgresState

    root = Root(tmp_path / "root")
    monkeypatch.delenv("PINPOINT_STATE_URL", raising=False)
    s = open_state(root)
    assert isinstance(s, SqliteState) and s.path == root.path / "state" / "state.db"
    s.close()
    monkeypatch.setenv("PINPOINT_STATE_URL", "postgresql://nobody@127.0.0.1:1/none")
    agent = AgentConfig.model_validate({"state_url": pg_url})
    s = open_state(root, agent.state_url.get_secret_value())
    assert isinstance(s, PostgresState)
    s.close()
    assert PASSWORD not in repr(agent) and PASSWORD not in str(agent.model_dump())
    monkeypatch.setenv("PINPOINT_STATE_URL", pg_url)
    s = open_state(root)
    assert isinstance(s, PostgresState)
    s.close()
    with pytest.raises(ConfigError, match=r"^state_url must be a postgresql:// URL .*not mysql://"):
        open_state(root, "mysql://u:pw@h/db")


def test_credentials_in_the_state_url_never_reach_an_error(postgres_server):
    """A wrong password, an unreachable server and a malformed URL each give one line naming the URL without
    its password."""
    wrong = postgres_server.url("postgres", password="Wr0ng-Passw0rd-xyz")
    unreachable = f"postgresql://pinpoint:{PASSWORD}@127.0.0.1:1/db"
    malformed = f"postgresql://pinpoint:{PASSWORD}@127.0.0.1:{postgres_server.port}/db?sslmode=bogus"
    from pinpoint_agent.state_pg import PostgresState

    for url, secret in ((wrong, "Wr0ng-Passw0rd-xyz"), (unreachable, PASSWORD), (malformed, PASSWORD)):
        with pytest.raises((StateError, ConfigError)) as info:
            PostgresState(url)
        text = str(info.value)
        assert secret not in text and "\n" not in text, text
        assert "postgresql://pinpoint@127.0.0.1:" in text, text
        assert info.value.__cause__ is None and info.value.__suppress_context__


# -- migrations ------------------------------------------------------------------------------------------------

def test_a_sqlite_state_of_todays_code_migrates_in_place_keeping_everything(tmp_path):
    """A state.db made before schema versions (user_version 0) opens at the current version with its tokens,
    dedup hashcodes (merged and still in the log) and checkpoints, and keeps working."""
    path = tmp_path / "state" / "state.db"
    path.parent.mkdir(parents=True)
    old = sqlite3.connect(path)
    old.executescript(SCHEMA_BEFORE_VERSIONS)
    old.execute("INSERT INTO tokens (key, token) VALUES (?, 'run:7')", (REPO,))
    old.execute("INSERT INTO dedup_models (id, scope, model) VALUES (1, ?, 'sourcecode.Repo')", (KEY,))
    old.execute("INSERT INTO dedup (model_id, key, hash) VALUES (1, 11, 110)")
    old.execute("INSERT INTO dedup_log (model_id, pairs) VALUES (1, ?)", (array("q", [12, 120]).tobytes(),))
    old.execute("INSERT INTO checkpoints (key, data) VALUES (?, '{\"heads\": 1}')", (f"{KEY}/git/r1",))
    old.commit()
    assert old.execute("PRAGMA user_version").fetchone()[0] == 0
    old.close()

    s = SqliteState(path)
    assert s.schema_version() == SCHEMA_VERSION >= 1
    assert s.tokens(KEY + "/") == {REPO: "run:7"}
    assert s.known_hashes(KEY, "sourcecode.Repo", [11, 12, 13]) == {11: 110, 12: 120}
    assert s.checkpoint(f"{KEY}/git/r1") == '{"heads": 1}'
    s.stage_done("e1", "s1", REPO, "run:8", scope=KEY, model="sourcecode.Repo", pairs=array("q", [13, 130]))
    s.commit_session("e1", "s1")
    s.close()
    s = SqliteState(path)  # reopening migrates nothing more
    assert s.schema_version() == SCHEMA_VERSION and s.token(REPO) == "run:8"
    assert s.known_hashes(KEY, "sourcecode.Repo", [13]) == {13: 130}
    s.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_store_newer_than_the_agent_is_refused_in_one_line(kind, tmp_path, request):
    """A schema version above the agent's is never used (nor downgraded): one line says to upgrade."""
    s = open_store(kind, tmp_path, request)
    with s._tx() as db:
        if kind == "sqlite":
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        else:
            db.execute("INSERT INTO pinpoint_schema (version) VALUES (%s)", (SCHEMA_VERSION + 1,))
    s.close()
    with pytest.raises(StateError, match=r"has schema version \d+, newer than this agent's \d+: upgrade the agent"):
        open_store(kind, tmp_path, request)


def test_postgres_schema_migrates_once_when_agents_start_together(pg_url):
    """Eight agents opening an empty database at once: one creates the schema, every one opens it, and the
    version table holds each version once."""
    from pinpoint_agent.state_pg import SCHEMA_VERSION as PG_VERSION
    from pinpoint_agent.state_pg import PostgresState

    stores, errors = [], []

    def open_one():
        try:
            stores.append(PostgresState(pg_url))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(stores) == 8
    assert stores[0]._query("SELECT version FROM pinpoint_schema ORDER BY version") == \
        [(v,) for v in range(1, PG_VERSION + 1)]
    for s in stores:
        s.close()


# -- exclusion -------------------------------------------------------------------------------------------------

HOLDER = textwrap.dedent("""
    import sys, time
    from pinpoint_agent.root import Root
    from pinpoint_agent.stores import open_state
    store = open_state(Root(sys.argv[1]), sys.argv[2])
    store.claim(sys.argv[3])
    print("held", flush=True)
    time.sleep(600)
""")


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_two_holders_of_one_integration_one_is_refused_and_a_killed_holder_frees_it(kind, tmp_path, request):
    """A process holds mock@SOURCECODE (PostgreSQL: on another root; SQLite: on the same root). A second claim
    of it is refused with one line naming the holder; another integration is not blocked. Killed with -9, the
    holder's claim is gone and the second one gets it."""
    url = request.getfixturevalue("pg_url") if kind == "postgres" else ""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "root-a"), url, KEY],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held", holder.stderr.read()
        mine = open_state(Root(tmp_path / ("root-b" if url else "root-a")), url)
        with pytest.raises(IntegrationBusy) as info:
            mine.claim(KEY)
        message = str(info.value)
        assert "\n" not in message and message.startswith(f"integration {KEY} is being exported by another ")
        assert f"pid {holder.pid}" in message and message.endswith("try again when it ends")
        mine.claim("other@WORK")  # other integrations are free
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        deadline = time.monotonic() + 10
        while True:
            try:
                mine.claim(KEY)
                break
            except IntegrationBusy:
                assert time.monotonic() < deadline, "the killed holder's claim stayed"
                time.sleep(0.1)
        mine.close()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_claiming_drops_what_a_killed_run_staged_and_leaves_running_exports_alone(pg_url):
    """Staged rows of an integration nobody holds are dropped at the next export's start (discard_export(None))
    and when it is claimed; those of an integration another agent is exporting stay."""
    from pinpoint_agent.state_pg import PostgresState

    running, starting = PostgresState(pg_url), PostgresState(pg_url)
    running.claim("busy@WORK")
    running.stage_done("e-running", "s1", "busy@WORK/x", "t", scope="busy@WORK", model="m", pairs=array("q", [1, 2]))
    running.stage_checkpoint("e-running", "c1", "busy@WORK/git/r", "{}")
    starting.stage_done("e-killed", "s1", f"{KEY}/x", "t", scope=KEY, model="m", pairs=array("q", [1, 2]))

    def staged(owner):
        return sum(starting._query(f"SELECT count(*) FROM {t} WHERE owner = %s", (owner,))[0][0]
                   for t in ("staged_tokens", "staged_hashes", "staged_checkpoints"))

    assert staged(KEY) == 2 and staged("busy@WORK") == 3
    starting.discard_export(None)
    assert staged(KEY) == 0 and staged("busy@WORK") == 3
    running.commit_export("e-running")
    assert starting.token("busy@WORK/x") == "t" and starting.checkpoint("busy@WORK/git/r") == "{}"
    running.close()
    starting.close()


# -- crash safety ----------------------------------------------------------------------------------------------

COMMITTER = textwrap.dedent("""
    import sys
    from array import array
    from pinpoint_agent.root import Root
    from pinpoint_agent.stores import open_state
    store = open_state(Root(sys.argv[1]), sys.argv[2])
    n = int(sys.argv[3])
    print("started", flush=True)
    for i in range(n):
        keys = range(i * 2000, (i + 1) * 2000)
        pairs = array("q", [v for k in keys for v in (k, k + 7)])
        store.done_async("e1", f"s{i}", f"mock@SOURCECODE/s{i}", f"run:{i}", scope="mock@SOURCECODE",
                         model="m", pairs=pairs, commit=True)
        if i % 10 == 9:
            store.wait_commits()
            print(i, flush=True)
    store.close()
""")


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_kill_9_mid_transaction_loses_nothing(kind, tmp_path, request):
    """A process commits sessions (token + 2000 hashcodes each) as fast as it can and is killed with -9 at
    three different moments while commits run (after 20, 100 and 200 of them are known done). After each
    kill every session is whole or absent: its token is current exactly when all its hashcodes are, and the
    committed sessions are the first ones in order. A rerun then makes every session current."""
    url = request.getfixturevalue("pg_url") if kind == "postgres" else ""
    root = str(tmp_path / "root")
    n = 300
    seen = set()
    for target, delay in ((19, 0.0), (99, 0.005), (199, 0.02)):
        proc = subprocess.Popen([sys.executable, "-c", COMMITTER, root, url, str(n)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "started", proc.stderr.read()
        while int(proc.stdout.readline() or n) < target:  # commits are running: kill amid the next ones
            pass
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        store = open_state(Root(root), url)
        tokens = store.tokens("mock@SOURCECODE/")
        done = sorted(int(k.rsplit("s", 1)[1]) for k in tokens)
        assert done == list(range(len(done))), "sessions committed out of order"
        assert all(tokens[f"mock@SOURCECODE/s{i}"] == f"run:{i}" for i in done)
        known = store.known_hashes("mock@SOURCECODE", "m", list(range(n * 2000)))
        assert sorted(known) == list(range(len(done) * 2000)) and all(h == k + 7 for k, h in known.items())
        seen.add(len(done))
        store.close()
    assert len(seen - {0, n}) >= 1, f"no kill landed mid-run: {seen}"
    proc = subprocess.run([sys.executable, "-c", COMMITTER, root, url, str(n)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    store = open_state(Root(root), url)
    assert len(store.tokens("mock@SOURCECODE/")) == n
    assert len(store.known_hashes("mock@SOURCECODE", "m", list(range(n * 2000)))) == n * 2000
    store.close()


# -- exports through the CLI -----------------------------------------------------------------------------------

def _export(root: Path, env: dict[str, str], prs: int = 30, agent: dict | None = None):
    from tests.export.helpers import run_cli

    ints = orjson.dumps([{"id": "m1", "name": "mock", "type": 1,
                          "config": {"repos": 3, "prs_per_repo": prs, "users": 2, "new_prs_per_run": 1}}]).decode()
    out = root.with_name(root.name + "-result.json")
    proc = run_cli("export", "--integrations-json", ints, "--pinpoint-root", str(root), "--output-file", str(out),
                   "--agent-config-json", orjson.dumps({"customer_id": "c1", **(agent or {})}).decode(), env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert PASSWORD not in proc.stdout + proc.stderr
    return orjson.loads(out.read_bytes())["integrations"][0], proc


def test_state_moved_between_two_roots_sharing_postgresql_is_incremental(tmp_path, pg_url, prefect_api):
    """An export on root A (historical), then one on root B with the same PostgreSQL state: B continues from
    A's tokens and dedup (incremental, only the new pull requests), as a second machine would. The same
    second export on a root with SQLite state starts from scratch. The URL's password shows nowhere: not in
    the output, the logs, the result, the exported files or the flow runs' parameters in Prefect."""
    env = {"PINPOINT_STATE_URL": pg_url}
    a, _ = _export(tmp_path / "root-a", env)
    assert a["error"] == "" and a["incremental"] is False and a["objects"]["sourcecode.PullRequest"] == 90
    b, _ = _export(tmp_path / "root-b", env)
    assert b["error"] == "" and b["incremental"] is True
    assert b["objects"].get("sourcecode.PullRequest") == 3  # one new per repo (run 2), nothing of run 1 again
    # the agent config's state_url does the same as the environment variable
    c, _ = _export(tmp_path / "root-c", {"PINPOINT_STATE_URL": ""}, agent={"state_url": pg_url})
    assert c["error"] == "" and c["incremental"] is True and c["objects"].get("sourcecode.PullRequest") == 3
    alone, _ = _export(tmp_path / "root-sqlite", {"PINPOINT_STATE_URL": ""})
    assert alone["incremental"] is False and alone["objects"]["sourcecode.PullRequest"] == 90
    import httpx

    runs = httpx.post(f"{prefect_api}/flow_runs/filter", json={"limit": 200}, timeout=30)
    assert runs.status_code == 200 and '"agent_config"' in runs.text and PASSWORD not in runs.text
    for root in ("root-a", "root-b", "root-c"):
        for f in (tmp_path / root).rglob("*"):
            if f.is_file() and f.suffix != ".gz" and f.stat().st_size < 5_000_000:
                assert PASSWORD.encode() not in f.read_bytes(), f


@pytest.mark.usefixtures("prefect_api")
def test_an_export_of_an_integration_another_agent_holds_is_refused(tmp_path, pg_url):
    """While another agent holds mock@SOURCECODE on the shared state, an export of it on this root reports one
    clear line in its result (nothing exported, no token moved); once released, the next export runs."""
    from pinpoint_agent.state_pg import PostgresState

    other = PostgresState(pg_url)
    other.claim(KEY)
    env = {"PINPOINT_STATE_URL": pg_url}
    refused, _ = _export(tmp_path / "root", env)
    assert refused["error"].startswith(f"integration {KEY} is being exported by another agent (pinpoint-agent")
    assert refused["objects"] == {}
    assert other.tokens(KEY + "/") == {}
    other.release(KEY)
    ran, _ = _export(tmp_path / "root", env)
    assert ran["error"] == "" and ran["objects"]["sourcecode.PullRequest"] == 90
    assert other.tokens(KEY + "/")
    other.close()


def test_a_bad_state_url_is_one_line_and_exit_1_without_the_password(tmp_path, postgres_server):
    """An export whose state store cannot be opened (wrong password) stops with one line, exit 1, and the
    password shows nowhere in its output."""
    from tests.export.helpers import run_cli

    url = postgres_server.url("postgres", password="Wr0ng-Passw0rd-xyz")
    ints = '[{"id":"m1","name":"mock","type":1,"config":{"repos":1,"prs_per_repo":1}}]'
    proc = run_cli("export", "--integrations-json", ints, "--pinpoint-root", str(tmp_path / "root"),
                   env={"PINPOINT_STATE_URL": url})
    assert proc.returncode == 1
    assert "Wr0ng-Passw0rd-xyz" not in proc.stdout + proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "postgresql://pinpoint@127.0.0.1" in last and "Traceback" not in proc.stderr


@pytest.mark.usefixtures("prefect_api")
def test_a_claim_lost_mid_export_commits_nothing_more_and_the_next_export_redoes_it(tmp_path, pg_url):
    """The server ends the connection that holds a running export's claim (pg_terminate_backend, as a restart or
    a network cut would): another agent could now claim the integration, and does. The export notices at its
    next commit: nothing more of it is committed (later sessions' tokens stay old, their files stay), it stops,
    and its result says why in one line. The next export redoes the rest: with the first's files, every object
    is there and every token is current."""
    import psycopg

    from pinpoint_agent.state_pg import PostgresState, _lock_ids
    from tests.export.helpers import AGENT, assert_nothing_lost, run_cli

    repos, prs = 6, 2000
    root, out = tmp_path / "root", tmp_path / "result.json"
    ints = orjson.dumps([{"id": "m1", "name": "mock", "type": 1, "config": {
        "repos": repos, "prs_per_repo": prs, "users": 2, "page_delay_ms": 400}}]).decode()
    args = ["export", "--integrations-json", ints, "--pinpoint-root", str(root), "--agent-config-json",
            '{"customer_id": "c1"}']
    env = {"PINPOINT_STATE_URL": pg_url}
    proc = subprocess.Popen([*AGENT, *args, "--output-file", str(out)], env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    watcher = PostgresState(pg_url)

    def committed() -> set[str]:
        return {k for k in watcher.tokens(KEY + "/") if k.endswith("/sourcecode.PullRequest")}

    try:
        deadline = time.monotonic() + 120
        while not committed():
            assert proc.poll() is None and time.monotonic() < deadline, "the export ended before its claim was cut"
            time.sleep(0.05)
        with psycopg.connect(pg_url, autocommit=True) as admin:
            [(holder,)] = admin.execute(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
                "AND classid = %s::oid AND objid = %s::oid", _lock_ids(KEY)).fetchall()
            assert admin.execute("SELECT pg_terminate_backend(%s, 10000)", (holder,)).fetchone()[0]
        before = committed()
        watcher.claim(KEY)  # the integration is free for anyone now: the danger the holder must notice
        watcher.release(KEY)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err[-3000:]
    [result] = orjson.loads(out.read_bytes())["integrations"]
    error = result["error"]
    assert error.startswith(f"integration {KEY} lost its claim while exporting") and "\n" not in error, error
    assert committed() == before and 0 < len(before) < repos  # nothing committed after the cut
    files = list((root / "exports").rglob("sourcecode.PullRequest/*.json.gz"))
    assert len(files) > len(before)  # the refused sessions' output stays (the next export redoes it)
    assert not watcher.token(f"{KEY}/organization")

    rerun = run_cli(*args, env=env)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert_nothing_lost([root], watcher, repos, prs, customer_id="c1")
    assert watcher.token(f"{KEY}/organization") == "run:1"
    watcher.close()
