"""The encrypted secret store in the state's PostgreSQL: every worker sharing the state resolves the same
``secret-store:`` names, the database only ever holds ciphertext, and a root's file moves into it."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import psycopg
import pytest

from pinpoint_agent.backend import ConfigError, EnrolledConfig, SecretBox, SecretStore, open_secret_store

TOKEN = "ghp_S3cr3tTok3nThatMustNeverHitTheDatabase_0123456789"


def _worker_root(tmp_path: Path, enrolled: Path, name: str) -> Path:
    """Another machine's root holding the same config.json (the same key), and no secrets file."""
    root = tmp_path / name
    root.mkdir()
    shutil.copy2(enrolled / "config.json", root / "config.json")
    return root


def test_a_secret_put_on_one_worker_is_resolved_on_another(tmp_path, root: Path, config: EnrolledConfig,
                                                           pg_url, monkeypatch) -> None:
    """Worker A stores a token; worker B (another root, same key, PINPOINT_STATE_URL set) reads it and lists
    it; the table holds neither the token nor its base64; deleting on B removes it for A."""
    a = _worker_root(tmp_path, root, "worker-a")
    b = _worker_root(tmp_path, root, "worker-b")
    open_secret_store(a, state_url=pg_url).put("github@SOURCECODE@i1/token", TOKEN)
    assert not (a / "secrets.json").exists()  # in the database, not the root
    monkeypatch.setenv("PINPOINT_STATE_URL", pg_url)
    store_b = open_secret_store(b)
    assert store_b.get("github@SOURCECODE@i1/token") == TOKEN
    assert store_b.names() == ["github@SOURCECODE@i1/token"]
    with psycopg.connect(pg_url) as db:
        dump = repr(db.execute("SELECT * FROM secrets").fetchall())
    assert TOKEN not in dump and base64.b64encode(TOKEN.encode()).decode() not in dump
    assert store_b.delete("github@SOURCECODE@i1/token") is True
    assert open_secret_store(a, state_url=pg_url).get("github@SOURCECODE@i1/token") is None


def test_resolving_a_reference_on_another_worker_gives_the_secret(tmp_path, root: Path, config: EnrolledConfig,
                                                                  pg_url, monkeypatch) -> None:
    """``secret-store:`` in a flow's parameters, resolved on a worker that never saw the secret, is the token;
    a whole config a command stored on worker A (a fan-out child's parameters) resolves on worker B too."""
    from pinpoint_agent.config import entries_from
    from pinpoint_agent.secrets import RunSecrets, resolve, resolve_entries

    worker_a = _worker_root(tmp_path, root, "worker-a")
    open_secret_store(worker_a, state_url=pg_url).put("mock-1.token", TOKEN)
    monkeypatch.setenv("PINPOINT_STATE_URL", pg_url)
    worker_b = _worker_root(tmp_path, root, "worker-b")
    resolved = resolve({"integrations": [{"config": {"token": "secret-store:mock-1.token"}}]}, worker_b)
    assert resolved["integrations"][0]["config"]["token"] == TOKEN
    run = RunSecrets(worker_a)
    params = run.integrations(entries_from([{"id": "m", "name": "mock", "config": {"api_key": TOKEN}}], "x"))
    assert TOKEN not in repr(params)
    [entry] = resolve_entries(params, worker_b)
    assert entry.config == {"api_key": TOKEN}
    run.drop()


def test_a_roots_secrets_file_moves_into_the_database(tmp_path, root: Path, config: EnrolledConfig, pg_url) -> None:
    """Secrets enrolled into the root's file before the state moved are copied (still encrypted) when the
    store opens on PostgreSQL; a name the database already has keeps the database's value."""
    key = config.encryption_key_bytes()
    SecretStore(root, SecretBox(key), state_url="").put("old/token", TOKEN)
    SecretStore(root, SecretBox(key), state_url="").put("both/token", "from-file")
    SecretStore(tmp_path, SecretBox(key), state_url=pg_url).put("both/token", "from-db")
    store = SecretStore(root, SecretBox(key), state_url=pg_url)
    assert store.get("old/token") == TOKEN and store.get("both/token") == "from-db"
    other = _worker_root(tmp_path, root, "worker-b")
    assert open_secret_store(other, state_url=pg_url).get("old/token") == TOKEN


def test_a_worker_with_another_key_cannot_read_them(tmp_path, pg_url) -> None:
    """Entries in the database decrypt only with the key they were written with."""
    SecretStore(tmp_path / "a", SecretBox(SecretBox.generate_key()), state_url=pg_url).put("x", TOKEN)
    with pytest.raises(ConfigError, match="wrong key or altered"):
        SecretStore(tmp_path / "b", SecretBox(SecretBox.generate_key()), state_url=pg_url).get("x")
