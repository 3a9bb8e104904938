"""The agent's root folder (``--pinpoint-root``, default ``~/.pinpoint/next``) and what lives in it.

    config.json                       enrollment (0600)
    logs/<command>                    last run of each command
    logs/integrations/<name@TYPE@id>  last run of each integration
    cache/repos/                      git mirrors
    state/state.db                    tokens, dedup, git checkpoints
    exports/<export id>/<model>/      output
    prefect/                          the local Prefect server's home (when the agent starts one)
    temp/                             wiped at start
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from pinpoint_agent.errors import ConfigError
from pinpoint_agent.output import clean_temp_files

DEFAULT_ROOT = Path("~/.pinpoint/next")
ROOT_ENV = "PINPOINT_ROOT"  # the default root of this machine (e.g. of a Prefect worker), before DEFAULT_ROOT
TEMP_GRACE = 600.0  # seconds: temp entries younger than this may belong to a command still running


class Root:
    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path or os.environ.get(ROOT_ENV) or DEFAULT_ROOT).expanduser().absolute()

    @property
    def config_file(self) -> Path:
        return self.path / "config.json"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    def command_log(self, command: str) -> Path:
        return self.logs / command

    @property
    def repos_cache(self) -> Path:
        return self.path / "cache" / "repos"

    @property
    def exports(self) -> Path:
        return self.path / "exports"

    @property
    def temp(self) -> Path:
        return self.path / "temp"

    @property
    def prefect_home(self) -> Path:
        return self.path / "prefect"

    def prepare(self) -> None:
        """Creates the layout, checks it is writable, wipes old temp/ entries and removes half-written
        export output. Call it holding the export lock: it must not run beside an export."""
        try:
            for d in (self.path, self.logs / "integrations", self.repos_cache, self.exports, self.path / "state"):
                d.mkdir(parents=True, exist_ok=True)
            probe = self.path / ".write-probe"
            probe.write_bytes(b"")
            probe.unlink()
            self.temp.mkdir(exist_ok=True)
            cutoff = time.time() - TEMP_GRACE
            for item in self.temp.iterdir():  # left by earlier runs; fresh ones may belong to a running command
                if item.lstat().st_mtime < cutoff:
                    shutil.rmtree(item, ignore_errors=True) if item.is_dir() else item.unlink(missing_ok=True)
            clean_temp_files(self.exports)
        except OSError as exc:
            raise ConfigError(f"cannot use {self.path} as the agent root: {exc.strerror or exc}") from exc

    def exclusive(self, name: str, *, wait: float = 0.0) -> RootLock:
        """The root's ``name`` lock; held elsewhere, it is waited for up to ``wait`` seconds, then refused."""
        return RootLock(self.path / f".{name}.lock", name, wait=wait)


class RootLock:
    """An advisory lock on the root (e.g. one export at a time, whichever process runs it)."""

    def __init__(self, path: Path, name: str, *, wait: float = 0.0) -> None:
        self.path = path
        self.name = name
        self.wait = wait
        self._file: IO[str] | None = None

    def __enter__(self) -> RootLock:
        try:  # a root used for the first time (e.g. by a Prefect worker) is made here
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a+")  # noqa: SIM115 (held for the lock's life)
        except OSError as exc:
            raise ConfigError(f"cannot use {self.path.parent} as the agent root: {exc.strerror or exc}") from exc
        if not self._flock(self._file):
            self._file.seek(0)
            holder = self._file.read().strip() or "another process"
            self._file.close()
            self._file = None
            raise ConfigError(
                f"another {self.name} is running on this root ({holder}); try again when it ends") from None
        self._file.truncate(0)
        self._file.write(f"pid {os.getpid()}")
        self._file.flush()
        return self

    def _flock(self, file: IO[str]) -> bool:
        """Takes the lock, waiting up to ``self.wait`` seconds for its holder; False when it stayed held."""
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.2)

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


