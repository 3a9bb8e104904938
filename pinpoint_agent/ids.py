"""Ids and hashcodes compatible with the original agent (go-common ``hash.Values``).

``values(*parts)`` is XXH64 (seed 0) over each part serialised and written one after another with no
separator, as 16 lower-case hex digits. Serialisation: ``None`` writes nothing; strings raw; bools
``true``/``false``; integers in decimal; floats in decimal when integral, else with six decimals; lists of
strings concatenated; other lists, dicts and objects as JSON.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson
import xxhash

__all__ = [
    "NO_KEY",
    "branch_id",
    "commit_id",
    "git_user_id",
    "git_user_ref_id",
    "hashcode",
    "linked_git_user_id",
    "object_key",
    "pull_request_id",
    "repo_id",
    "user_id",
    "values",
]


def _serialise(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if isinstance(value, int):
        return str(value).encode()
    if isinstance(value, float):
        return (str(int(value)) if value.is_integer() else f"{value:.6f}").encode()
    if isinstance(value, bytes):
        return value
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return "".join(value).encode()
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def values(*parts: Any) -> str:
    """go-common ``hash.Values``: XXH64 of the serialised parts, 16 lower-case hex digits."""
    try:  # the common case, all strings: one join, one hash
        return xxhash.xxh64_hexdigest("".join(parts).encode())
    except TypeError:
        pass
    h = xxhash.xxh64()
    for part in parts:
        h.update(_serialise(part))
    return h.hexdigest()


def hashcode(obj: Mapping[str, Any], skip: Iterable[str] = ("hashcode",)) -> str:
    """The ``hashcode`` of a datamodel object: ``values`` over its fields in alphabetical order."""
    skipped = set(skip)
    return values(*(obj[k] for k in sorted(obj) if k not in skipped))


def user_id(customer_id: str, ref_type: str, ref_id: str) -> str:
    """Id of an integration user (``sourcecode.User`` with ``ref_type`` = the integration)."""
    return values("User", customer_id, ref_type, ref_id)


def git_user_ref_id(customer_id: str, email: str) -> str:
    """``ref_id`` of a git user, and a commit's author/committer ref id; the email is lower-cased."""
    return values(customer_id, email.lower())


def git_user_id(customer_id: str, email: str) -> str:
    """Id of a user found in git commits (no associated integration account)."""
    return values("User", customer_id, email.lower(), "git")


def linked_git_user_id(customer_id: str, email: str, source_id: str) -> str:
    """Id of a git user linked to an integration account (from a ``CommitUser``)."""
    return values("User", customer_id, email.lower(), "git", source_id)


def repo_id(customer_id: str, ref_type: str, ref_id: str) -> str:
    return values("Repo", customer_id, ref_type, ref_id)


def commit_id(customer_id: str, sha: str, ref_type: str, repo_id: str) -> str:
    return values(customer_id, sha, ref_type, repo_id)


def pull_request_id(customer_id: str, ref_id: str, ref_type: str, repo_id: str) -> str:
    return values(customer_id, ref_id, ref_type, repo_id)


def branch_id(ref_type: str, repo_id: str, customer_id: str, name: str, first_commit_id: str) -> str:
    return values(ref_type, repo_id, customer_id, name, first_commit_id)


NO_KEY = (0, 0)
_SIGN, _WRAP = 1 << 63, 1 << 64


def object_key(obj: Mapping[str, Any]) -> tuple[int, int]:
    """The dedup key of a datamodel object: (xxh64 of ``ref_type/id``, its ``hashcode``), both as signed
    64-bit integers (how SQLite stores them); ``NO_KEY`` when the object has no id or no 16-hex hashcode.

    Integrations send these beside the objects (``SendExportedRequest.dedup``) so the agent can dedup
    without parsing the JSON."""
    oid, code = obj.get("id"), obj.get("hashcode")
    if not oid or type(code) is not str or len(code) != 16:
        return NO_KEY
    try:
        h = int(code, 16)
    except ValueError:
        return NO_KEY
    k = xxhash.xxh64_intdigest(f"{obj.get('ref_type', '')}/{oid}".encode())
    return (k - _WRAP if k >= _SIGN else k), (h - _WRAP if h >= _SIGN else h)
