"""Keeps secrets out of Prefect: flow parameters are stored in Prefect's database and shown in its UI,
so a command running its flow in-process replaces every secret in them with a reference
(``secret-ref:<uuid>``) that only this process can resolve. Config parsing resolves references."""

from __future__ import annotations

import uuid
from typing import Any

from pinpoint_agent.errors import ConfigError
from pinpoint_agent.log import is_secret_key

PREFIX = "secret-ref:"
_vault: dict[str, str] = {}


def hide(value: Any) -> Any:
    """A copy with every string under a secret-looking key replaced by a reference."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if isinstance(v, str) and v and is_secret_key(k):
                ref = PREFIX + uuid.uuid4().hex
                _vault[ref] = v
                out[k] = ref
            else:
                out[k] = hide(v)
        return out
    if isinstance(value, list):
        return [hide(v) for v in value]
    return value


def reveal(value: Any) -> Any:
    """A copy with references replaced by the secrets they stand for."""
    if isinstance(value, str) and value.startswith(PREFIX):
        try:
            return _vault[value]
        except KeyError:
            raise ConfigError("a secret reference in the parameters is not available in this process; "
                              "a flow run started elsewhere must be given the secret itself") from None
    if isinstance(value, dict):
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v) for v in value]
    return value
