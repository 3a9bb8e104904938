"""Credentials for a git child through ``GIT_ASKPASS``: never in its argv, its url or a config file.

``credential_env`` writes a tiny askpass script (0700, in a private temp dir, holding no secret) that prints
an environment variable; the credentials travel only in the environment of the git child.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TOKEN_VAR = "PINPOINT_GIT_TOKEN"  # noqa: S105 (an environment variable's name)
USER_VAR = "PINPOINT_GIT_USERNAME"
NO_PROMPT = {"GIT_TERMINAL_PROMPT": "0", "GCM_INTERACTIVE": "never", "GIT_SSH_COMMAND": "ssh -o BatchMode=yes",
             "GIT_ASKPASS": "/bin/false", "SSH_ASKPASS": "/bin/false"}
_SCRIPT = f"""#!/bin/sh
case "$1" in
  [Uu]sername*) printf '%s\\n' "${USER_VAR}" ;;
  *) printf '%s\\n' "${TOKEN_VAR}" ;;
esac
"""


def split_credentials(credentials: str, default_user: str = "x-access-token") -> tuple[str, str]:
    """``user:password`` → (user, password); a bare token → (``default_user``, token)."""
    user, sep, password = credentials.partition(":")
    return (user, password) if sep else (default_user, credentials)


@contextmanager
def credential_env(token: str | None, username: str = "x-access-token") -> Iterator[dict[str, str]]:
    """Extra environment for git children: never prompts, and answers an http credential prompt with
    ``username``/``token`` when a token is given. The script is removed on exit."""
    if not token:
        yield dict(NO_PROMPT)
        return
    with tempfile.TemporaryDirectory(prefix="pinpoint-askpass-") as tmp:
        script = Path(tmp) / "askpass.sh"
        script.write_text(_SCRIPT)
        script.chmod(0o700)
        yield {**NO_PROMPT, "GIT_ASKPASS": str(script), TOKEN_VAR: token, USER_VAR: username}
