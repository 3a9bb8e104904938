"""Parsing git's ``-z`` commit stream and building ``sourcecode.Commit`` dicts from it.

git prints each commit as :data:`FORMAT` (NUL-separated header fields), one NUL, then, with file stats, the
``--raw`` entries (``:modes oids STATUS`` NUL ``path`` NUL) followed by the ``--numstat`` entries
(``added TAB deleted TAB path`` NUL), in the same order. With rename detection a renamed file's raw entry
is ``:modes oids R<score>`` NUL ``old path`` NUL ``new path`` NUL and its numstat entry ``added TAB deleted TAB``
NUL ``old path`` NUL ``new path`` NUL. The parser is a small state machine over the
NUL-separated tokens, fed by chunks, so memory stays flat whatever the history length.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ..ids import git_user_ref_id
from ._hash import fast_commit_id, fast_hashcode

__all__ = ["FORMAT", "CommitBuilder", "CommitContext", "RawCommit", "parse_commits"]

#: sha, author name/email, committer name/email, "committer-unix committer-iso8601", raw message.
FORMAT = "%x01%H%x00%an%x00%ae%x00%cn%x00%ce%x00%ct %cI%x00%B%x00"
_HEADER_FIELDS = 6  # after the sha token

_STATUS = {b"A": "added", b"M": "modified", b"D": "removed", b"T": "modified", b"R": "renamed", b"C": "added"}

#: (header fields, [(raw meta, path, old path or b"")], [numstat token])
RawCommit = tuple[list[bytes], list[tuple[bytes, bytes, bytes]], list[bytes]]


def _tokens(chunks: Iterable[bytes]) -> Iterator[bytes]:
    rest = b""
    for chunk in chunks:
        parts = (rest + chunk).split(b"\0") if rest else chunk.split(b"\0")
        rest = parts.pop()
        yield from parts
    if rest:
        yield rest


def parse_commits(chunks: Iterable[bytes]) -> Iterator[RawCommit]:
    """Yields one :data:`RawCommit` per commit found in git's output ``chunks`` (any chunk boundaries)."""
    tokens = _tokens(chunks)
    header: list[bytes] | None = None
    raws: list[tuple[bytes, bytes, bytes]] = []
    nums: list[bytes] = []
    for tok in tokens:
        first = tok[:1]
        if first == b"\x01":
            if header is not None:
                yield header, raws, nums
            header = [tok[1:]]
            for _ in range(_HEADER_FIELDS):
                header.append(next(tokens))
            raws, nums = [], []
        elif not tok or tok == b"\n":
            continue
        else:
            if first == b"\n":
                tok, first = tok[1:], tok[1:2]
            if header is None:
                raise ValueError(f"git output does not start with a commit header: {tok[:60]!r}")
            if first == b":":
                path = next(tokens)  # the path token, whatever bytes it holds
                if tok[-1:].isdigit():  # R<score> or C<score>: the old path, then the new one
                    raws.append((tok, next(tokens), path))
                else:
                    raws.append((tok, path, b""))
            else:
                if tok[-1:] == b"\t":  # a rename's numstat: its paths follow as two tokens
                    next(tokens)
                    next(tokens)
                nums.append(tok)
    if header is not None:
        yield header, raws, nums


@dataclass(frozen=True)
class CommitContext:
    """What every commit of one repo shares."""

    customer_id: str
    ref_type: str
    repo_id: str
    unique_name: str
    commit_url_template: str
    file_stats: bool
    renames: bool = False


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


class CommitBuilder:
    """Turns :data:`RawCommit` into ``sourcecode.Commit`` dicts and remembers the (email, name) pairs seen.

    Not thread-safe: use one per thread and merge their ``users``.
    """

    def __init__(self, ctx: CommitContext) -> None:
        self.ctx = ctx
        self.users: set[tuple[str, str]] = set()
        self._refs: dict[str, str] = {}

    def _user_ref(self, email: str, name: str) -> str:
        lower = email.lower()
        self.users.add((lower, name))
        ref = self._refs.get(lower)
        if ref is None:
            ref = self._refs[lower] = git_user_ref_id(self.ctx.customer_id, lower)
        return ref

    def build(self, raw: RawCommit) -> dict[str, Any]:
        """The commit dict (fields in alphabetical order, ``hashcode`` computed last)."""
        (sha_b, an, ae, cn, ce, date, message), raws, nums = raw
        ctx, sha = self.ctx, sha_b.decode()
        unix, _, iso = date.partition(b" ")
        rfc3339 = iso.decode()
        sign = -1 if rfc3339[-6:-5] == "-" else 1
        offset = sign * (int(rfc3339[-5:-3]) * 60 + int(rfc3339[-2:])) if rfc3339[-6:-5] in "+-" else 0
        obj: dict[str, Any] = {}
        if ctx.file_stats:
            files = _files(raws, nums, ctx.renames)
            obj["additions"] = sum(f["additions"] for f in files)
        obj["author_ref_id"] = self._user_ref(_text(ae), _text(an))
        obj["committer_ref_id"] = self._user_ref(_text(ce), _text(cn))
        obj["created_date"] = {"epoch": int(unix) * 1000, "offset": offset, "rfc3339": rfc3339}
        obj["customer_id"] = ctx.customer_id
        if ctx.file_stats:
            obj["deletions"] = sum(f["deletions"] for f in files)
            obj["files"] = files
            obj["files_changed"] = len(files)
        obj["id"] = fast_commit_id(ctx.customer_id, sha, ctx.ref_type, ctx.repo_id)
        obj["identifier"] = f"{ctx.unique_name}#{sha[:7]}"
        obj["message"] = _text(message).rstrip("\n")
        obj["ref_id"] = sha
        obj["ref_type"] = ctx.ref_type
        obj["repo_id"] = ctx.repo_id
        obj["sha"] = sha
        obj["url"] = ctx.commit_url_template.replace("@@@sha@@@", sha)
        obj["hashcode"] = fast_hashcode(obj)
        return obj


def _files(raws: list[tuple[bytes, bytes, bytes]], nums: list[bytes], renames: bool) -> list[dict[str, Any]]:
    """Per-file stats: the ``--raw`` entry gives the status, the ``--numstat`` entry at the same index the
    lines. With ``renames``, every file also carries ``renamed`` and ``renamed_to`` (the model's rename
    fields; left out otherwise so that objects made without rename detection keep their hashcodes)."""
    if len(raws) != len(nums):
        raise ValueError(f"git printed {len(raws)} raw entries but {len(nums)} numstat entries")
    files = []
    for (meta, path, old), num in zip(raws, nums, strict=True):
        added, deleted, _ = num.split(b"\t", 2)
        binary = added == b"-"
        letter = meta[-4:-3] if old else meta[-1:]
        entry: dict[str, Any] = {
            "additions": 0 if binary else int(added),
            "binary": binary,
            "deletions": 0 if binary else int(deleted),
            "path": _text(path),
        }
        if renames:
            entry["renamed"] = letter == b"R"
            entry["renamed_from"] = _text(old) if letter == b"R" else ""
            entry["renamed_to"] = entry["path"] if letter == b"R" else ""
        else:
            entry["renamed_from"] = ""
        entry["status"] = _STATUS.get(letter, "modified")
        files.append(entry)
    return files
