"""Streams the commits to export as ``sourcecode.Commit`` dicts, with file stats computed by git in parallel.

Without file stats one ``git log -z`` lists the commits. With file stats:

1. ``git rev-list --parents`` lists the commits (reachable from the tips, not from the excluded old
   heads) into a compact work list: one ``sha [first-parent]`` line each, ~85 bytes per commit.
2. ``workers`` long-running ``git diff-tree --stdin`` processes compute ``--raw --numstat`` (a merge
   against its first parent only, a root commit against the empty tree). Each worker takes *contiguous*
   chunks of the list from its own segment (git's delta-base cache makes neighbouring commits cheap;
   interleaving them costs ~20% more CPU); a worker whose segment runs out takes the back half of the
   largest remaining one, so the workers finish together. A :class:`_Window` keeps at most ``_WINDOW``
   commits in flight per worker, so that stealing sees where each worker really is.
3. A reader thread per worker parses the output as it comes and hands batches to the consumer through a
   bounded queue, so memory stays flat in history length.
4. Without rename detection, merges are set aside in step 1 and done last by ``_merges``: most of their
   first-parent file pairs were already diffed by step 2 (its workers remember them), the rest are diffed
   as synthetic trees. With renames (``-M``) a pair's numbers depend on the other files, so merges go
   through step 2 like every commit.
"""

from __future__ import annotations

import fcntl
import logging
import queue
import subprocess
import tempfile
import threading
import time
from array import array
from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from ._cmd import GIT
from ._commits import FORMAT, CommitBuilder, CommitContext, parse_commits
from ._merges import PairCache, merge_batches, pair_cache_safe

__all__ = ["stream_commits"]

log = logging.getLogger(__name__)

_CHUNK = 128  # commits handed to a worker at once
_WINDOW = 2 * _CHUNK  # commits in flight per worker
_BATCH = 500  # commits per batch handed to the consumer
_READ = 1 << 18

_DIFF_ARGS = [
    "diff-tree",
    "--stdin",
    "--always",
    "--root",
    "-z",
    "--no-ext-diff",
    "--no-textconv",
    "--raw",
    "--numstat",
    "--no-abbrev",
    f"--format={FORMAT}",
]


class _WorkList:
    """The commits to diff as one byte buffer of lines, handed out in contiguous chunks (thread-safe)."""

    def __init__(self, lines: Iterator[bytes], workers: int, split_merges: bool = False) -> None:
        self.buf = bytearray()
        self.merges = bytearray()  # with split_merges: the merges, set aside for ``_merges``
        self.starts = array("Q")
        for line in lines:
            parts = line.split()
            if not parts:
                continue
            if split_merges and len(parts) > 2:
                self.merges += parts[0] + b" " + parts[1] + b"\n"
                continue
            self.starts.append(len(self.buf))
            self.buf += b" ".join(parts[:2]) + b"\n"  # a merge is diffed against its first parent only
        self.starts.append(len(self.buf))
        n = len(self)
        bounds = [n * i // max(1, workers) for i in range(max(1, workers) + 1)]
        self._segments = [[bounds[i], bounds[i + 1]] for i in range(max(1, workers))]
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.starts) - 1

    def take(self, worker: int) -> tuple[bytes, int] | None:
        """The next chunk (lines, count) for ``worker``; steals half of the largest segment when its own is
        done."""
        with self._lock:
            seg = self._segments[worker]
            if seg[0] >= seg[1]:
                victim = max(self._segments, key=lambda s: s[1] - s[0])
                if victim[1] - victim[0] < 2 * _CHUNK:
                    seg[0] = seg[1] = 0
                    if victim[1] <= victim[0]:
                        return None
                    seg[0], seg[1] = victim[0], victim[1]  # too small to split: take it all
                    victim[0] = victim[1]
                else:
                    mid = (victim[0] + victim[1]) // 2
                    seg[0], seg[1] = mid, victim[1]
                    victim[1] = mid
            lo, hi = seg[0], min(seg[0] + _CHUNK, seg[1])
            seg[0] = hi
        return bytes(self.buf[self.starts[lo] : self.starts[hi]]), hi - lo


class _Window:
    """Room for commits in flight to one git process. The feeder waits for room for a whole chunk; the reader
    frees commits one by one but wakes the feeder only once a chunk fits (a wake-up per commit cost the
    reader and feeder threads ~1 s of CPU per 60k commits in GIL hand-offs)."""

    def __init__(self, size: int) -> None:
        self._free = size
        self._cond = threading.Condition()

    def take(self, n: int, stop: threading.Event) -> bool:
        """Waits for room for ``n`` commits and takes it; False once ``stop`` is set."""
        with self._cond:
            while self._free < n:
                if stop.is_set():
                    return False
                self._cond.wait(0.2)
            self._free -= n
            return True

    def give(self) -> None:
        with self._cond:
            self._free += 1
            if self._free >= _CHUNK:
                self._cond.notify()


def _grow_pipe(stream: IO[bytes] | None) -> None:
    """A 1 MiB pipe buffer (Linux; the default 64 KiB): fewer, larger reads for the parsing thread."""
    if stream is not None and hasattr(fcntl, "F_SETPIPE_SZ"):
        try:
            fcntl.fcntl(stream.fileno(), fcntl.F_SETPIPE_SZ, _READ * 4)
        except OSError:
            pass  # above /proc/sys/fs/pipe-max-size: the default buffer works, only slower


class _Worker:
    """One git process: a feeder thread writes its stdin, a reader thread parses its stdout into batches."""

    def __init__(
        self,
        argv: list[str],
        cwd: Path,
        env: dict[str, str],
        ctx: CommitContext,
        out: queue.Queue[tuple[str, Any]],
        stop: threading.Event,
        feed: Callable[[IO[bytes], _Window | None], None],
        window: bool,
        cache: PairCache | None = None,
    ) -> None:
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr
        )
        _grow_pipe(self.proc.stdout)
        self.builder = CommitBuilder(ctx)
        self.window = _Window(_WINDOW) if window else None
        self.out, self.stop, self.argv, self.cache = out, stop, argv, cache
        self.threads = [
            threading.Thread(target=self._feed, args=(feed,), daemon=True),
            threading.Thread(target=self._read, daemon=True),
        ]
        for t in self.threads:
            t.start()

    def _feed(self, feed: Callable[[IO[bytes], _Window | None], None]) -> None:
        assert self.proc.stdin is not None
        try:
            feed(self.proc.stdin, self.window)
        except (BrokenPipeError, OSError):
            pass  # the process died or was killed; the reader reports it
        finally:
            try:
                self.proc.stdin.close()
            except OSError:
                pass

    def _put(self, item: tuple[str, Any]) -> None:
        while not self.stop.is_set():
            try:
                self.out.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def _read(self) -> None:
        stdout = self.proc.stdout
        assert stdout is not None
        try:
            batch: list[dict[str, Any]] = []
            for raw in parse_commits(iter(lambda: stdout.read1(_READ), b"")):  # type: ignore[attr-defined]
                if self.window is not None:
                    self.window.give()
                if self.cache is not None:
                    self.cache.learn(raw[1], raw[2])
                batch.append(self.builder.build(raw))
                if len(batch) >= _BATCH:
                    self._put(("batch", batch))
                    batch = []
                if self.stop.is_set():
                    return
            if batch:
                self._put(("batch", batch))
            if self.proc.wait() != 0 and not self.stop.is_set():
                self.stderr.seek(0)
                raise subprocess.CalledProcessError(self.proc.returncode, self.argv, None, self.stderr.read())
            self._put(("done", None))
        except BaseException as exc:  # handed to the consumer thread, which raises it
            self._put(("error", exc))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for t in self.threads:
            t.join(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.stderr.close()


def _write_revs(tips: Sequence[str], exclude: Sequence[str]) -> bytes:
    return "".join([f"{t}\n" for t in tips] + [f"^{x}\n" for x in exclude]).encode()


def stream_commits(
    repo: Path,
    ctx: CommitContext,
    tips: Sequence[str],
    exclude: Sequence[str],
    *,
    env: dict[str, str],
    workers: int = 2,
    users: set[tuple[str, str]] | None = None,
) -> Generator[list[dict[str, Any]], None, None]:
    """Yields batches of commit dicts for the commits reachable from ``tips`` and not from ``exclude``.

    The (lower-cased email, name) pairs of authors and committers are added to ``users`` as the stream ends.
    Failures raise ``subprocess.CalledProcessError`` (translated by the caller).
    """
    revs = _write_revs(tips, exclude)
    cache: PairCache | None = None
    out: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=4 * max(1, workers))
    stop = threading.Event()
    pool: list[_Worker] = []
    try:
        if not ctx.file_stats:

            def feed_revs(stdin: IO[bytes], _: _Window | None) -> None:
                stdin.write(revs)

            argv = [GIT, "log", "-z", f"--format={FORMAT}", "--stdin"]
            pool.append(_Worker(argv, repo, env, ctx, out, stop, feed_revs, window=False))
        else:
            lister = subprocess.Popen(
                [GIT, "rev-list", "--parents", "--stdin"],
                cwd=repo,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            assert lister.stdin is not None and lister.stdout is not None and lister.stderr is not None
            lister.stdin.write(revs)  # rev-list reads all of stdin before it prints anything
            lister.stdin.close()
            objects_dir = None if ctx.renames else pair_cache_safe(repo, env)
            cache = PairCache(objects_dir) if objects_dir is not None else None
            work = _WorkList(iter(lister.stdout), max(1, min(workers, 64)), split_merges=cache is not None)
            err = lister.stderr.read()
            if lister.wait() != 0:
                raise subprocess.CalledProcessError(lister.returncode, lister.args, None, err)
            count = max(1, min(workers, 64, len(work) // _CHUNK + 1))
            for i in range(count):

                def feed_work(stdin: IO[bytes], window: _Window | None, i: int = i) -> None:
                    assert window is not None
                    while (chunk := work.take(i)) is not None and not stop.is_set():
                        lines, n = chunk
                        if not window.take(n, stop):
                            return
                        stdin.write(lines)
                        stdin.flush()

                renames = ["-M"] if ctx.renames else ["--no-renames"]
                argv = [GIT, *_DIFF_ARGS[:1], *renames, *_DIFF_ARGS[1:]]
                pool.append(_Worker(argv, repo, env, ctx, out, stop, feed_work, window=True, cache=cache))
        running = len(pool)
        while running:
            kind, item = out.get()
            if kind == "batch":
                yield item
            elif kind == "done":
                running -= 1
            else:
                raise item
        merge_builder = CommitBuilder(ctx)
        if cache is not None and work.merges:
            started = time.monotonic()
            yield from merge_batches(
                repo, env, bytes(work.merges), cache, merge_builder, workers=max(1, min(workers, 64)), batch=_BATCH
            )
            log.info(
                "git merges: %d in %.2f s after %d other commits; file pairs known %d, diffed %d, cache %d",
                work.merges.count(b"\n"),
                time.monotonic() - started,
                len(work),
                cache.hits,
                cache.misses,
                len(cache.pairs),
            )
        if users is not None:
            users.update(merge_builder.users)
            for w in pool:
                users.update(w.builder.users)
    finally:
        stop.set()
        for w in pool:
            w.close()
