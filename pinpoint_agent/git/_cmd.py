"""Running the git CLI: a clean, non-interactive environment, credentials through ``GIT_ASKPASS``.

A token never reaches a child's argv, a url or a config file: :func:`credential_env` writes a tiny askpass
script (0700, in a private temp dir) that prints an environment variable, and the token travels only in the
environment of the git child. Failures surface as ``subprocess.CalledProcessError`` carrying stderr; the
git layer translates them in one place (``_errors.translating``).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

__all__ = ["GIT", "base_env", "credential_env", "run"]

GIT = "git"

_TOKEN_VAR = "PINPOINT_GIT_TOKEN"
_USER_VAR = "PINPOINT_GIT_USERNAME"
_ASKPASS = f"""#!/bin/sh
case "$1" in
  [Uu]sername*) printf '%s\\n' "${_USER_VAR}" ;;
  *) printf '%s\\n' "${_TOKEN_VAR}" ;;
esac
"""
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
    env = {k: v for k, v in os.environ.items() if k not in _REPO_VARS and k not in (_TOKEN_VAR, _USER_VAR)}
    env.update(LC_ALL="C", LANGUAGE="C", GIT_TERMINAL_PROMPT="0", GCM_INTERACTIVE="never")
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    env.pop("GIT_ASKPASS", None)
    env.pop("SSH_ASKPASS", None)
    if extra:
        env.update(extra)
    return env


@contextmanager
def credential_env(token: str | None, username: str) -> Iterator[dict[str, str]]:
    """Extra environment for git children that answers an http credential prompt with ``token``.

    Yields ``{}`` when there is no token. The script file holds no secret and is removed on exit.
    """
    if not token:
        yield {}
        return
    with tempfile.TemporaryDirectory(prefix="pinpoint-askpass-") as tmp:
        script = Path(tmp) / "askpass.sh"
        script.write_text(_ASKPASS)
        script.chmod(0o700)
        yield {"GIT_ASKPASS": str(script), _TOKEN_VAR: token, _USER_VAR: username}


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
