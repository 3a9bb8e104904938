"""Secrets at rest: AES-GCM with the agent's local key, stored in ``<root>/secrets.json`` (0600).

Secrets the backend sends (integration tokens, refresh tokens) are encrypted before they touch the disk.
Each entry is ``base64(nonce || ciphertext+tag)`` with a fresh random 96-bit nonce; the entry's name is the
associated data, so an entry copied under another name fails to decrypt.
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
    """Name → secret, encrypted with a ``SecretBox`` in ``<root>/secrets.json`` (0600, atomic writes).

    Thread-safe within one process. Values are ``str`` (tokens); nothing is cached in clear.
    """

    def __init__(self, root: Path | str, box: SecretBox) -> None:
        self.path = Path(root) / SECRETS_FILE
        self._box = box
        self._lock = threading.Lock()

    def _read(self) -> dict[str, str]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        try:
            data = json.loads(raw)
            entries = data["secrets"]
            if not isinstance(entries, dict) or not all(isinstance(v, str) for v in entries.values()):
                raise TypeError("secrets must map names to strings")
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"secret store {self.path} is corrupt: {exc}", path=str(self.path)) from exc
        return dict(entries)

    def _write(self, entries: dict[str, str]) -> None:
        body = {"version": _FORMAT_VERSION, "cipher": "AES-256-GCM", "secrets": entries}
        write_private_file(self.path, json.dumps(body, indent=2, sort_keys=True).encode(), overwrite=True)

    def put(self, name: str, value: str) -> None:
        """Encrypt ``value`` and store it under ``name`` (replacing an older value)."""
        if not name:
            raise ConfigError("a secret needs a name")
        blob = self._box.encrypt(value.encode(), associated_data=name.encode())
        with self._lock:
            entries = self._read()
            entries[name] = base64.b64encode(blob).decode()
            self._write(entries)

    def get(self, name: str) -> str | None:
        """The decrypted secret stored under ``name``, or ``None``."""
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
        with self._lock:
            entries = self._read()
            if entries.pop(name, None) is None:
                return False
            self._write(entries)
            return True

    def names(self) -> list[str]:
        """Names of the stored secrets, sorted."""
        with self._lock:
            return sorted(self._read())


def open_secret_store(root: Path | str) -> SecretStore:
    """The enrolled agent's secret store: ``<root>/secrets.json`` under the key in ``<root>/config.json``."""
    config = load_config(root)
    return SecretStore(root, SecretBox(config.encryption_key_bytes()))
