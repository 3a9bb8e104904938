"""Private files: created 0600 from the first byte, written atomically (temp file, fsync, rename)."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from pinpoint_agent.output import fsync_dir

__all__ = ["ensure_private_dir", "write_private_file"]


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) if missing; a directory we create is 0700."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)


def write_private_file(path: Path, data: bytes, *, overwrite: bool) -> None:
    """Write ``data`` to ``path`` with mode 0600, atomically.

    The temp file is opened with ``O_EXCL`` and mode 0600, so no other user can ever read it. With
    ``overwrite=False`` the final step is ``link`` (fails if ``path`` exists) instead of ``rename``, so two
    writers can never replace each other's file. Raises ``FileExistsError`` in that case.
    """
    ensure_private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)  # the umask may only remove bits, but be explicit
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    fsync_dir(path.parent)
