"""Export output: one gzip file of JSON lines per model session.

``<root>/exports/<export id>/<model>/<unix>_<integration id>-<session id>.json.gz``, written as ``….temp.gz`` until the
session is done; ``finish`` flushes, fsyncs and renames, so a final name always means a complete file.
Leftover ``.temp.gz`` files of a killed run are removed by ``clean_temp_files`` at start.
"""

from __future__ import annotations

import os
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

TEMP_SUFFIX = ".temp.gz"
FINAL_SUFFIX = ".json.gz"
# Level 3: as fast as level 1 on JSON lines and close to level 6 in size (measured: 0.27 s vs 0.63 s per
# 42 MB, ratio 8.7 vs 10).
COMPRESS_LEVEL = 3


class SessionFile:
    """A gzip stream of JSON lines, opened lazily on the first object."""

    def __init__(self, folder: Path, session_id: str, level: int = COMPRESS_LEVEL) -> None:
        self.folder = folder
        self.session_id = session_id
        self.level = level
        self.objects = 0
        self.path: Path | None = None
        self._file: BinaryIO | None = None
        self._z: zlib._Compress | None = None

    def write(self, objects: Sequence[bytes]) -> None:
        if not objects:
            return
        if self._file is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.path = self.folder / f"{int(time.time())}_{self.session_id}{TEMP_SUFFIX}"
            self._file = open(self.path, "xb")  # noqa: SIM115 (closed in finish/discard; never overwrites)
            # wbits 31: a gzip container around the deflate stream.
            self._z = zlib.compressobj(self.level, zlib.DEFLATED, 31)
        assert self._z is not None
        self._file.write(self._z.compress(b"\n".join(objects) + b"\n"))
        self.objects += len(objects)

    def finish(self) -> Path | None:
        """Completes the file durably and gives it its final name; ``None`` when nothing was written."""
        if self._file is None or self.path is None or self._z is None:
            return None
        self._file.write(self._z.flush())
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        final = self.path.with_name(self.path.name[: -len(TEMP_SUFFIX)] + FINAL_SUFFIX)
        os.replace(self.path, final)
        fsync_dir(final.parent)
        self.path = final
        return final

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.path is not None and self.path.name.endswith(TEMP_SUFFIX):
            self.path.unlink(missing_ok=True)
            self.path = None


def fsync_dir(path: Path) -> None:
    """Makes a rename or a new file in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def clean_temp_files(exports_dir: Path) -> int:
    """Removes ``.temp.gz`` files left by a killed run; returns how many."""
    if not exports_dir.exists():
        return 0
    n = 0
    for path in exports_dir.rglob(f"*{TEMP_SUFFIX}"):
        path.unlink(missing_ok=True)
        n += 1
    return n
