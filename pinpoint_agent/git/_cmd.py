"""Running the git CLI: a clean, non-interactive environment, credentials through ``GIT_ASKPASS``.

A token never reaches a child's argv, a url or a config file: ``pinpoint_agent.askpass.credential_env`` writes
a tiny askpass script (0700, in a private temp dir) that prints an environment variable, and the token travels
only in the environment of the git child. Failures surface as ``subprocess.CalledProcessError`` carrying stderr; the
git layer translates them in one place (``_errors.translating``).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from pinpoint_agent.askpass import TOKEN_VAR, USER_VAR

__all__ = ["GIT", "base_env", "run"]

GIT = "git"

# Variables that would point a child git at another repository than the one we name.
_REPO_VARS = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_COMMON_DIR",
)


def base_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of every git child: never prompts, English messages (errors are classified by text)."""
    env = {k: v for k, v in os.environ.items() if k not in _REPO_VARS and k not in (TOKEN_VAR, USER_VAR)}
    env.update(LC_ALL="C", LANGUAGE="C", GIT_TERMINAL_PROMPT="0", GCM_INTERACTIVE="never")
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    env.pop("GIT_ASKPASS", None)
    env.pop("SSH_ASKPASS", None)
    if extra:
        env.update(extra)
    return env


def run(
    args: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
    timeout: float | None = None,
) -> bytes:
    """Runs ``git *args`` and returns its stdout; raises ``CalledProcessError`` (with stderr) on failure."""
    argv = [GIT, *args]
    proc = subprocess.run(
        argv,
        cwd=cwd,
        env=dict(env) if env is not None else base_env(),
        input=stdin,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, argv, proc.stdout, proc.stderr)
    return proc.stdout
