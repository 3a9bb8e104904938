"""What the interactive commands do (validate-config, export-onboard-data, mutate, webhook): plain Python,
no Prefect, so the flows stay thin and these can be tested without a server.

Inputs arrive parsed (``pinpoint_agent.config``); a bad one was a ``ConfigError`` before anything ran. Once an
integration is called, every failure (the integration refused, crashed, timed out, the test clone failed)
comes back inside the result dict, as the original agent reported it.

Each call starts the integration's plugin process and reaps it at the end, unless ``plugin_source`` (set by
the ``run`` service) lends a warm plugin; then that plugin is used and left running.
"""

from __future__ import annotations

import contextvars
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import structlog

from pinpoint_agent.askpass import credential_env, split_credentials
from pinpoint_agent.config import AgentConfig, Delivery, IntegrationEntry, Mutation
from pinpoint_agent.errors import ConfigError, PinpointError
from pinpoint_agent.exporter import oauth_for
from pinpoint_agent.host import Callbacks, IntegrationHost
from pinpoint_agent.log import mask, register_secret
from pinpoint_agent.protocol import CallConfig, IntegrationConfig, OnboardObjectType
from pinpoint_agent.root import Root
from pinpoint_agent.secrets import resolve_agent, resolve_entries
from pinpoint_agent.urls import scrub_text, split_url

log = structlog.get_logger(__name__)
E = TypeVar("E", IntegrationEntry, IntegrationConfig)

# Seconds an integration may take per call; onboarding lists whole organisations, mutations are one request.
TIMEOUTS = {"validate-config": 120.0, "onboard-export": 600.0, "mutate": 60.0, "webhook": 120.0}
CLONE_TIMEOUT = 300.0


# -- inputs ------------------------------------------------------------------------------------------
def single_integration(entries: Sequence[E], command: str) -> E:
    """The one integration an interactive command works on (an entry as given, or resolved)."""
    if len(entries) != 1:
        keys = ", ".join(e.display_key for e in entries)
        raise ConfigError(f"{command} needs exactly one integration, got {len(entries)} ({keys})")
    return entries[0]


# -- the integration -------------------------------------------------------------------------------
@dataclass
class Target:
    """Where and for whom an interactive command calls its integration."""

    entry: IntegrationConfig
    agent: AgentConfig
    root: Path
    integrations_dir: Path | None = None
    host: IntegrationHost | None = None  # a warm plugin to use (and leave running)

    @property
    def call_config(self) -> CallConfig:
        return CallConfig(integration=self.entry, customer_id=self.agent.customer_id)


def target_from_params(command: str, integrations: list[IntegrationEntry] | list[dict[str, Any]],
                       agent_config: dict[str, Any] | str | None, pinpoint_root: str | None,
                       integrations_dir: str | None) -> Target:
    """The target from a flow's parameters, references to the secret store resolved."""
    root = Root(pinpoint_root).path
    entry = single_integration(resolve_entries(list(integrations), root), command)
    return Target(entry=entry, agent=resolve_agent(agent_config, root), root=root,
                  integrations_dir=Path(integrations_dir) if integrations_dir else None)


# Where an interactive command's plugin comes from: by default a process per call, started and reaped here;
# the ``run`` service sets a source of warm plugins in its worker threads (the hook the flows run through).
PluginSource = Callable[[Target], AbstractContextManager[IntegrationHost]]


@contextmanager
def _per_call(target: Target) -> Iterator[IntegrationHost]:
    callbacks = Callbacks()
    callbacks.oauth = oauth_for(Root(target.root), target.agent, target.entry)
    with IntegrationHost.start(target.entry, callbacks, root=target.root,
                               integrations_dir=target.integrations_dir) as host:
        yield host


plugin_source: contextvars.ContextVar[PluginSource] = contextvars.ContextVar("plugin_source", default=_per_call)


@contextmanager
def _host(target: Target) -> Iterator[IntegrationHost]:
    if target.host is not None:
        yield target.host
        return
    with plugin_source.get()(target) as host:
        yield host


# -- commands --------------------------------------------------------------------------------------
def validate_config(target: Target) -> dict[str, Any]:
    """``{"errors", "success", "server_version"}``; a repo the integration names is test-cloned."""
    bound = log.bind(integration=target.entry.display_key)
    bound.info("validate-config started")
    try:
        with _host(target) as host:
            res = host.validate_config(target.call_config, timeout=TIMEOUTS["validate-config"])
    except PinpointError as exc:
        bound.warning("validate-config failed", error=str(exc))
        return {"errors": [str(exc)], "success": False, "server_version": ""}
    errors = [str(e) for e in res.errors]
    if res.repo_url:
        split = split_url(res.repo_url)  # credentials in the url travel apart, like repo_credentials
        for secret in (res.repo_credentials, *split.secrets):
            register_secret(secret)
        clone_error = try_clone(split.url, res.repo_credentials or split.credentials, target.root / "temp")
        if clone_error:
            errors.append(clone_error)
    bound.info("validate-config finished", errors=len(errors), tested_clone=bool(res.repo_url))
    return {"errors": errors, "success": not errors, "server_version": res.server_version}


def export_onboard_data(target: Target, object_type: OnboardObjectType) -> dict[str, Any]:
    """``{"success", "error", "data"}``: the users, repos, projects… the integration lists."""
    what = object_type.name.lower()
    bound = log.bind(integration=target.entry.display_key, object_type=what)
    bound.info("export-onboard-data started")
    try:
        with _host(target) as host:
            res = host.onboard_export(target.call_config, object_type, timeout=TIMEOUTS["onboard-export"])
    except PinpointError as exc:
        bound.warning("export-onboard-data failed", error=str(exc))
        return {"success": False, "error": str(exc), "data": None}
    bound.info("export-onboard-data finished", records=len(res.data) if isinstance(res.data, list) else None)
    return {"success": True, "error": "", "data": res.data}


def mutate(target: Target, mutation: Mutation) -> dict[str, Any]:
    """``{"mutated_objects", "webapp_response", "success", "error", "error_code"}``; errors end with
    `` (<integration>/<fn in lower case>)`` as the original agent's did."""
    bound = log.bind(integration=target.entry.display_key, fn=mutation.fn)
    bound.info("mutate started")
    try:
        with _host(target) as host:
            res = host.mutate(target.call_config, mutation.fn, mutation.data, timeout=TIMEOUTS["mutate"])
    except PinpointError as exc:
        error = f"{exc} ({target.entry.name}/{mutation.fn.lower()})"
        bound.warning("mutate failed", error=error)
        return {"mutated_objects": {}, "webapp_response": None, "success": False, "error": error,
                "error_code": ""}
    bound.info("mutate finished", objects={k: len(v) for k, v in res.mutated_objects.items()})
    return {"mutated_objects": res.mutated_objects, "webapp_response": res.webapp_response, "success": True,
            "error": "", "error_code": res.error_code}


def webhook(target: Target, delivery: Delivery) -> dict[str, Any]:
    """``{"mutated_objects", "success", "error"}``: the model objects one webhook delivery stands for."""
    bound = log.bind(integration=target.entry.display_key)
    body = delivery.body_bytes
    bound.info("webhook started", body_bytes=len(body))
    try:
        with _host(target) as host:
            res = host.webhook(target.call_config, delivery.headers, body,
                               timeout=TIMEOUTS["webhook"])
    except PinpointError as exc:
        bound.warning("webhook failed", error=str(exc))
        return {"mutated_objects": {}, "success": False, "error": str(exc)}
    bound.info("webhook finished", objects={k: len(v) for k, v in res.mutated_objects.items()})
    return {"mutated_objects": res.mutated_objects, "success": True, "error": ""}


# -- the test clone ----------------------------------------------------------------------------------
def try_clone(url: str, credentials: str, temp: Path, *, timeout: float = CLONE_TIMEOUT) -> str:
    """Clones ``url`` (depth 1, no checkout) into a fresh folder under ``temp`` and removes it again;
    returns "" when that worked, else one line saying why (with no credential in it)."""
    temp.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="test-clone-", dir=temp))
    try:
        with credential_env(*_token_user(credentials)) as cred:
            return _clone(url, credentials, folder, {**os.environ, **cred}, timeout)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _token_user(credentials: str) -> tuple[str | None, str]:
    if not credentials:
        return None, ""
    user, password = split_credentials(credentials)
    return password, user


def _clone(url: str, credentials: str, folder: Path, env: dict[str, str], timeout: float) -> str:
    cmd = ["git", "-c", "credential.helper=", "-c", "core.longpaths=true",
           "-c", "http.lowSpeedLimit=10000", "-c", "http.lowSpeedTime=60",
           "clone", "--depth", "1", "--no-checkout", "--quiet", "--", url, str(folder / "repo")]
    try:
        proc = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,  # noqa: S603
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return _clone_error(url, f"no result within {timeout:g}s", credentials)
    except OSError as exc:
        return _clone_error(url, f"cannot run git: {exc.strerror or exc}", credentials)
    if proc.returncode != 0:
        reason = _git_reason(proc.stderr) or f"git exited with {proc.returncode}"
        return _clone_error(url, reason, credentials)
    return ""


def _git_reason(stderr: str) -> str:
    """The line of git's stderr that says why (``fatal: …``), else its last line."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip() and not ln.startswith("warning:")]
    fatal = [ln for ln in lines if ln.startswith("fatal:")]
    return (fatal or lines or [""])[-1].removeprefix("fatal: ")


def _clone_error(url: str, reason: str, credentials: str) -> str:
    safe = split_url(url).url
    text = f"test clone of {safe} failed: {scrub_text(reason.replace(url, safe))}"
    for secret in {credentials, *credentials.split(":", 1)} - {""}:
        text = text.replace(secret, "***") if len(secret) >= 4 else text
    return mask(text)
