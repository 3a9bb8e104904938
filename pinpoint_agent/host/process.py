"""Starting, watching and reaping one integration process.

``PluginProcess`` owns the child: the magic cookie in its environment, the handshake read from its
stdout with a start timeout, its stderr (and go-plugin's stdio stream, see ``stdio``) copied line by line into
``<root>/logs/integrations/<key>`` and into the agent's log at the level each line carries (``plugin_log``),
and a stop that asks ``GRPCController/Shutdown`` first, then SIGTERM, then SIGKILL on the whole process group.
``stop()`` is safe to call on every path and more than once.
"""

from __future__ import annotations

import collections
import importlib.util
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

import structlog

from pinpoint_agent.errors import ConfigError, PluginCrashed, PluginStartError
from pinpoint_agent.host.plugin_log import crash_start, parse_line
from pinpoint_agent.protocol import MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE, Handshake, parse_handshake
from pinpoint_agent.protocol.handshake import HandshakeError

log = structlog.get_logger(__name__)

START_TIMEOUT = 30.0
STOP_GRACE = 3.0
STDERR_TAIL = 40
CRASH_LINES = 40  # of a crash report (a panic's goroutine dump can run to thousands)
# The original agent's names served by one built-in package (the plugin reads the name it was given).
BUILTIN_ALIASES = {"jira-cloud": "jira", "jira-hosted": "jira"}


def resolve_command(name: str, integrations_dir: Path | None) -> list[str]:
    """An external executable (``<dir>/bin/<name>``, then ``<dir>/<name>``) wins over a built-in
    ``integrations.<name>`` package, which runs as ``python -m``."""
    if integrations_dir is not None:
        for candidate in (integrations_dir / "bin" / name, integrations_dir / name):
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return [str(candidate)]
    package = BUILTIN_ALIASES.get(name, name).replace("-", "_")
    module = f"integrations.{package}"
    if package.isidentifier() and importlib.util.find_spec(module) is not None:
        return [sys.executable, "-m", module]
    where = f" (looked in {integrations_dir}/bin, {integrations_dir} and the built-in integrations)" \
        if integrations_dir else " (no built-in integration has that name)"
    raise ConfigError(f"unknown integration {name!r}{where}")


class PluginProcess:
    """A started integration process; ``handshake`` tells where its gRPC server listens."""

    def __init__(self, display_key: str, argv: list[str], *, log_file: Path | None,
                 start_timeout: float = START_TIMEOUT, env: dict[str, str] | None = None) -> None:
        self.key = display_key
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL)
        self.saw_traceback = False
        self.crash_report: list[str] = []  # the first crash report seen (panic, fatal error, traceback)
        self._line_lock = threading.Lock()  # stderr and the stdio stream feed the same log
        self._log_file: IO[bytes] | None = None
        if log_file is not None:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            self._log_file = open(log_file, "wb")  # last run only  # noqa: SIM115
        child_env = dict(os.environ if env is None else env)
        child_env.update({MAGIC_COOKIE_KEY: MAGIC_COOKIE_VALUE, "PLUGIN_PROTOCOL_VERSIONS": "1",
                          "PLUGIN_MIN_PORT": "10000", "PLUGIN_MAX_PORT": "25000", "PYTHONUNBUFFERED": "1"})
        self._lines: queue.Queue[str | None] = queue.Queue()
        try:
            self.proc = subprocess.Popen(  # noqa: S603 (argv comes from resolve_command)
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env=child_env, start_new_session=True,
            )
        except OSError as exc:
            self._close_log()
            raise PluginStartError(display_key, f"cannot start {argv[0]}: {exc.strerror}") from exc
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._threads = [
            threading.Thread(target=self._pump_stdout, args=(self.proc.stdout,), daemon=True,
                             name=f"stdout-{display_key}"),
            threading.Thread(target=self._pump_stderr, args=(self.proc.stderr,), daemon=True,
                             name=f"stderr-{display_key}"),
        ]
        for t in self._threads:
            t.start()
        try:
            self.handshake = self._read_handshake(start_timeout)
        except BaseException:
            self.stop()
            raise

    # -- output pumps -------------------------------------------------------------------------------
    def _pump_stdout(self, stream: IO[bytes]) -> None:
        first = True
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace").rstrip("\n")
            if first:
                self._lines.put(line)
                first = False
            else:  # stdout after the handshake is a plugin bug; keep it visible, never block the child
                self._write_log(f"[stdout] {line}\n".encode())
                log.warning("integration wrote to stdout after the handshake", integration=self.key, line=line[:500])
        self._lines.put(None)

    def _pump_stderr(self, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            self.take_line(raw.decode(errors="replace").rstrip("\n"))

    def take_line(self, line: str, stream: str = "stderr") -> None:
        """One line the plugin logged: into its log file, the crash tail, and the agent's log."""
        with self._line_lock:
            self._write_log((line if stream == "stderr" else f"[{stream}] {line}").encode() + b"\n")
            self.stderr_tail.append(line)
            if self.crash_report:
                if len(self.crash_report) < CRASH_LINES:
                    self.crash_report.append(line)
            elif (kind := crash_start(line)) is not None:
                self.saw_traceback = True
                if kind == "go":  # its cause heads the report; a Python traceback's ends it (the tail)
                    self.crash_report.append(line)
        entry = parse_line(line)
        if entry.traceback:
            self.saw_traceback = True
        if stream != "stderr":
            entry.fields["stream"] = stream
        getattr(log, entry.level)(entry.message, integration=self.key, **entry.fields)

    def _write_log(self, data: bytes) -> None:
        f = self._log_file
        if f is not None:
            try:
                f.write(data)
                f.flush()
            except ValueError:
                pass  # closed during stop

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    # -- handshake ----------------------------------------------------------------------------------
    def _read_handshake(self, timeout: float) -> Handshake:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise PluginStartError(self.key, f"no handshake within {timeout:g}s") from None
        if line is None:
            code = self.proc.wait(timeout=STOP_GRACE)
            self._join_pumps()
            raise PluginStartError(self.key, f"exited with {describe_exit(code)} before the handshake"
                                   + self.tail_text())
        try:
            return parse_handshake(line)
        except HandshakeError as exc:
            raise PluginStartError(self.key, f"bad handshake: {exc}") from exc

    # -- state and stop -----------------------------------------------------------------------------
    def exited(self) -> int | None:
        return self.proc.poll()

    def tail_text(self, n: int = 15) -> str:
        """A Go crash report from its first line when one was seen (a panic's tail is only goroutine
        frames), else the last ``n`` lines."""
        tail = list(self.crash_report) or list(self.stderr_tail)[-n:]
        return ("\n" + "\n".join(tail)) if tail else ""

    def crash_error(self, context: str) -> PluginCrashed:
        """The error for a process that died; waits briefly for its exit code and last stderr lines."""
        try:
            code: int | None = self.proc.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            code = None
        self._join_pumps()
        what = describe_exit(code) if code is not None else "an unresponsive process"
        err = PluginCrashed(self.key, f"crashed ({what}) during {context}" + self.tail_text(), code)
        self._write_log(f"agent: integration {self.key} crashed ({what}) during {context}\n".encode())
        return err

    def _join_pumps(self, timeout: float = 2.0) -> None:
        for t in self._threads:
            t.join(timeout)

    def stop(self, grace: float = STOP_GRACE) -> int | None:
        """Ends the process (it may already be asked to shut down): SIGTERM, then SIGKILL to its group."""
        proc = self.proc
        try:
            if proc.stdin is not None and not proc.stdin.closed:
                proc.stdin.close()  # our plugins stop on stdin EOF
        except OSError:
            pass
        code: int | None = None
        try:
            code = proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    code = proc.wait(timeout=grace)
                    break
                except subprocess.TimeoutExpired:
                    continue
        # Whatever the plugin itself started dies with it.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._join_pumps()
        self._close_log()
        return code


def describe_exit(code: int | None) -> str:
    if code is None:
        return "no exit code"
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


