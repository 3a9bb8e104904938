"""The resident runner: one-shot commands that do not import Prefect each time.

A one-shot command spends ~2.5 s importing Prefect before it does anything (``import prefect.flows``
alone: 2.3–2.6 s on a 2-core VM). So after a command that runs a flow, the CLI starts a runner in the
background: a process that imports Prefect, the flows and the plugin host once, then waits on a unix
socket in a folder only this user can open (``$XDG_RUNTIME_DIR/pinpoint-agent``, else
``<tmp>/pinpoint-agent-<uid>``, mode 0700).

The next command connects and hands over its arguments, environment, working folder, umask and its
stdin/stdout/stderr (the file descriptors themselves, SCM_RIGHTS). The runner forks a *monitor* for the
connection, which forks the *worker*: it takes on the caller's environment and descriptors and runs the
command exactly as the CLI would have, writing to the caller's terminal or pipes. The caller waits for
the worker's exit status and exits with it (a worker killed by a signal: the caller kills itself with the
same signal).

- Ctrl-C, SIGTERM and SIGHUP on the caller are passed on to the worker.
- If the caller dies (SIGKILL), the monitor kills the worker's process group at once, as if the agent itself
  had been killed: its plugins see their stdin close and exit, and nothing uncommitted counts.
- If no runner answers, or it ends before the worker starts, the command runs in its own process.
- One runner per installed code (its files' sizes and times, the interpreter, site-packages) and per
  environment that shapes imports (the ``PREFECT_*`` variables, ``PYTHONPATH``): a changed install or other
  settings get their own. A runner exits after ``IDLE_EXIT`` seconds without a command (``IDLE_ENV``), or
  when its socket is removed.
- The runner's own environment keeps only what locating code and Prefect needs; a command's secrets reach
  only its worker. ``PINPOINT_AGENT_RESIDENT=0`` turns all of this off.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import os
import select
import signal
import socket
import stat
import struct
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, NoReturn

import orjson
import xxhash

SWITCH = "PINPOINT_AGENT_RESIDENT"
IDLE_ENV = "PINPOINT_AGENT_RESIDENT_IDLE"  # seconds a runner waits for a command before it exits
IDLE_EXIT = 900.0
COMMANDS = frozenset({"export", "validate-config", "export-onboard-data", "mutate", "webhook"})
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# What the runner process itself keeps of the caller's environment (the worker gets all of it).
RUNNER_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "VIRTUAL_ENV", "XDG_RUNTIME_DIR",
              "PYTHONPATH", "PYTHONDONTWRITEBYTECODE", IDLE_ENV)
_CODE = ("pinpoint_agent", "flows", "tasks")
_HEADER = struct.Struct(">I")
_STDIO = (0, 1, 2)


def wanted(argv: list[str]) -> bool:
    """Whether this command line may run in a resident runner."""
    return (bool(argv) and argv[0] in COMMANDS and os.environ.get(SWITCH, "1") != "0"
            and hasattr(socket, "send_fds") and hasattr(os, "pidfd_open"))


def _folder() -> Path | None:
    """The user's private folder for runner sockets; ``None`` if it is not safely ours."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    folder = (Path(base) / "pinpoint-agent" if base and os.path.isdir(base)
              else Path(tempfile.gettempdir()) / f"pinpoint-agent-{os.getuid()}")
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        st = os.lstat(folder)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        return None
    return folder


def _key(environ: dict[str, str], here: Path = Path(__file__).resolve().parent.parent) -> str:
    """Names the installed code (under ``here``) and the Prefect environment a runner serves."""
    h = xxhash.xxh64()
    h.update(f"{sys.executable}\0{sys.version}\0".encode())
    for package in _CODE:
        for dirpath, dirnames, filenames in os.walk(here / package):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for name in sorted(filenames):
                if name.endswith(".py"):
                    st = os.stat(os.path.join(dirpath, name))
                    h.update(f"{dirpath}/{name}\0{st.st_mtime_ns}\0{st.st_size}\0".encode())
    with_packages = sysconfig.get_paths()["purelib"]
    h.update(f"{with_packages}\0{os.stat(with_packages).st_mtime_ns}\0".encode())
    # PYTHONPATH: the worker finds integration modules on the runner's sys.path.
    for k in sorted(k for k in environ if k.startswith("PREFECT_") or k == "PYTHONPATH"):
        h.update(f"{k}={environ[k]}\0".encode())
    return h.hexdigest()


def socket_path(environ: dict[str, str]) -> Path | None:
    """Where the runner for this code and ``environ`` (the command's, as it started) listens; ``None`` when
    there is no safe folder or its path is too long for a unix socket (108 bytes on Linux)."""
    folder = _folder()
    path = None if folder is None else folder / f"runner-{_key(environ)}.sock"
    return path if path is not None and len(os.fsencode(path)) < 100 else None


# -- messages: a 4-byte length, then JSON ---------------------------------------------------------------
def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    data = orjson.dumps(message)
    sock.sendall(_HEADER.pack(len(data)) + data)


def _exactly(sock: socket.socket, n: int) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(n - got)
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _receive(sock: socket.socket) -> dict[str, Any] | None:
    """The next message, or ``None`` when the other side closed the connection."""
    header = _exactly(sock, _HEADER.size)
    body = None if header is None else _exactly(sock, _HEADER.unpack(header)[0])
    return None if body is None else dict(orjson.loads(body))


# -- the caller -----------------------------------------------------------------------------------------
def run(argv: list[str], path: Path) -> int | None:
    """Runs the command in the runner at ``path`` and returns its exit code; ``None`` when no runner took it
    (nothing has run: the caller runs it itself)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except OSError:
        sock.close()
        return None
    umask = os.umask(0o022)
    os.umask(umask)
    fds = [fd for fd in _STDIO if _is_open(fd)]
    request = orjson.dumps({"argv": argv, "argv0": sys.argv[0], "env": dict(os.environ), "cwd": os.getcwd(),
                            "umask": umask, "fds": fds})
    caught: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        # Behind the request: the monitor reads it once the worker exists and passes it on.
        caught.append(signum)
        with contextlib.suppress(OSError):
            _send(sock, {"signal": signum})

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}
    try:
        try:
            # Held back while the request goes out, so a signal's message never lands inside it.
            signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
            try:
                socket.send_fds(sock, [_HEADER.pack(len(request))], fds)
                sock.sendall(request)
            finally:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
            started = _receive(sock)
        except OSError:
            started = None
        try:
            ended = None if started is None else _receive(sock)
        except OSError:
            ended = None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
    if started is None:  # the runner went away before it started anything: the caller runs the command
        if caught:
            signal.raise_signal(caught[0])  # as if it had come now (Ctrl-C: KeyboardInterrupt)
        return None
    if ended is None:
        print(f"error: the resident runner's worker (pid {started['pid']}) was lost before it ended; "
              f"set {SWITCH}=0 to run commands in their own process", file=sys.stderr)
        return 1
    if "signal" in ended:
        sig = signal.Signals(int(ended["signal"]))
        sys.stdout.flush()
        if sig != signal.SIGKILL and sig != signal.SIGSTOP:
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        return 128 + sig
    return int(ended["exit"])


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def start_in_background(path: Path, environ: dict[str, str]) -> None:
    """Starts a runner at ``path`` for ``environ`` (the command's, as it started), detached; a second one for
    the same socket sees the first one's lock and exits at once."""
    env = {k: v for k, v in environ.items() if k in RUNNER_ENV or k.startswith(("PREFECT_", "LC_"))}
    try:
        subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            [sys.executable, "-m", "pinpoint_agent.resident", str(path)], env=env, cwd="/",
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, close_fds=True)
    except OSError:
        pass  # the next command runs in its own process, as this one did


# -- the runner -----------------------------------------------------------------------------------------
def serve(path: Path, idle_exit: float = IDLE_EXIT) -> None:
    """Imports what commands need, then forks a monitor per connection until idle for ``idle_exit`` s."""
    lock = open(path.with_suffix(".lock"), "a")  # noqa: SIM115 (held for the runner's life)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return  # another runner serves this socket (or is starting to)
    log = os.open(path.with_suffix(".log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    try:  # a monitor watches its worker through a pidfd (Linux 5.3+)
        os.close(os.pidfd_open(os.getpid()))
    except OSError as exc:
        print(f"no resident runner on this system: pidfd_open: {exc}", flush=True)
        return
    # What a command sets for Prefect whatever its root, set before Prefect's import here too: the logging
    # configuration Prefect builds at import is then already the one commands need. (Prefect also creates
    # its home folder at import: this one keeps that out of the user's ~/.prefect.)
    from pinpoint_agent.commands import PREFECT_CONSOLE
    from pinpoint_agent.prefect_server import base_env

    for k, v in {**base_env(path.parent / "prefect-home"), **PREFECT_CONSOLE}.items():
        os.environ.setdefault(k, v)
    _preload()
    if threading.active_count() > 1:  # forking a process with threads is not safe
        print(f"not serving: an import started threads {threading.enumerate()}", flush=True)
        return
    global _logging_env
    _logging_env = _prefect_logging_env()
    path.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(64)
    inode = os.stat(path).st_ino
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # monitors are reaped by the kernel
    server.settimeout(min(60.0, idle_exit))
    print(f"runner {os.getpid()} serving {path}", flush=True)
    last = time.monotonic()
    while True:
        try:
            conn, _ = server.accept()
        except TimeoutError:
            if time.monotonic() - last >= idle_exit or not _still_ours(path, inode):
                break
            continue
        last = time.monotonic()
        if os.fork() == 0:
            server.close()
            lock.close()
            try:
                _monitor(conn)
            finally:
                os._exit(1)
        conn.close()
    if _still_ours(path, inode):
        path.unlink(missing_ok=True)
    print(f"runner {os.getpid()} exits (idle)", flush=True)


def _still_ours(path: Path, inode: int) -> bool:
    try:
        return os.stat(path).st_ino == inode
    except OSError:
        return False


# Everything a command imports on its way to and through its flow: the flows and the plugin host, then what
# Prefect and gRPC import only once a run starts (listed from a run's new ``sys.modules``; ~0.35 s).
PRELOAD = (
    "flows.export", "flows.mutate", "flows.onboard", "flows.validate_config", "flows.webhook",
    "pinpoint_agent.cli", "pinpoint_agent.commands", "pinpoint_agent.display", "pinpoint_agent.prefect_server",
    "prefect.engine", "prefect.flow_engine", "prefect.task_engine", "prefect.utilities.visualization",
    "prefect.telemetry.run_telemetry", "prefect._internal.attempt_control", "prefect._internal.control_listener",
    "prefect._internal.metrics", "prefect._internal.retries", "prefect._internal.states",
    "prefect.concurrency._asyncio", "prefect.concurrency._sync", "prefect.concurrency.services",
    "prefect.concurrency.v1.context", "fastapi", "anyio._backends._asyncio", "anyio.streams.memory",
    "anyio.streams.stapled", "anyio.streams.tls", "grpc._channel", "grpc._server", "grpc._simple_stubs",
    "grpc.experimental", "opentelemetry._logs", "opentelemetry.metrics", "encodings.idna", "http.cookies",
    "pydantic.color", "typer._adapters", "typer._click.decorators",
)
_logging_env: dict[str, str] | None = None  # the PREFECT_LOGGING_* variables Prefect's logging was set up with


def _preload() -> None:
    for module in PRELOAD:
        try:
            importlib.import_module(module)
        except ImportError as exc:  # a warm-up only: a later Prefect may have moved its internals
            print(f"preload: {exc}", flush=True)


def _monitor(conn: socket.socket) -> NoReturn:
    """One connection: receives the command, forks its worker, forwards signals, reports how it ended."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    header, fds, _, _ = socket.recv_fds(conn, _HEADER.size, len(_STDIO))
    rest = _exactly(conn, _HEADER.size - len(header)) if header else None
    body = None if rest is None else _exactly(conn, _HEADER.unpack(header + rest)[0])
    if body is None:
        os._exit(0)
    request = orjson.loads(body)
    worker = os.fork()
    if worker == 0:
        conn.close()
        _worker(request, fds)
    try:
        os.setpgid(worker, worker)  # also done by the worker: whichever runs first
    except OSError:
        pass
    for fd in fds:
        os.close(fd)
    pidfd = os.pidfd_open(worker)  # (the runner checked at start that this kernel has it)
    try:
        _send(conn, {"pid": worker})
    except OSError:  # the caller is already gone: so is its command
        _kill_group(worker)
        os.waitpid(worker, 0)
        os._exit(0)
    print(f"worker {worker}: {' '.join(request['argv'][:1])}", flush=True)  # the runner's log
    while True:
        watched: list[Any] = [conn, pidfd]
        ready, _, _ = select.select(watched, [], [])
        if pidfd in ready:
            break
        try:
            message = _receive(conn)
        except (OSError, ValueError):
            message = None
        if message is None:  # the caller is gone: so is its command, as if the agent itself had been killed
            _kill_group(worker)
            os.waitpid(worker, 0)
            os._exit(0)
        try:
            os.kill(worker, int(message["signal"]))
        except (ProcessLookupError, KeyError, ValueError):
            pass
    _, status = os.waitpid(worker, 0)
    _send(conn, {"signal": os.WTERMSIG(status)} if os.WIFSIGNALED(status)
          else {"exit": os.waitstatus_to_exitcode(status)})
    os._exit(0)


def _kill_group(worker: int) -> None:
    try:
        os.killpg(worker, signal.SIGKILL)
    except OSError:
        try:
            os.kill(worker, signal.SIGKILL)
        except OSError:
            pass


def _worker(request: dict[str, Any], fds: list[int]) -> NoReturn:
    """Becomes the caller's command: its descriptors, environment, folder, umask and arguments."""
    try:
        os.setpgid(0, 0)
    except OSError:
        pass
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    given = dict(zip(request["fds"], fds, strict=True))
    for target in _STDIO:
        source = given.get(target)
        if source is None:
            source = os.open(os.devnull, os.O_RDWR)
        if source != target:
            os.dup2(source, target)
            os.close(source)
    os.environ.clear()
    os.environ.update(request["env"])
    os.umask(request["umask"])
    sys.argv = [request["argv0"], *request["argv"]]
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(line_buffering=stream.isatty())
    from pinpoint_agent import cli

    try:
        os.chdir(request["cwd"])
    except OSError as exc:
        print(f"error: cannot enter the working folder {request['cwd']}: {exc.strerror}", file=sys.stderr)
        os._exit(1)
    cli.run_here(list(request["argv"]))  # reads Prefect's settings again once it has set them (commands._prefect)


def refresh_prefect_settings() -> None:
    """Prefect reads its settings and logging configuration at import. In a process that imported it before
    its environment was final (a runner's worker, or after the CLI set the root's server), read them again."""
    if "prefect.context" not in sys.modules:
        return
    import prefect.context
    import prefect.logging.configuration

    prefect.context.refresh_global_settings_context()  # ~70 ms
    if _prefect_logging_env() != _logging_env:  # ~175 ms: only when the logging settings changed
        prefect.logging.configuration.setup_logging(incremental=False)


def _prefect_logging_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith("PREFECT_LOGGING_")}


if __name__ == "__main__":
    # Through the package's module, not this ``__main__`` copy: its globals are the ones commands read.
    from pinpoint_agent import resident

    try:
        idle = float(os.environ.get(IDLE_ENV, IDLE_EXIT))
    except ValueError:
        idle = IDLE_EXIT
    resident.serve(Path(sys.argv[1]), idle_exit=idle)
    os._exit(0)
