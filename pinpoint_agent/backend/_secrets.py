"""Secrets at rest: AES-GCM with the agent's local key, stored in ``<root>/secrets.json`` (0600), or, when the
state is in PostgreSQL (``state_url``/``$PINPOINT_STATE_URL``), in that database's ``secrets`` table, so that
every worker sharing the state resolves ``secret-store:`` references (each needs the same key: the same
``config.json``).

Secrets the backend sends (integration tokens, refresh tokens) are encrypted before they touch the disk.
Each entry is ``base64(nonce || ciphertext+tag)`` with a fresh random 96-bit nonce; the entry's name is the
associated data, so an entry copied under another name fails to decrypt. The database holds the same
entries, encrypted alike: it never sees a key or a plaintext. Entries of a root's ``secrets.json`` that the
database lacks are copied to it when the store opens (the secrets move with the state).
"""

from __future__ import annotations

import base64
import json
import os
import threading
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pinpoint_agent.backend._config import load_config
from pinpoint_agent.backend._errors import ConfigError
from pinpoint_agent.backend._files import write_private_file

__all__ = ["SECRETS_FILE", "SecretBox", "SecretStore", "open_secret_store"]

SECRETS_FILE = "secrets.json"
_NONCE_BYTES = 12
_FORMAT_VERSION = 1


class SecretBox:
    """AES-256-GCM encryption with one key; every message gets its own random 96-bit nonce."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ConfigError("a SecretBox key must be 32 bytes (256 bits)")
        self._aead = AESGCM(key)

    @staticmethod
    def generate_key() -> bytes:
        """A fresh random 256-bit key."""
        return AESGCM.generate_key(bit_length=256)

    def encrypt(self, plaintext: bytes, associated_data: bytes | None = None) -> bytes:
        """Return ``nonce || ciphertext || tag``."""
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, associated_data)

    def decrypt(self, blob: bytes, associated_data: bytes | None = None) -> bytes:
        """Inverse of ``encrypt``; ``ConfigError`` when the key is wrong or the data was altered."""
        if len(blob) < _NONCE_BYTES + 16:
            raise ConfigError("encrypted secret is truncated")
        try:
            return self._aead.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], associated_data)
        except InvalidTag as exc:
            raise ConfigError("secret cannot be decrypted: wrong key or altered data") from exc


class SecretStore:
    """Name → secret, encrypted with a ``SecretBox`` in ``<root>/secrets.json`` (0600, atomic writes), or in
    PostgreSQL: ``state_url`` names it; ``None`` takes ``$PINPOINT_STATE_URL``; empty means the file.

    Thread-safe within one process. Values are ``str`` (tokens); nothing is cached in clear.
    """

    def __init__(self, root: Path | str, box: SecretBox, *, state_url: str | None = None) -> None:
        from pinpoint_agent.state import state_url as configured_state

        self._file = Path(root) / SECRETS_FILE
        self.path: Path | str = self._file  # where the secrets are, for messages
        self._box = box
        self._lock = threading.Lock()
        url = configured_state("") if state_url is None else state_url
        self._db: _DatabaseSecrets | None = None
        if url:
            self._db = _DatabaseSecrets(url)
            self.path = self._db.where
            with self._lock:
                self._db.import_missing(self._read())

    def _read(self) -> dict[str, str]:
        try:
            raw = self._file.read_bytes()
        except FileNotFoundError:
            return {}
        try:
            data = json.loads(raw)
            entries = data["secrets"]
            if not isinstance(entries, dict) or not all(isinstance(v, str) for v in entries.values()):
                raise TypeError("secrets must map names to strings")
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"secret store {self._file} is corrupt: {exc}", path=str(self._file)) from exc
        return dict(entries)

    def _write(self, entries: dict[str, str]) -> None:
        body = {"version": _FORMAT_VERSION, "cipher": "AES-256-GCM", "secrets": entries}
        write_private_file(self._file, json.dumps(body, indent=2, sort_keys=True).encode(), overwrite=True)

    def put(self, name: str, value: str) -> None:
        """Encrypt ``value`` and store it under ``name`` (replacing an older value)."""
        if not name:
            raise ConfigError("a secret needs a name")
        blob = self._box.encrypt(value.encode(), associated_data=name.encode())
        if self._db is not None:
            self._db.put(name, base64.b64encode(blob).decode())
            return
        with self._lock:
            entries = self._read()
            entries[name] = base64.b64encode(blob).decode()
            self._write(entries)

    def get(self, name: str) -> str | None:
        """The decrypted secret stored under ``name``, or ``None``."""
        if self._db is not None:
            encoded = self._db.get(name)
        else:
            with self._lock:
                encoded = self._read().get(name)
        if encoded is None:
            return None
        try:
            blob = base64.b64decode(encoded, validate=True)
        except ValueError as exc:
            raise ConfigError(f"secret {name!r} in {self.path} is corrupt", path=str(self.path)) from exc
        return self._box.decrypt(blob, associated_data=name.encode()).decode()

    def delete(self, name: str) -> bool:
        """Remove ``name``; ``True`` if it was there."""
        if self._db is not None:
            with self._lock:  # from the root's file too, lest the next open copy it back
                entries = self._read()
                if entries.pop(name, None) is not None:
                    self._write(entries)
            return self._db.delete(name)
        with self._lock:
            entries = self._read()
            if entries.pop(name, None) is None:
                return False
            self._write(entries)
            return True

    def names(self) -> list[str]:
        """Names of the stored secrets, sorted."""
        if self._db is not None:
            return self._db.names()
        with self._lock:
            return sorted(self._read())


def open_secret_store(root: Path | str, state_url: str | None = None) -> SecretStore:
    """The enrolled agent's secret store under the key in ``<root>/config.json``: ``<root>/secrets.json``, or
    the state's PostgreSQL (``state_url``, else ``$PINPOINT_STATE_URL``)."""
    config = load_config(root)
    return SecretStore(root, SecretBox(config.encryption_key_bytes()), state_url=state_url)


class _DatabaseSecrets:
    """The ``secrets`` table of the state's PostgreSQL (made by its migrations): name → base64 entry."""

    def __init__(self, url: str) -> None:
        from pinpoint_agent.state import redact_url
        from pinpoint_agent.state_pg import PostgresState

        self.url = url
        self.where = redact_url(url)
        PostgresState(url).close()  # the schema, migrated if needed

    def _run(self, sql: str, args: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
        import psycopg

        from pinpoint_agent.state_pg import _clean, connect

        try:
            with connect(self.url, purpose="secrets") as db:
                cursor = db.execute(sql.encode(), args)
                return cursor.fetchall() if cursor.description else [("",)] * cursor.rowcount
        except psycopg.Error as exc:
            raise ConfigError(f"secret store {self.where}: {_clean(exc, self.url)}") from None

    def import_missing(self, entries: dict[str, str]) -> None:
        for name, encoded in entries.items():
            self._run("INSERT INTO secrets (name, value) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
                      (name, encoded))

    def put(self, name: str, encoded: str) -> None:
        self._run("INSERT INTO secrets (name, value) VALUES (%s, %s) ON CONFLICT (name) DO UPDATE SET "
                  "value = excluded.value, updated_at = now()", (name, encoded))

    def get(self, name: str) -> str | None:
        rows = self._run("SELECT value FROM secrets WHERE name = %s", (name,))
        return rows[0][0] if rows else None

    def delete(self, name: str) -> bool:
        return bool(self._run("DELETE FROM secrets WHERE name = %s", (name,)))

    def names(self) -> list[str]:
        return sorted(r[0] for r in self._run("SELECT name FROM secrets"))
