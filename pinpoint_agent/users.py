"""Users: ``CommitUser`` records (an email linked to an integration account, or seen in git) become
``sourcecode.User`` objects with ``ref_type`` "git", once per ``email@@@source_id`` (DESIGN §6)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from pinpoint_agent.errors import SessionError
from pinpoint_agent.ids import git_user_id, git_user_ref_id, hashcode, linked_git_user_id

COMMIT_USER_SESSION = "sourcecode.CommitUser"


def commit_user_to_user(cu: dict[str, Any]) -> dict[str, Any]:
    """The ``sourcecode.User`` for one CommitUser ``{customer_id, email, name, source_id}``."""
    customer_id, email = cu.get("customer_id"), cu.get("email")
    if not isinstance(customer_id, str) or not customer_id or not isinstance(email, str) or not email:
        raise SessionError(f"CommitUser needs customer_id and email, got {sorted(cu)}")
    email = email.lower()
    source_id = str(cu.get("source_id") or "")
    user = {
        "id": linked_git_user_id(customer_id, email, source_id) if source_id else git_user_id(customer_id, email),
        "ref_id": git_user_ref_id(customer_id, email),
        "ref_type": "git",
        "customer_id": customer_id,
        "email": email,
        "name": str(cu.get("name") or ""),
        "associated_ref_id": source_id,
    }
    user["hashcode"] = hashcode(user)
    return user


class CommitUserTransform:
    """Turns batches of CommitUser JSON into User JSON, dropping keys already seen in this export."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def __call__(self, objects: Sequence[bytes]) -> list[bytes]:
        out = []
        for raw in objects:
            try:
                cu = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise SessionError(f"CommitUser is not JSON: {exc}") from exc
            if not isinstance(cu, dict):
                raise SessionError("CommitUser must be a JSON object")
            key = f"{str(cu.get('email', '')).lower()}@@@{cu.get('source_id') or ''}"
            if key in self._seen:
                continue
            self._seen.add(key)
            out.append(orjson.dumps(commit_user_to_user(cu)))
        return out
