"""GitLab benchmark: a full export of N merge requests (each with user notes, a system note, two commits, a
reviewer and, when merged, an approval) from the fake GitLab at a fixed per-request latency, through the real plugin
process, session manager, dedup and gzip output; then an unchanged incremental export, whose requests are
counted. The floor, measured in the same run: the same number of requests the full export sent, sent by bare
httpx clients on as many threads as the export may have requests in flight (``concurrency`` projects times
``detail_concurrency`` merge requests), with nothing done with the answers.

    .venv/bin/python bench/gitlab_bench.py [--mrs 5000] [--projects 5] [--latency 0.005] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.gitlab.conftest import agent_export  # noqa: E402
from tests.gitlab.fake_data import FakeData  # noqa: E402
from tests.gitlab.fake_gitlab import USER_TOKEN, FakeGitLab  # noqa: E402


def floor(url: str, requests: int, concurrency: int) -> float:
    """Seconds for ``requests`` GETs of one small merge request page on ``concurrency`` threads."""
    per = [requests // concurrency + (1 if i < requests % concurrency else 0) for i in range(concurrency)]

    def run(n: int) -> None:
        with httpx.Client(timeout=30, headers={"PRIVATE-TOKEN": USER_TOKEN}) as http:
            for _ in range(n):
                http.get(f"{url}/api/v4/projects/11/merge_requests/1/approvals").raise_for_status()

    t = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(run, per))
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mrs", type=int, default=5000)
    ap.add_argument("--projects", type=int, default=5)
    ap.add_argument("--notes", type=int, default=3, help="user notes per merge request (plus one system note)")
    ap.add_argument("--latency", type=float, default=0.005, help="seconds the fake waits before each answer")
    ap.add_argument("--concurrency", type=int, default=4, help="projects exported at the same time")
    ap.add_argument("--detail-concurrency", type=int, default=4, help="merge requests read at a time per project")
    args = ap.parse_args()
    per = args.mrs // args.projects
    counts = {f"acme/p{i}": per for i in range(args.projects)}

    def data(base: str) -> FakeData:
        return FakeData(base, mrs_per_project=counts, notes_per_mr=args.notes)

    with FakeGitLab(latency=args.latency, limit=10**9, data=data) as fake, tempfile.TemporaryDirectory() as tmp:
        for p in fake.data.projects.values():
            p.archived = False  # every generated project counts
        config = {"url": fake.url, "access_token": USER_TOKEN, "groups": ["acme"], "per_page": 100,
                  "concurrency": args.concurrency, "detail_concurrency": args.detail_concurrency}
        root = Path(tmp) / "root"
        t = time.perf_counter()
        full = agent_export(root, config)
        full_s = time.perf_counter() - t
        assert full.integration["error"] == "", full.integration["error"]
        mrs = len(full.objects.get("sourcecode.PullRequest", []))
        full_requests = len(fake.requests)
        notes = len(full.objects.get("sourcecode.PullRequestComment", []))
        reviews = len(full.objects.get("sourcecode.PullRequestReview", []))

        fake.reset_counts()
        t = time.perf_counter()
        again = agent_export(root, config)
        again_s = time.perf_counter() - t
        assert again.integration["incremental"], "the second export was not incremental"
        again_requests = len(fake.requests)
        again_mrs = len(again.objects.get("sourcecode.PullRequest", []))

        in_flight = args.concurrency * args.detail_concurrency
        floor_s = floor(fake.url, full_requests, in_flight)

    print(f"fake GitLab: {args.projects} projects, {mrs} merge requests, {notes} notes, {reviews} reviews, "
          f"latency {args.latency * 1000:.1f} ms/request, concurrency {args.concurrency} projects x "
          f"{args.detail_concurrency} merge requests")
    print(f"full export:        {full_s:7.2f} s  {mrs / full_s:8.1f} MRs/s  {full_requests} requests "
          f"({full_requests / mrs:.2f} per MR)")
    print(f"floor (bare GETs):  {floor_s:7.2f} s  {mrs / floor_s:8.1f} MRs/s  same {full_requests} requests on "
          f"{in_flight} threads")
    print(f"ratio export/floor: {full_s / floor_s:7.2f}")
    print(f"unchanged incremental export: {again_s:.2f} s, {again_requests} requests, {again_mrs} merge requests "
          f"written")


if __name__ == "__main__":
    main()
