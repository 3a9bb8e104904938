"""Branch facts (merged, merge commit, commits not on default, branched-from, ahead/behind) in one graph pass.

One ``git rev-list --topo-order --parents`` over the default head and every branch/PR head, read as a stream:
topological order shows every commit after all its children, so what flows from children to parents is final
when a commit is read, and only the frontier is kept in memory. Per commit it carries

* a bit mask of the heads it is reachable from (bit 0: the default branch). ``ahead`` of head *b* is
  the number
  of commits with bit *b* but not bit 0, ``behind`` the number with bit 0 but not bit *b*; both come from a
  counter of distinct masks (cheap: long runs of history share a mask);
* its *landing*: the oldest commit of the default branch's first-parent chain it is an ancestor of (the
  largest chain index among its children's). A head on default but off the chain was merged by its landing
  commit, and that branch's commits are the head's ancestors with the same landing (those not reachable from
  the merge's first parent).

A head that is not on default has as commits its ancestors not on default. Commits are listed oldest first;
``branched_from_commit_shas`` are the parents, outside the branch, of its first commits.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ._cmd import GIT

__all__ = ["BranchFacts", "branch_facts"]


@dataclass
class BranchFacts:
    """What git says about one head relative to the default branch."""

    merged: bool = False
    merge_commit_sha: str = ""
    commit_shas: list[str] = field(default_factory=list)
    branched_from_commit_shas: list[str] = field(default_factory=list)
    first_commit_sha: str = ""
    ahead_default_count: int = 0
    behind_default_count: int = 0


def _bits(mask: int) -> list[int]:
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out


def branch_facts(
    repo: Path, env: dict[str, str], default_sha: str, heads: Sequence[str]
) -> tuple[str, list[BranchFacts]]:
    """(first commit of the default branch's first-parent chain, facts for each of ``heads`` in order)."""
    d = default_sha.encode()
    at: dict[bytes, int] = {d: 1}
    for i, sha in enumerate(heads):
        at[sha.encode()] = at.get(sha.encode(), 0) | 1 << (i + 1)
    facts = [BranchFacts() for _ in heads]
    pending: dict[bytes, tuple[int, int, bytes]] = {}  # sha -> (mask, landing index, landing sha)
    counter: Counter[int] = Counter()
    merged_by: dict[int, int] = {}  # landing chain index -> mask of the heads it merged
    unmerged = 0
    members: dict[int, list[bytes]] = {}
    parents_of: dict[bytes, list[bytes]] = {}
    next_chain: bytes | None = d
    chain_index, root = 0, d
    revs = b"".join(sha + b"\n" for sha in at)
    proc = subprocess.Popen(
        [GIT, "rev-list", "--topo-order", "--parents", "--stdin"],
        cwd=repo,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.write(revs)
    proc.stdin.close()
    for line in proc.stdout:
        parents = line.split()
        c = parents.pop(0)
        state = pending.pop(c, None)
        own = at.get(c, 0)
        mask, landing, landing_sha = state if state is not None else (0, -1, b"")
        mask |= own
        if c == next_chain:
            landing, landing_sha, root = chain_index, c, c
            chain_index += 1
            next_chain = parents[0] if parents else None
        for bit in _bits(own >> 1):
            f = facts[bit]
            if mask & 1:
                f.merged = True
                if landing_sha != c:  # on default but not on its first-parent chain: merged by a merge commit
                    f.merge_commit_sha = landing_sha.decode()
                    merged_by[landing] = merged_by.get(landing, 0) | 1 << (bit + 1)
            else:
                unmerged |= 1 << (bit + 1)
        counter[mask] += 1
        mine = mask & (merged_by.get(landing, 0) if mask & 1 else unmerged)
        if mine:
            parents_of[c] = parents
            for bit in _bits(mine):
                members.setdefault(bit - 1, []).append(c)
        for p in parents:
            st = pending.get(p)
            if st is None:
                pending[p] = (mask, landing, landing_sha)
            elif landing > st[1]:
                pending[p] = (st[0] | mask, landing, landing_sha)
            else:
                pending[p] = (st[0] | mask, st[1], st[2])
    err = proc.stderr.read()
    if proc.wait() != 0:
        raise subprocess.CalledProcessError(proc.returncode, proc.args, None, err)
    _counts(counter, facts)
    for i, f in enumerate(facts):
        shas = members.get(i, [])[::-1]
        inside = set(shas)
        branched: dict[bytes, None] = {}
        for c in shas:
            ps = parents_of[c]
            if not any(p in inside for p in ps):
                branched.update(dict.fromkeys(ps))
        f.commit_shas = [s.decode() for s in shas]
        f.branched_from_commit_shas = [s.decode() for s in branched]
        f.first_commit_sha = f.commit_shas[0] if shas else heads[i]
    return root.decode(), facts


def _counts(counter: Counter[int], facts: list[BranchFacts]) -> None:
    on_default = sum(n for mask, n in counter.items() if mask & 1)
    both = [0] * len(facts)
    for mask, n in counter.items():
        for bit in _bits(mask >> 1):
            if mask & 1:
                both[bit] += n
            else:
                facts[bit].ahead_default_count += n
    for f, shared in zip(facts, both, strict=True):
        f.behind_default_count = on_default - shared
