"""A real PostgreSQL server for tests and benchmarks, started from the distribution's binaries (Debian
``postgresql``: ``/usr/lib/postgresql/<major>/bin``) in a fresh folder, stopped by its postmaster's pid::

    with PostgresServer.start() as pg:            # initdb + pg_ctl start on 127.0.0.1:<free port>
        url = pg.new_database()                   # postgresql://pinpoint:<password>@127.0.0.1:PORT/db1
        ...

PostgreSQL refuses to run as root: as root the server runs as the ``postgres`` user (``runuser``), in a folder
under the system temp dir that user owns. ``find_binaries()`` is ``None`` where none is installed.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from itertools import count
from pathlib import Path
from types import TracebackType

PASSWORD = "pg-test-Secr3t-pass"
USER = "pinpoint"


def find_binaries() -> Path | None:
    """The newest installed ``/usr/lib/postgresql/<major>/bin`` with initdb and pg_ctl (or ``$PG_BIN``)."""
    given = os.environ.get("PG_BIN")
    candidates = [Path(given)] if given else sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                                                    key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
                                                    reverse=True)
    for path in candidates:
        if (path / "initdb").exists() and (path / "pg_ctl").exists():
            return path
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    def __init__(self, bin_dir: Path, base: Path, port: int, pid: int) -> None:
        self.bin_dir = bin_dir
        self.base = base
        self.port = port
        self.pid = pid
        self._names = count(1)

    @classmethod
    def start(cls, *, durable: bool = False) -> PostgresServer:
        """initdb and start; ``durable=False`` turns fsync off (tests: nothing here must survive a power cut)."""
        bin_dir = find_binaries()
        if bin_dir is None:
            raise RuntimeError("no PostgreSQL server binaries (apt-get install postgresql)")
        as_root = os.geteuid() == 0
        base = Path(tempfile.mkdtemp(prefix="pinpoint-pg-"))
        run_as: list[str] = ["runuser", "-u", "postgres", "--"] if as_root else []
        if as_root:
            shutil.chown(base, "postgres", "postgres")
        data, sockets, pwfile = base / "data", base / "sockets", base / "pw"
        for path in (sockets,):
            path.mkdir()
            if as_root:
                shutil.chown(path, "postgres", "postgres")
        pwfile.write_text(PASSWORD + "\n")
        if as_root:
            shutil.chown(pwfile, "postgres", "postgres")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
        try:
            subprocess.run([*run_as, str(bin_dir / "initdb"), "-D", str(data), "-U", USER, "--pwfile", str(pwfile),
                            "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--no-sync"],
                           check=True, capture_output=True, env=env, timeout=120)
            port = _free_port()
            options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c max_connections=200"
            if not durable:
                options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            subprocess.run([*run_as, str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(base / "server.log"),
                            "-o", options, "-w", "-t", "60", "start"],
                           check=True, capture_output=True, env=env, timeout=90)
            pid = int((data / "postmaster.pid").read_text().split()[0])
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            detail = getattr(exc, "stderr", b"") or b""
            log = base / "server.log"
            tail = log.read_text()[-1500:] if log.exists() else ""
            shutil.rmtree(base, ignore_errors=True)
            raise RuntimeError(f"PostgreSQL did not start: {exc} {detail.decode(errors='replace')} {tail}") from exc
        return cls(bin_dir, base, port, pid)

    def url(self, database: str = "postgres", *, password: str = PASSWORD) -> str:
        return f"postgresql://{USER}:{password}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh empty database; its URL."""
        import psycopg

        name = f"db{next(self._names)}_{os.getpid()}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"'.encode())
        return self.url(name)

    def stop(self) -> None:
        """Fast shutdown of the postmaster by its pid (its children end with it), then the folder goes."""
        try:
            os.kill(self.pid, signal.SIGINT)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            os.kill(self.pid, signal.SIGKILL)
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
