#!/usr/bin/env python3
"""Benchmark of the git processing engine (``pinpoint_agent.git``).

Usage: ``bench/git_bench.py [REPO] [--commits N] [--cache DIR] [--workers N] [--rounds N] [--profile]
[--renames]``

Without REPO it generates (once, cached under ``--cache``, default ``/tmp/pinpoint-git-bench``) a
repository of
``--commits`` commits (default 20,000) with ``git fast-import``: ~2,000 text files of a few hundred
lines in nested
folders, 1–6 files changed per commit by line edits, inserts and deletes, added and deleted files, binary
files,
feature branches merged into ``main`` with merge commits (and some left unmerged), deterministic (seeded).

It prints, in one run: full history with per-file stats vs ``git log --numstat --no-renames`` on the same repo
(time, commits/s, ratio), metadata + branches without file stats, an unchanged rerun, and the peak RSS.
Every emitted object is serialised with orjson, as the agent does before it writes.

``--profile`` adds, for the full-history run, where the time goes: CPU of each kind of git child (sampled from
``/proc`` while it runs, with each child's peak RSS), CPU of the Python process split into parsing/building
and writing (the ``emit`` callback), and how long the consumer waited for git. ``--renames`` also times the
full history with rename detection (``git_renames``) against the run without. ``--verify`` compares every
commit's per-file and total numbers with ``git log --numstat --no-renames --diff-merges=first-parent``.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import orjson
import xxhash

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pinpoint_agent.git import GitFetch, process_repo  # noqa: E402

_WORDS = (
    "alpha beta gamma delta return if else for while import from class def self value item result error "
    "config request response user repo commit branch merge export session state output token plugin"
).split()


def _line_pool(rng: random.Random, size: int = 30_000) -> list[str]:
    """Distinct-looking source lines to draw from (drawing words per line dominates generation time)."""
    return [
        "    " * rng.randint(0, 3) + " ".join(rng.choices(_WORDS, k=rng.randint(2, 9))) + f" # {i}"
        for i in range(size)
    ]


class _Generator:
    """Writes a fast-import stream; one in-memory content model per file, blobs referenced by marks."""

    def __init__(self, out: IO[bytes], seed: int) -> None:
        self.out = out
        self.rng = random.Random(seed)
        self.mark = 0
        self.files: dict[str, list[str]] = {}
        self.blob_of: dict[str, int] = {}
        self.time = 1_500_000_000
        self.pool = _line_pool(self.rng)

    def _data(self, payload: bytes) -> None:
        self.out.write(b"data %d\n" % len(payload))
        self.out.write(payload)
        self.out.write(b"\n")

    def _blob(self, payload: bytes) -> int:
        self.mark += 1
        self.out.write(b"blob\nmark :%d\n" % self.mark)
        self._data(payload)
        return self.mark

    def new_file(self, path: str) -> None:
        rng = self.rng
        self.files[path] = rng.choices(self.pool, k=int(rng.lognormvariate(5.0, 0.8)) + 5)

    def edit(self, path: str) -> None:
        rng, lines = self.rng, self.files[path]
        for _ in range(rng.randint(1, 3)):
            at = rng.randint(0, len(lines))
            del lines[at : at + rng.randint(0, 4)]
            lines[at:at] = rng.choices(self.pool, k=rng.randint(0, 8))

    def commit(
        self,
        ref: str,
        changes: list[str],
        deletes: list[str],
        parents: list[int],
        n: int,
        keep: tuple[str, ...] = (),
    ) -> int:
        """Writes blobs for ``changes`` then a commit on ``ref`` with the given parent marks; returns its
        mark."""
        marks = {}
        for path in changes:
            if path.endswith(".bin"):
                payload = self.rng.randbytes(self.rng.randint(200, 4000)) + b"\0"
            else:
                payload = ("\n".join(self.files[path]) + "\n").encode()
            marks[path] = self._blob(payload)
            self.blob_of[path] = marks[path]
        self.mark += 1
        self.time += self.rng.randint(60, 7200)
        who = self.rng.randint(0, 40)
        self.out.write(b"commit %s\nmark :%d\n" % (ref.encode(), self.mark))
        self.out.write(b"author Dev %d <dev%d@example.com> %d +0100\n" % (who, who, self.time))
        self.out.write(b"committer Dev %d <Dev%d@Example.com> %d +0100\n" % (who, who, self.time))
        self._data(b"change %d\n\nbody of change %d touching %d files\n" % (n, n, len(changes)))
        if parents:
            self.out.write(b"from :%d\n" % parents[0])
        for p in parents[1:]:
            self.out.write(b"merge :%d\n" % p)
        for path in deletes:
            self.out.write(b"D %s\n" % path.encode())
        for path, mark in marks.items():
            self.out.write(b"M 100644 :%d %s\n" % (mark, path.encode()))
        for path in keep:  # a merge takes the branch's version of the files the branch touched
            self.out.write(b"M 100644 :%d %s\n" % (self.blob_of[path], path.encode()))
        self.out.write(b"\n")
        return self.mark


def generate(path: Path, commits: int, seed: int = 7) -> None:
    """Creates a bare repo at ``path`` with about ``commits`` commits (see the module docstring)."""
    tmp = path.with_name(path.name + ".tmp")
    subprocess.run(["rm", "-rf", str(tmp)], check=True)
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(tmp)], check=True)
    proc = subprocess.Popen(["git", "fast-import", "--quiet"], cwd=tmp, stdin=subprocess.PIPE)
    assert proc.stdin is not None
    gen = _Generator(proc.stdin, seed)
    rng = gen.rng
    dirs = [f"src/mod{i}/sub{j}" for i in range(20) for j in range(5)]
    for i in range(2000):
        gen.new_file(f"{rng.choice(dirs)}/file_{i}.py")
    paths = sorted(gen.files)
    odd = set(paths[1::2])  # during a branch's life, the branch edits odd files and main even ones
    gen.commit("refs/heads/main", paths[:300], [], [], 0)
    main, n, branch_no = gen.mark, 1, 0
    pool = paths[300:]
    while n < commits:
        if rng.random() < 0.08:
            branch_no += 1
            head, ref, touched = main, f"refs/heads/feature/{branch_no}", set()
            for _ in range(rng.randint(2, 12)):
                changed = [p for p in rng.sample(paths, rng.randint(1, 5)) if p in odd] or [paths[1]]
                for p in changed:
                    gen.edit(p)
                touched.update(changed)
                head = gen.commit(ref, changed, [], [head], n)
                n += 1
                if rng.random() < 0.3:
                    changed = [p for p in rng.sample(paths, rng.randint(1, 4)) if p not in odd] or [paths[0]]
                    for p in changed:
                        gen.edit(p)
                    main = gen.commit("refs/heads/main", changed, [], [main], n)
                    n += 1
            if rng.random() < 0.9:  # merged with a merge commit carrying the branch's files
                main = gen.commit("refs/heads/main", [], [], [main, head], n, keep=tuple(sorted(touched)))
                n += 1
            continue
        changed = rng.sample(paths, rng.randint(1, 6))
        deletes: list[str] = []
        if rng.random() < 0.03 and pool:
            changed.append(pool.pop())
        if rng.random() < 0.01:
            b = f"assets/img_{n}.bin"
            gen.files[b] = []
            paths.append(b)
            changed.append(b)
        if rng.random() < 0.005:
            victim = rng.choice(paths)
            if victim not in changed:
                deletes.append(victim)
        for p in changed:
            if not p.endswith(".bin"):
                gen.edit(p)
        main = gen.commit("refs/heads/main", changed, deletes, [main], n)
        n += 1
    proc.stdin.close()
    if proc.wait() != 0:
        raise SystemExit("git fast-import failed")
    refs = subprocess.run(
        ["git", "for-each-ref", "--format=%(refname)", "refs/heads/feature/"],
        cwd=tmp,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    doomed = [r for r in refs if int(r.rsplit("/", 1)[1]) % 7]  # most finished branches get deleted
    subprocess.run(
        ["git", "update-ref", "--stdin"],
        cwd=tmp,
        check=True,
        input="".join(f"delete {r}\n" for r in doomed).encode(),
    )
    subprocess.run(["git", "gc", "-q"], cwd=tmp, check=True)
    subprocess.run(["git", "commit-graph", "write", "--reachable"], cwd=tmp, check=True)
    tmp.rename(path)


class _ChildSampler:
    """Samples this process's children from ``/proc`` every 50 ms: CPU seconds and peak RSS per child, by
    the kind of git command (its argv up to the first option)."""

    def __init__(self) -> None:
        self.cpu: dict[int, tuple[str, float]] = {}
        self.hwm: dict[str, int] = {}
        self.timeline: list[tuple[float, dict[str, int], float]] = []  # (time, live kinds, CPU s so far)
        self._start = time.perf_counter()
        self._own0 = sum(os.times()[:2])  # this process's CPU before the run
        self._stop = threading.Event()
        self._tick = os.sysconf("SC_CLK_TCK")
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _ChildSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _children(self) -> list[int]:
        pids: list[int] = []
        for task in os.listdir(f"/proc/{os.getpid()}/task"):
            try:
                with open(f"/proc/{os.getpid()}/task/{task}/children") as f:
                    pids += [int(p) for p in f.read().split()]
            except OSError:
                continue
        return pids

    def _sample(self) -> None:
        live: dict[str, int] = {}
        for pid in self._children():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                with open(f"/proc/{pid}/status") as f:
                    hwm = next((int(ln.split()[1]) for ln in f if ln.startswith("VmHWM:")), 0)
            except (OSError, StopIteration):
                continue
            words = [a.decode() for a in argv[:3] if a and not a.startswith(b"-")]
            kind = " ".join(words[:2])
            if not kind.startswith("git"):
                continue  # exited and not yet reaped, or forked and not yet exec'd
            self.cpu[pid] = (kind, (int(fields[11]) + int(fields[12])) / self._tick)
            self.hwm[kind] = max(self.hwm.get(kind, 0), hwm)
            live[kind] = live.get(kind, 0) + 1
        own = sum(os.times()[:2]) - self._own0
        self.timeline.append((time.perf_counter() - self._start, live, sum(c for _, c in self.cpu.values()) + own))

    def phases(self, step: float = 2.0) -> list[str]:
        """The run in slices of ``step`` seconds: the git children alive and the cores used (git + Python)."""
        rows: list[str] = []
        last_t, last_cpu, i = 0.0, 0.0, 0
        while i < len(self.timeline):
            j = i
            while j < len(self.timeline) and self.timeline[j][0] < last_t + step:
                j += 1
            t, _, cpu = self.timeline[j - 1] if j > i else self.timeline[i]
            kinds: dict[str, int] = {}
            for _, live, _ in self.timeline[i:j]:
                for k, n in live.items():
                    kinds[k] = max(kinds.get(k, 0), n)
            alive = ", ".join(f"{k.removeprefix('git ')} x{n}" for k, n in sorted(kinds.items())) or "-"
            if t > last_t:
                rows.append(f"{last_t:6.1f}-{t:5.1f} s  cores {(cpu - last_cpu) / (t - last_t):4.2f}  {alive}")
            last_t, last_cpu, i = t, cpu, max(j, i + 1)
        return rows

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self._sample()

    def by_kind(self) -> dict[str, tuple[int, float]]:
        out: dict[str, tuple[int, float]] = {}
        for kind, secs in self.cpu.values():
            n, total = out.get(kind, (0, 0.0))
            out[kind] = (n + 1, total + secs)
        return out


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    import logging

    logging.basicConfig(level=logging.WARNING, format="  [%(name)s] %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("repo", nargs="?", type=Path, help="an existing repository (default: generate one)")
    parser.add_argument("--commits", type=int, default=20_000)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/pinpoint-git-bench"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1, help="repeat full-history runs, keep the best")
    parser.add_argument("--profile", action="store_true", help="where the full-history time goes")
    parser.add_argument("--renames", action="store_true", help="also time rename detection (git_renames)")
    parser.add_argument("--verify", action="store_true", help="compare every commit's numbers with git's")
    args = parser.parse_args()
    repo = args.repo
    if repo is None:
        repo = args.cache / f"gen-{args.commits}-v1.git"
        if not repo.exists():
            args.cache.mkdir(parents=True, exist_ok=True)
            print(f"generating {repo} ...", flush=True)
            print(f"  generated in {_timed(lambda: generate(repo, args.commits)):.1f}s", flush=True)
    git = ["git", "-C", str(repo)]
    commits = int(subprocess.run([*git, "rev-list", "--count", "--branches"], capture_output=True,
                                 text=True, check=True).stdout)
    branches = len(subprocess.run([*git, "for-each-ref", "refs/heads/"], capture_output=True, text=True,
                                  check=True).stdout.splitlines())
    print(f"repo {repo}: {commits} commits, {branches} branches, {args.workers} workers, load {_load()}")
    fetch = GitFetch("bench", "bench/repo", "github", str(repo), "https://h/c/@@@sha@@@",
                     "https://h/b/@@@branch@@@")
    emitted: dict[str, int] = {}
    write = [0.0, 0.0]  # wall, CPU seconds in emit

    def emit(model: str, objects: list[dict[str, object]]) -> None:
        w, c = time.perf_counter(), time.thread_time()
        emitted[model] = emitted.get(model, 0) + len(objects)
        for o in objects:
            orjson.dumps(o)
        write[0] += time.perf_counter() - w
        write[1] += time.thread_time() - c

    def ours(stats: bool, checkpoint: dict[str, object] | None = None, renames: bool = False) -> object:
        return process_repo(fetch, repo, customer_id="bench", checkpoint=checkpoint, emit=emit,
                            file_stats=stats, workers=args.workers, renames=renames)

    def baseline() -> None:
        subprocess.run([*git, "log", "--branches", "--numstat", "--no-renames"], stdout=subprocess.DEVNULL,
                       check=True)

    base, full = float("inf"), float("inf")
    for _ in range(args.rounds):
        base = min(base, _timed(baseline))
        full = min(full, _timed(lambda: ours(True)))
    if args.profile:
        logging.getLogger("pinpoint_agent.git").setLevel(logging.INFO)  # the merge phase's own figures
        _profile(lambda: ours(True), write, base)
        _floors(repo, base, full)
    if args.verify:
        _verify(repo, fetch)
    if args.renames:
        renamed = _timed(lambda: ours(True, renames=True))
        print(f"  {'full history with renames (git_renames)':<46} {renamed:8.2f} s  "
              f"{(renamed / full - 1) * 100:+.0f} % vs without")
    result: list[object] = []
    meta = _timed(lambda: result.append(ours(False)))
    rerun = _timed(lambda: ours(False, result[0].checkpoint))  # type: ignore[attr-defined]
    rows = [
        ("git log --numstat --no-renames (1 process)", base),
        ("full history with file stats (ours)", full),
        ("metadata + branches, no file stats", meta),
    ]
    for label, secs in rows:
        print(f"  {label:<46} {secs:8.2f} s  {commits / secs:9.0f} commits/s")
    print(f"  {'ratio full/git log (goal <= 0.7)':<46} {full / base:8.2f}")
    print(f"  {'metadata + branches per 10k commits':<46} {meta * 10_000 / commits:8.2f} s")
    print(f"  {'unchanged rerun (skipped)':<46} {rerun * 1000:8.1f} ms")
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"  peak RSS: python {me:.0f} MiB, largest git child {kids:.0f} MiB; load after {_load()}")


def _profile(run: Callable[[], Any], write: list[float], base: float) -> None:
    """One more full-history run, measured: git children by kind, Python parse/build vs write, waiting."""
    write[0] = write[1] = 0.0
    self0 = resource.getrusage(resource.RUSAGE_SELF)
    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    with _ChildSampler() as sampler:
        wall = _timed(run)
    self1 = resource.getrusage(resource.RUSAGE_SELF)
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    git_total = (kids1.ru_utime - kids0.ru_utime) + (kids1.ru_stime - kids0.ru_stime)
    py = (self1.ru_utime - self0.ru_utime) + (self1.ru_stime - self0.ru_stime)
    print(f"  profile of one full-history run: {wall:.2f} s wall, ratio {wall / base:.2f}")
    for kind, (n, cpu) in sorted(sampler.by_kind().items(), key=lambda kv: -kv[1][1]):
        print(f"    git child {kind + f' x{n}':<34} {cpu:8.2f} s CPU   peak RSS {sampler.hwm[kind] / 1024:6.0f} MiB")
    print(f"    {'git children, all (rusage)':<44} {git_total:8.2f} s CPU  ({git_total / wall:.2f} cores)")
    print(f"    {'python: parse + build commits':<44} {py - write[1]:8.2f} s CPU")
    print(f"    {'python: write (emit, orjson)':<44} {write[1]:8.2f} s CPU  ({write[0]:.2f} s wall)")
    print(f"    {'python, all threads':<44} {py:8.2f} s CPU  ({py / wall:.2f} cores)")
    print(f"    {'both cores would allow at best':<44} {(git_total + py) / 2:8.2f} s wall")
    print("    timeline (git children alive, cores used by git and Python):")
    for row in sampler.phases(max(1.0, wall / 25)):
        print(f"      {row}")


def _floors(repo: Path, base: float, full: float) -> None:
    """What git itself takes for the same work: with merges diffed against their first parent (as we do), and
    the no-merges floor split over two ``diff-tree --stdin`` processes (contiguous halves of the history)."""
    git = ["git", "-C", str(repo)]
    same = _timed(lambda: subprocess.run(
        [*git, "log", "--branches", "--numstat", "--no-renames", "--diff-merges=first-parent"],
        stdout=subprocess.DEVNULL, check=True))
    shas = subprocess.run([*git, "rev-list", "--branches", "--no-merges"], capture_output=True,
                          check=True).stdout.splitlines()
    half = len(shas) // 2

    def split() -> None:
        procs = [subprocess.Popen([*git, "diff-tree", "--stdin", "--root", "--numstat", "--no-renames"],
                                  stdin=subprocess.PIPE, stdout=subprocess.DEVNULL) for _ in range(2)]
        feeders = [threading.Thread(target=p.communicate, args=(b"\n".join(part) + b"\n",))
                   for p, part in zip(procs, (shas[:half], shas[half:]), strict=True)]
        for t in feeders:
            t.start()
        for t in feeders:
            t.join()

    two = _timed(split)
    print(f"  floors beside the one-process git log ({base:.2f} s):")
    print(f"    {'git log, merges vs first parent (our work)':<44} {same:8.2f} s  ours/this {full / same:.2f}")
    print(f"    {'no merges, split over 2 diff-tree processes':<44} {two:8.2f} s  "
          f"{base / two:.2f}x faster than 1 process")


def _digest(files: list[tuple[str, int, int]]) -> tuple[int, int, int, str]:
    rows = sorted(files)
    body = "\0".join(f"{p}\t{a}\t{d}" for p, a, d in rows).encode()
    return sum(a for _, a, _ in rows), sum(d for _, _, d in rows), len(rows), xxhash.xxh64_hexdigest(body)


def _verify(repo: Path, fetch: GitFetch) -> None:
    """Every commit's files (path, additions, deletions) and totals against git's own numstat."""
    ours: dict[str, tuple[int, int, int, str]] = {}

    def collect(model: str, objects: list[dict[str, Any]]) -> None:
        if model == "sourcecode.Commit":
            for o in objects:
                files = [(f["path"], f["additions"], f["deletions"]) for f in o["files"]]
                assert (o["additions"], o["deletions"], o["files_changed"]) == _digest(files)[:3]
                ours[o["sha"]] = _digest(files)

    process_repo(fetch, repo, customer_id="bench", checkpoint=None, emit=collect, file_stats=True)
    out = subprocess.Popen(["git", "-C", str(repo), "log", "--branches", "--numstat", "--no-renames",
                            "--diff-merges=first-parent", "-z", "--format=%x01%H"], stdout=subprocess.PIPE)
    assert out.stdout is not None
    theirs: dict[str, tuple[int, int, int, str]] = {}
    sha, rest = "", b""
    files: list[tuple[str, int, int]] = []
    for chunk in iter(lambda: out.stdout.read(1 << 20), b""):  # type: ignore[union-attr]
        tokens = (rest + chunk).split(b"\0")
        rest = tokens.pop()
        for tok in tokens:
            tok = tok.lstrip(b"\n")
            if tok.startswith(b"\x01"):
                if sha:
                    theirs[sha] = _digest(files)
                sha, files = tok[1:].decode(), []
            elif tok:
                a, d, p = tok.split(b"\t", 2)
                files.append((p.decode("utf-8", "replace"), 0 if a == b"-" else int(a), 0 if d == b"-" else int(d)))
    out.wait()
    if sha:
        theirs[sha] = _digest(files)
    bad = [s for s in theirs if ours.get(s) != theirs[s]]
    extra = set(ours) - set(theirs)
    print(f"  verify: {len(theirs)} commits compared with git log --numstat (first parent for merges): "
          f"{len(bad)} differ, {len(extra)} extra" + (f"; first: {bad[:3]}" if bad else ""))


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
