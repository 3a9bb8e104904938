"""Secrets in backend-triggered runs: flow parameters are stored by Prefect and shown in its UI, so the
backend sends ``"secret-store:<name>"`` instead of a token, and the agent resolves the name from its
encrypted secret store (``<root>/secrets.json``, AES-GCM with the key in ``config.json``; see
``pinpoint_agent.backend.SecretStore``). Resolved values are registered with the log masker and hidden again
behind in-process references (``pinpoint_agent.secretref``) before the command's code sees them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pinpoint_agent.errors import ConfigError
from pinpoint_agent.log import register_config_secrets, register_secret
from pinpoint_agent.secretref import hide

STORE_PREFIX = "secret-store:"


def resolve(params: dict[str, Any], root: Path) -> dict[str, Any]:
    """``params`` with store references replaced; every secret-looking value registered and hidden."""
    resolved = _resolve(params, root)
    register_config_secrets(resolved)  # plain secrets the backend sent anyway: at least never logged
    result: dict[str, Any] = hide(resolved)
    return result


def _resolve(value: Any, root: Path) -> Any:
    if isinstance(value, str) and value.startswith(STORE_PREFIX):
        from pinpoint_agent.backend import open_secret_store

        name = value.removeprefix(STORE_PREFIX)
        try:
            store = open_secret_store(root)
            secret = store.get(name)
        except Exception as exc:  # noqa: BLE001 (no config, wrong key, corrupt store: all a config problem)
            raise ConfigError(f"cannot resolve {value}: {exc}") from None
        if secret is None:
            raise ConfigError(f"cannot resolve {value}: no secret of that name in {store.path}")
        register_secret(secret)
        return secret
    if isinstance(value, dict):
        return {k: _resolve(v, root) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, root) for v in value]
    return value
