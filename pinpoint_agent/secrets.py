"""Secrets and Prefect: the one module that turns inputs into references and references back into values.

Flow parameters are stored in Prefect's database and shown in its UI, so no credential may be in them.
- A command (CLI) puts each integration's config and the agent config, as given, into the root's encrypted
  secret store under ``run/<run id>/…`` and passes the flow ``"secret-store:run/<run id>/…"`` references;
  it drops them when the command ends.
- The backend passes its own references: a whole config (``"config": "secret-store:<name>"``) or single
  values inside one (``"api_key": "secret-store:<name>"``), to secrets it sent at enrollment.
- ``resolve_*`` (called by the flows, in whatever process runs them: the CLI, the ``run`` service, a Prefect
  worker on the same root) replaces references by their values and registers for masking every resolved
  value, every value under a secret-looking key and the credentials inside any URL: one masking list.

The store is ``<root>/secrets.json`` (AES-GCM): under the enrolled key of ``config.json``, or, on a root
that is not enrolled, under a local key in ``<root>/secret.key`` (0600) made on first use.
"""

from __future__ import annotations

import contextlib
import fcntl
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from pinpoint_agent.backend import SecretBox, SecretStore
from pinpoint_agent.backend._config import config_path, load_config
from pinpoint_agent.backend._files import write_private_file
from pinpoint_agent.config import AgentConfig, Delivery, IntegrationEntry, agent_config_from, integration_config
from pinpoint_agent.errors import ConfigError
from pinpoint_agent.log import is_secret_key, register_secret
from pinpoint_agent.protocol import IntegrationConfig
from pinpoint_agent.urls import split_url

STORE_PREFIX = "secret-store:"
STALE_RUN_SECRETS = 7 * 86400.0  # seconds: a command's inputs still in the store after this were left by a kill
LOCAL_KEY_FILE = "secret.key"


def is_ref(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(STORE_PREFIX)


def local_key(root: Path) -> bytes:
    """The key of a root that is not enrolled (made on first use; ``enroll`` adopts it)."""
    path = root / LOCAL_KEY_FILE
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the secret key {path}: {exc}") from None
    with contextlib.suppress(FileExistsError):
        write_private_file(path, SecretBox.generate_key().hex().encode(), overwrite=False)
    return bytes.fromhex(path.read_text().strip())


def open_store(root: Path) -> SecretStore:
    """The root's secret store, under the enrolled key if the root is enrolled, else the local key."""
    key = load_config(root).encryption_key_bytes() if config_path(root).exists() else local_key(root)
    return SecretStore(root, SecretBox(key))


@contextlib.contextmanager
def _store_lock(root: Path) -> Iterator[None]:
    """One writer of ``secrets.json`` at a time across processes (commands may run side by side)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".secrets.lock", "ab") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _started(name: str) -> float:
    """When the run of a ``run/<unix>-<uuid>/…`` entry started (0 for a name of another form)."""
    try:
        return float(name.split("/", 2)[1].split("-", 1)[0])
    except (IndexError, ValueError):
        return 0.0


# -- a command's inputs into the store -------------------------------------------------------------
class RunSecrets:
    """The inputs of one command, held in the store for as long as its flow runs (``with``: dropped after)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.run = f"{int(time.time())}-{uuid.uuid4().hex}"
        self._names: list[str] = []

    def drop_stale(self, older_than: float = STALE_RUN_SECRETS) -> int:
        """Drops the entries of runs that started more than ``older_than`` seconds ago (a command killed
        before it could drop its own); returns how many."""
        cutoff = time.time() - older_than
        with _store_lock(self.root):
            store = open_store(self.root)
            stale = [n for n in store.names() if n.startswith("run/") and _started(n) < cutoff]
            for name in stale:
                store.delete(name)
        return len(stale)

    def put(self, what: str, value: Any) -> str:
        """Stores ``value`` (JSON) and returns the reference a flow parameter carries instead."""
        name = f"run/{self.run}/{what}"
        with _store_lock(self.root):
            open_store(self.root).put(name, orjson.dumps(value).decode())
        self._names.append(name)
        return STORE_PREFIX + name

    def integrations(self, entries: list[IntegrationEntry]) -> list[dict[str, Any]]:
        """The entries as flow parameters: id, name and type as given, the config as a reference."""
        return [{"id": str(e.id), "name": e.name, "type": int(e.type),
                 "config": e.config if is_ref(e.config) else self.put(f"{e.name}-{e.id}", e.config)}
                for e in entries]

    def agent(self, agent: AgentConfig) -> str:
        return self.put("agent", agent.to_json())

    def drop(self) -> None:
        if not self._names:
            return
        with _store_lock(self.root):
            store = open_store(self.root)
            for name in self._names:
                store.delete(name)
        self._names.clear()

    def __enter__(self) -> RunSecrets:
        self.drop_stale()
        return self

    def __exit__(self, *exc: object) -> None:
        self.drop()


# -- references back into values (in the flow) --------------------------------------------------------
def _get(root: Path, ref: str) -> str:
    name = ref.removeprefix(STORE_PREFIX)
    try:
        value = open_store(root).get(name)
    except Exception as exc:  # noqa: BLE001 (no key, wrong key, corrupt store: all a config problem)
        raise ConfigError(f"cannot resolve {ref}: {exc}") from None
    if value is None:
        raise ConfigError(f"cannot resolve {ref}: no secret of that name in {root / 'secrets.json'}")
    return value


def _resolve_whole(root: Path, ref: str, what: str) -> Any:
    """A reference to a whole JSON document (a config stored by ``RunSecrets``)."""
    raw = _get(root, ref)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ConfigError(f"{what}: {ref} does not hold a JSON object") from None


def resolve(value: Any, root: Path) -> Any:
    """``value`` with every ``secret-store:`` string replaced by its secret (each registered for masking)."""
    if is_ref(value):
        secret = _get(root, value)
        register_secret(secret)
        return secret
    if isinstance(value, dict):
        return {k: resolve(v, root) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, root) for v in value]
    return value


def mask_config(value: Any, *, secret: bool = False) -> None:
    """Registers for masking every string under a secret-looking key and the credentials of every URL."""
    if isinstance(value, dict):
        for k, v in value.items():
            mask_config(v, secret=secret or is_secret_key(str(k)))
    elif isinstance(value, list):
        for v in value:
            mask_config(v, secret=secret)
    elif isinstance(value, str):
        if secret:
            register_secret(value)
        for s in split_url(value).secrets:
            register_secret(s)


def resolve_entries(params: list[Any], root: Path) -> list[IntegrationConfig]:
    """Flow parameters (entries whose config is a dict or a reference) into the configs plugins get."""
    from pinpoint_agent.config import entries_from

    out = []
    for entry in entries_from([p.model_dump() if isinstance(p, IntegrationEntry) else p for p in params],
                              "integrations"):
        config = entry.config
        if is_ref(config):
            config = _resolve_whole(root, str(config), f"integration {entry.name}")
            if not isinstance(config, dict):
                raise ConfigError(f"integration {entry.name}: its config must be a JSON object")
        elif isinstance(config, str):
            raise ConfigError(f"integration {entry.name}: config must be a JSON object or a secret-store: "
                              "reference")
        config = resolve(config, root)
        mask_config(config)
        out.append(integration_config(entry, config))
    return out


def resolve_delivery(param: Delivery | str, root: Path) -> Delivery:
    """A webhook delivery from a flow parameter: as given, or a reference to it (its headers may carry the
    hook's shared secret, e.g. ``X-Gitlab-Token``, so a command stores it like a config)."""
    if isinstance(param, Delivery):
        return param
    if not is_ref(param):
        raise ConfigError("webhook data must be {\"headers\", \"body\"} or a secret-store: reference")
    data = _resolve_whole(root, param, "webhook data")
    try:
        delivery = Delivery.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"webhook data: {exc.errors()[0]['msg']}") from None
    mask_headers(delivery.headers)
    return delivery


def mask_headers(headers: dict[str, str]) -> None:
    """Registers for masking the values of headers that carry a credential (a hook's token, Authorization)."""
    for name, value in headers.items():
        if is_secret_key(name) or name.lower() in ("authorization", "proxy-authorization"):
            register_secret(value)


def resolve_agent(param: dict[str, Any] | str | None, root: Path) -> AgentConfig:
    """The agent config from a flow parameter (a dict, possibly with references, or a reference to it)."""
    data = _resolve_whole(root, param, "agent config") if isinstance(param, str) and is_ref(param) else (param or {})
    if not isinstance(data, dict):
        raise ConfigError("agent config must be a JSON object")
    data = resolve(data, root)
    mask_config(data)
    return agent_config_from(data)

