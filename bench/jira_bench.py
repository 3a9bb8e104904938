"""Jira benchmark: a full export of N issues (with change logs and comments) from the fake Jira Cloud at a fixed
per-request latency, through the agent's export path (real plugin process, session manager, dedup, gzip output),
and the request count of an unchanged incremental export right after.

    .venv/bin/python bench/jira_bench.py [--issues 10000] [--projects 10] [--latency 0.05]

Floors, measured in the same run from the requests the export made: the serial floor (every request one after
another, latency only) and the parallel floor (the same requests spread over all request slots). The export is
run twice: sequential (one project and one request at a time) and with the default concurrency, to show it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.jira.conftest import agent_export  # noqa: E402
from tests.jira.fake_jira import FakeJira  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--issues", type=int, default=10_000)
    ap.add_argument("--projects", type=int, default=10)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--comments", type=int, default=3, help="comments per issue (every 50th issue gets 25 more)")
    ap.add_argument("--histories", type=int, default=3, help="change log entries per issue")
    args = ap.parse_args()
    per_project = args.issues // args.projects
    print(f"fake Jira Cloud: {args.projects} projects x {per_project} issues, {args.comments} comments and "
          f"{args.histories} status changes each, {args.latency * 1000:.0f} ms per request")
    runs = [("sequential (concurrency 1, 1 request in flight)", {"concurrency": 1, "max_requests_in_flight": 1}),
            ("default (concurrency 4, 8 requests in flight)", {})]
    for label, extra in runs:
        with FakeJira(cloud=True, latency=0.0, projects=args.projects, issues_per_project=per_project,
                      comments_per_issue=args.comments, histories_per_issue=args.histories) as fake, \
                tempfile.TemporaryDirectory() as tmp:
            for n, issue in enumerate(fake.data.issues.values()):
                if n % 50 == 0:
                    for c in range(25):
                        fake.data.add_comment(issue, c % 3, f"extra {c}", advance=False)
            fake.latency = args.latency
            config = fake.config(**extra)
            t = time.perf_counter()
            run = agent_export(Path(tmp) / "root", config)
            wall = time.perf_counter() - t
            assert run.integration["error"] == "", run.integration
            issues = len(run.objects.get("work.Issue", []))
            comments = len(run.objects.get("work.IssueComment", []))
            requests = len(fake.requests)
            slots = extra.get("max_requests_in_flight", 8)
            serial = requests * args.latency
            parallel = serial / slots
            print(f"\n{label}")
            print(f"  full export: {issues} issues, {comments} comments in {wall:.2f} s"
                  f" = {issues / wall:,.0f} issues/s; {requests} requests ({fake.count('/search/jql')} searches,"
                  f" {fake.count('/comment')} comment pages, {fake.count('/changelog')} change log pages);"
                  f" peak in flight at the fake {fake.peak_in_flight}")
            print(f"  floors: serial {serial:.2f} s (x{wall / serial:.2f} of it), "
                  f"parallel over {slots} slots {parallel:.2f} s (x{wall / parallel:.2f} of it)")
            fake.reset_counts()
            t = time.perf_counter()
            again = agent_export(Path(tmp) / "root", config)
            wall2 = time.perf_counter() - t
            written = sum(len(v) for v in again.objects.values())
            print(f"  unchanged incremental export: {len(fake.requests)} requests "
                  f"({fake.count('/search/jql')} searches), {written} objects written, {wall2:.2f} s")


if __name__ == "__main__":
    main()
