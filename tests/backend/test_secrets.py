"""Secrets at rest: AES-GCM with the local key, stored in a 0600 file that never holds plaintext."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from pinpoint_agent.backend import ConfigError, EnrolledConfig, SecretBox, SecretStore

TOKEN = "ghp_S3cr3tTok3nThatMustNeverHitTheDisk_0123456789"


def _all_bytes_under(root: Path) -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in root.rglob("*") if p.is_file()]


def test_plaintext_never_reaches_the_disk(root: Path, config: EnrolledConfig) -> None:
    """After storing a token, neither it nor its base64 appears in any file under the root."""
    store = SecretStore(root, SecretBox(config.encryption_key_bytes()))
    store.put("github@SOURCECODE@i1/token", TOKEN)
    store.put("jira@WORK@i2/refresh_token", TOKEN + "-refresh")
    needles = [TOKEN.encode(), base64.b64encode(TOKEN.encode()), TOKEN.encode().hex().encode()]
    for path, data in _all_bytes_under(root):
        for needle in needles:
            assert needle not in data, f"plaintext found in {path}"
    assert stat.S_IMODE((root / "secrets.json").stat().st_mode) == 0o600
    assert store.get("github@SOURCECODE@i1/token") == TOKEN
    assert store.names() == ["github@SOURCECODE@i1/token", "jira@WORK@i2/refresh_token"]


def test_each_message_gets_a_fresh_nonce() -> None:
    """Encrypting the same plaintext twice gives different ciphertexts that both decrypt."""
    box = SecretBox(SecretBox.generate_key())
    one, two = box.encrypt(b"same"), box.encrypt(b"same")
    assert one[:12] != two[:12] and one != two
    assert box.decrypt(one) == box.decrypt(two) == b"same"


def test_wrong_key_or_tampering_is_detected(root: Path) -> None:
    """A store opened with another key, or an entry moved under another name, fails to decrypt."""
    store = SecretStore(root, SecretBox(SecretBox.generate_key()))
    store.put("a", TOKEN)
    store.put("b", "other")
    with pytest.raises(ConfigError, match="wrong key or altered"):
        SecretStore(root, SecretBox(SecretBox.generate_key())).get("a")
    path = root / "secrets.json"
    data = json.loads(path.read_text())
    data["secrets"]["b"] = data["secrets"]["a"]  # move a's ciphertext under b's name
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError):
        store.get("b")


def test_delete_and_missing(root: Path) -> None:
    """A missing name reads as None; delete removes an entry and reports whether it existed."""
    store = SecretStore(root, SecretBox(SecretBox.generate_key()))
    assert store.get("nope") is None
    store.put("x", "1")
    assert store.delete("x") is True
    assert store.delete("x") is False
    assert store.get("x") is None


def test_key_must_be_256_bits() -> None:
    """A key of the wrong length is a ConfigError, not a silent weaker cipher."""
    with pytest.raises(ConfigError):
        SecretBox(b"short")
