"""What the interactive commands do (validate-config, export-onboard-data, mutate, webhook): plain Python,
no Prefect, so the flows stay thin and these can be tested without a server.

Inputs are checked by the ``parse_*`` functions before anything is written (a bad one is a ``ConfigError``:
one line, exit 1). Once an integration is called, every failure (the integration refused, crashed, timed
out, the test clone failed) comes back inside the result dict, as the original agent reported it.

Each call starts the integration's plugin process and reaps it at the end, unless the caller passes a
running ``host`` (a warm plugin kept by the service); then the host is used and left running.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import structlog

from pinpoint_agent.config import AgentConfig, load_agent_config, load_integrations
from pinpoint_agent.errors import ConfigError, PinpointError
from pinpoint_agent.host import Callbacks, IntegrationHost
from pinpoint_agent.log import mask, register_config_secrets, register_secret
from pinpoint_agent.protocol import CallConfig, IntegrationConfig, OnboardObjectType
from pinpoint_agent.root import Root

log = structlog.get_logger(__name__)

# Seconds an integration may take per call; onboarding lists whole organisations, mutations are one request.
TIMEOUTS = {"validate-config": 120.0, "onboard-export": 600.0, "mutate": 60.0, "webhook": 120.0}
CLONE_TIMEOUT = 300.0
GIT_USER_VAR, GIT_PASSWORD_VAR = "PINPOINT_GIT_USERNAME", "PINPOINT_GIT_PASSWORD"  # noqa: S105 (env var names)


# -- inputs ------------------------------------------------------------------------------------------
def single_integration(entries: list[IntegrationConfig], command: str) -> IntegrationConfig:
    """The one integration an interactive command works on."""
    if len(entries) != 1:
        keys = ", ".join(e.display_key for e in entries)
        raise ConfigError(f"{command} needs exactly one integration, got {len(entries)} ({keys})")
    return entries[0]


@dataclass
class Mutation:
    fn: str  # e.g. PR_SET_TITLE, as the integration names it
    data: Any  # the function's arguments; the integration checks they fit


def _json_object(text: str, flag: str, shape: str) -> dict[str, Any]:
    """A command-line JSON object, or one clear ConfigError naming the flag."""
    try:
        raw = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"{flag} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{flag} must be a JSON object {shape}")
    return raw


def parse_mutation(text: str) -> Mutation:
    """``--mutation '{"fn": …, "data": {…}}'``."""
    raw = _json_object(text, "--mutation", '{"fn": …, "data": {…}}')
    fn = raw.get("fn")
    if not isinstance(fn, str) or not fn.strip():
        raise ConfigError('--mutation has no "fn" (the mutation to run, e.g. "PR_SET_TITLE")')
    unknown = sorted(set(raw) - {"fn", "data"})
    if unknown:
        raise ConfigError(f"--mutation: unknown field {unknown[0]!r}; expected fn and data")
    return Mutation(fn=fn.strip(), data=raw.get("data", {}))


@dataclass
class Delivery:
    headers: dict[str, str]  # the webhook's HTTP headers
    body: bytes  # the body as delivered: JSON, or the raw text the backend received


def parse_webhook(text: str) -> Delivery:
    """``--data '{"headers": {…}, "body": {…} | "<raw body>"}'``; the integration judges the body."""
    raw = _json_object(text, "--data", '{"headers": {…}, "body": {…}}')
    headers = raw.get("headers")
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise ConfigError('--data needs "headers": an object of header name to string value')
    if "body" not in raw:
        raise ConfigError('--data needs "body": the delivery\'s JSON body (or its raw text as a string)')
    body = raw["body"]
    return Delivery(headers={str(k): v for k, v in headers.items()},
                    body=body.encode() if isinstance(body, str) else orjson.dumps(body))


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


def target_from_params(command: str, integrations: list[dict[str, Any]], agent_config: dict[str, Any] | None,
                       pinpoint_root: str | None, integrations_dir: str | None) -> Target:
    """The target from a flow's parameters (the same shapes the CLI takes as JSON)."""
    entry = single_integration(load_integrations(orjson.dumps(integrations).decode(), None), command)
    register_config_secrets(entry.config)
    agent = load_agent_config(orjson.dumps(agent_config).decode() if agent_config else None, None)
    return Target(entry=entry, agent=agent,
                  root=Root(pinpoint_root).path,
                  integrations_dir=Path(integrations_dir) if integrations_dir else None)


@contextmanager
def _host(target: Target) -> Iterator[IntegrationHost]:
    if target.host is not None:
        yield target.host
        return
    with IntegrationHost.start(target.entry, Callbacks(), root=target.root,
                               integrations_dir=target.integrations_dir) as host:
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
        register_secret(res.repo_credentials)
        clone_error = try_clone(res.repo_url, res.repo_credentials, target.root / "temp")
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
    bound.info("webhook started", body_bytes=len(delivery.body))
    try:
        with _host(target) as host:
            res = host.webhook(target.call_config, delivery.headers, delivery.body,
                               timeout=TIMEOUTS["webhook"])
    except PinpointError as exc:
        bound.warning("webhook failed", error=str(exc))
        return {"mutated_objects": {}, "success": False, "error": str(exc)}
    bound.info("webhook finished", objects={k: len(v) for k, v in res.mutated_objects.items()})
    return {"mutated_objects": res.mutated_objects, "success": True, "error": ""}


# -- the test clone ----------------------------------------------------------------------------------
_ASKPASS = f"""#!/bin/sh
case "$1" in
  Username*|username*) printf '%s\\n' "${GIT_USER_VAR}" ;;
  *) printf '%s\\n' "${GIT_PASSWORD_VAR}" ;;
esac
"""


def git_credentials_env(credentials: str, folder: Path) -> dict[str, str]:
    """Environment for git that answers its prompts from ``credentials`` (``user:password`` or a bare token,
    sent as ``x-access-token``) through a GIT_ASKPASS script; the secret is only ever in the environment."""
    env = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/false", "SSH_ASKPASS": "/bin/false",
           "GIT_SSH_COMMAND": "ssh -o BatchMode=yes"}
    if not credentials:
        return env
    user, sep, password = credentials.partition(":")
    if not sep:
        user, password = "x-access-token", credentials
    script = folder / "askpass.sh"
    script.write_text(_ASKPASS)
    script.chmod(stat.S_IRWXU)
    env.update({"GIT_ASKPASS": str(script), GIT_USER_VAR: user, GIT_PASSWORD_VAR: password})
    return env


def try_clone(url: str, credentials: str, temp: Path, *, timeout: float = CLONE_TIMEOUT) -> str:
    """Clones ``url`` (depth 1, no checkout) into a fresh folder under ``temp`` and removes it again;
    returns "" when that worked, else one line saying why (with no credential in it)."""
    temp.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="test-clone-", dir=temp))
    try:
        env = {**os.environ, **git_credentials_env(credentials, folder)}
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
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _git_reason(stderr: str) -> str:
    """The line of git's stderr that says why (``fatal: …``), else its last line."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip() and not ln.startswith("warning:")]
    fatal = [ln for ln in lines if ln.startswith("fatal:")]
    return (fatal or lines or [""])[-1].removeprefix("fatal: ")


def _clone_error(url: str, reason: str, credentials: str) -> str:
    safe = _without_userinfo(url)
    text = f"test clone of {safe} failed: {reason.replace(url, safe)}"
    for secret in {credentials, *credentials.split(":", 1)} - {""}:
        text = text.replace(secret, "***") if len(secret) >= 4 else text
    return mask(text)


def _without_userinfo(url: str) -> str:
    """``https://user:token@host/x`` → ``https://host/x``: a url never carries a secret into a message."""
    parts = urlsplit(url)
    if parts.scheme and parts.netloc and "@" in parts.netloc:
        return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
    return url
