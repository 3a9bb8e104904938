"""Exports of the fake org through the agent: the github plugin as a real process, the real session manager,
state store and output files."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pinpoint_agent import ids
from tests.github.conftest import CUSTOMER, agent_export
from tests.github.fake_data import node_id
from tests.github.fake_github import TOKEN, FakeGitHub

# Requests of the fake org at per_page 2 (see the report in test_request_counts_full_vs_incremental):
# members 2 (GraphQL) + repos 2 + pulls 3+2+1+1 + who merged/closed, one GraphQL query per page with a closed
# PR (api 3, web 1, docs 1) + 2 per PR (commits, reviews) x 9 + comments (3+1)+(2+1)+(1+1)+(1+1)
FULL_REQUESTS = 2 + 2 + 7 + 5 + 18 + 11
# members 2 + repos 2 + one conditional first page per repo (304: free on GitHub)
INCREMENTAL_UNCHANGED = 2 + 2 + 4


def by_ref(objs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["ref_id"]: o for o in objs}


def test_full_export_produces_every_model_with_ids_per_the_formulas(
    fake: FakeGitHub, gh_config: dict[str, Any], agent_root: Path
) -> None:
    """A first export sends users, commit users (as git users), repos, PRs with commits/reviews/comments and
    queues git for every repo with its PR heads, with ids computed by the agreed formulas."""
    run = agent_export(agent_root, gh_config)
    assert run.integration["error"] == "" and not run.integration["incremental"]
    assert [p["error"] for p in run.integration["projects"]] == ["", "", "", ""]
    o = run.objects
    users = by_ref([u for u in o["sourcecode.User"] if u["ref_type"] == "github"])
    alice = users[node_id("User", 1001)]
    assert (
        alice["id"] == ids.user_id(CUSTOMER, "github", alice["ref_id"]) and alice["name"] == "Alice Liddell"
    )
    assert {u["username"] for u in users.values()} == {
        "alice",
        "bob",
        "carol",
        "ghost",
        "github-noreply",
        "dependabot[bot]",
        "web-flow",
    }
    git_users = o["sourcecode.CommitUser"]  # the agent turned the links into git users (ref_type "git")
    assert {u["ref_type"] for u in git_users} == {"git"}
    linked = {u["email"]: u for u in git_users}
    assert linked["alice@acme.example"]["associated_ref_id"] == alice["ref_id"]
    assert linked["alice@acme.example"]["id"] == ids.linked_git_user_id(
        CUSTOMER, "alice@acme.example", alice["ref_id"]
    )
    assert linked["noreply@github.com"]["associated_ref_id"] == "github-noreply"
    assert "temp@laptop.local" not in linked  # an email no account claims is left to git processing

    repos = {r["name"]: r for r in o["sourcecode.Repo"]}
    assert (
        set(repos) == {"acme/api", "acme/web", "acme/docs", "acme/legacy"}
        and not repos["acme/legacy"]["active"]
    )
    api = repos["acme/api"]
    assert api["id"] == ids.repo_id(CUSTOMER, "github", node_id("Repository", 100))

    prs = {p["identifier"]: p for p in o["sourcecode.PullRequest"]}
    assert len(prs) == 9
    pr1 = prs["acme/api#1"]
    assert pr1["id"] == ids.pull_request_id(CUSTOMER, node_id("PullRequest", 100001), "github", api["id"])
    assert (pr1["status"], pr1["merged"], pr1["labels"]) == ("MERGED", True, ["feature"])
    assert (
        prs["acme/api#2"]["draft"] and prs["acme/api#3"]["created_by_ref_id"] == "MDQ6VXNlcjEwMTM3"
    )  # ghost
    assert len(pr1["commit_shas"]) == 2
    commits = [c for c in o["sourcecode.PullRequestCommit"] if c["pull_request_id"] == pr1["id"]]
    assert {c["id"] for c in commits} == {
        ids.commit_id(CUSTOMER, s, "github", api["id"]) for s in pr1["commit_shas"]
    }
    assert commits[0]["author_ref_id"] == ids.git_user_ref_id(CUSTOMER, "alice@acme.example")
    reviews = o["sourcecode.PullRequestReview"]
    assert len(reviews) == 9 and {r["state"] for r in reviews} == {
        "APPROVED"
    }  # pending drafts are not exported
    comments = o["sourcecode.PullRequestComment"]
    assert len(comments) == 12 and all(
        c["pull_request_id"] in {p["id"] for p in prs.values()} for c in comments
    )
    assert all(
        len(obj["hashcode"]) == 16 and obj["hashcode"] == ids.hashcode(obj)
        for objs in o.values()
        for obj in objs
    )

    git = {g.request.unique_name: g.request for g in run.git}
    assert set(git) == set(repos)
    assert git["acme/api"].url == f"{fake.url}/acme/api.git" and git["acme/api"].credentials == TOKEN
    assert TOKEN not in git["acme/api"].url
    assert git["acme/api"].commit_url_template == f"{fake.url}/acme/api/commit/@@@sha@@@"
    heads = {p.branch_name: p.last_commit_sha for p in git["acme/api"].prs}
    assert len(heads) == 5 and heads["feature-1"] == fake.data.find_pr("api", 1)["head"]["sha"]
    assert fake.count() == FULL_REQUESTS
    assert all(r.path.startswith(("/api/v3/", "/api/graphql")) for r in fake.requests)  # Enterprise layout


def test_incremental_export_sends_only_what_changed(
    fake: FakeGitHub, gh_config: dict[str, Any], agent_root: Path
) -> None:
    """After a full export, an unchanged org costs one free 304 per repo; after one PR changes, only that PR
    (and its children) is read and sent."""
    agent_export(agent_root, gh_config)
    fake.reset_counts()
    quiet = agent_export(agent_root, gh_config)
    assert quiet.integration["incremental"] and quiet.integration["error"] == ""
    assert "sourcecode.PullRequest" not in quiet.objects and "sourcecode.Repo" not in quiet.objects
    assert fake.count() == INCREMENTAL_UNCHANGED
    assert [r.status for r in fake.requests if "/pulls?" in r.target] == [
        200
    ] * 4  # first ETag after a full sync
    fake.reset_counts()
    agent_export(agent_root, gh_config)
    assert [r.status for r in fake.requests if "/pulls?" in r.target] == [304] * 4

    fake.data.touch_pr("api", 2, title="Retitled")
    fake.reset_counts()
    changed = agent_export(agent_root, gh_config)
    prs = changed.objects["sourcecode.PullRequest"]
    assert [(p["identifier"], p["title"]) for p in prs] == [("acme/api#2", "Retitled")]
    assert fake.count("/acme/api/pulls/2/commits") == 1 and fake.count("/pulls/1/commits") == 0
    assert (
        "sourcecode.PullRequestCommit" not in changed.objects
    )  # read again, unchanged: the agent's dedup drops them
    assert [g.request.prs[0].branch_name for g in changed.git if g.request.prs] == ["feature-2"]
    # members 2 + repos 2 + api: pulls page 1 (200) + who closed #2 (GraphQL) + commits + reviews
    # + comments 1+1; the 3 other repos: a 304 each
    assert fake.count() == 2 + 2 + 1 + 1 + 2 + 2 + 3


def test_a_repo_that_404s_mid_export_is_reported_and_the_rest_go_on(
    fake: FakeGitHub, gh_config: dict[str, Any], agent_root: Path
) -> None:
    """A repo listed but gone when its pull requests are read fails in its own project; the others export."""
    fake.gone.add("web")
    run = agent_export(agent_root, gh_config)
    errors = {p["name"]: p["error"] for p in run.integration["projects"]}
    assert "404" in errors["acme/web"] and "/repos/acme/web/pulls" in errors["acme/web"]
    assert [e for n, e in errors.items() if n != "acme/web"] == ["", "", ""]
    assert run.integration["error"] == ""
    assert {p["identifier"].split("#")[0] for p in run.objects["sourcecode.PullRequest"]} == {
        "acme/api",
        "acme/docs",
    }
    assert "acme/web" not in {g.request.unique_name for g in run.git}


def test_rate_limit_in_the_middle_of_a_page_walk_pauses_and_resumes(
    fake: FakeGitHub, gh_config: dict[str, Any], agent_root: Path
) -> None:
    """A primary rate limit on page 2 of a PR walk sends SendPauseEvent then SendResumeEvent to the agent, and
    the export completes with every PR."""
    fake.rate_limit("/repos/acme/api/pulls?per_page=2&state=all&sort=created&direction=asc&page=2", "primary")
    run = agent_export(agent_root, gh_config)
    assert [e[0] for e in run.events] == ["pause", "resume"]
    assert len(run.objects["sourcecode.PullRequest"]) == 9 and run.integration["error"] == ""
    assert [r.status for r in fake.requests if "/acme/api/pulls?" in r.target] == [200, 403, 200, 200]


def test_a_failed_first_sync_resumes_after_its_last_checkpoint(
    fake: FakeGitHub, gh_config: dict[str, Any], agent_root: Path
) -> None:
    """With a checkpoint per page, a first sync that fails on page 3 keeps pages 1-2; the next run starts at
    page 3 and together they hold every PR exactly once."""
    cfg = {**gh_config, "checkpoint_pages": 1}
    fake.fail(
        "/repos/acme/api/pulls?per_page=2&state=all&sort=created&direction=asc&page=3",
        403,
        times=50,
        message="Resource not accessible by integration",
    )  # not retried (5xx would be, with backoff)
    first = agent_export(agent_root, cfg)
    errors = {p["name"]: p["error"] for p in first.integration["projects"]}
    assert "HTTP 403 Resource not accessible" in errors["acme/api"]
    kept = [
        p["identifier"]
        for p in first.objects["sourcecode.PullRequest"]
        if p["identifier"].startswith("acme/api")
    ]
    assert kept == ["acme/api#1", "acme/api#2", "acme/api#3", "acme/api#4"]
    fake.failures.clear()
    fake.reset_counts()
    second = agent_export(agent_root, cfg)
    walked = [r.query.get("page", "1") for r in fake.requests if "/acme/api/pulls?" in r.target]
    assert walked == ["3"]
    assert [p["identifier"] for p in second.objects["sourcecode.PullRequest"]] == ["acme/api#5"]


def test_explicit_repos_list_overrides_the_organization(
    fake: FakeGitHub, gh_config: dict[str, Any], agent_root: Path
) -> None:
    """`repos` names exactly what is exported (no org listing; a missing one is a failed project); only_git
    queues git without reading users or PRs."""
    run = agent_export(agent_root, {**gh_config, "repos": ["acme/docs", "acme/nope"], "only_git": True})
    projects = {p["name"]: p["error"] for p in run.integration["projects"]}
    assert projects["acme/docs"] == "" and "HTTP 404" in projects["acme/nope"] and len(projects) == 2
    assert [g.request.unique_name for g in run.git] == ["acme/docs"]
    assert fake.count("/orgs/acme/repos") == 0 and fake.count("/pulls") == 0 and fake.count("graphql") == 0
    assert "sourcecode.User" not in run.objects


def test_request_counts_full_vs_incremental(
    fake: FakeGitHub, gh_config: dict[str, Any], agent_root: Path
) -> None:
    """At GitHub's page size (100) the fake org costs 35 requests in full (3 of them GraphQL queries for who
    merged or closed the PRs of a page), 6 when unchanged (4 of them 304s the quota does not count), 10 when
    an open PR changed and 11 when a merged one did (its page's closers query): only changed PRs are read."""
    cfg = {**gh_config, "per_page": 100}
    agent_export(agent_root, cfg)
    full = fake.count()
    fake.reset_counts()
    agent_export(agent_root, cfg)  # the first incremental run learns each repo's ETag
    first_incremental = fake.count()
    fake.reset_counts()
    before = fake.remaining
    agent_export(agent_root, cfg)
    quiet, quota = fake.count(), before - fake.remaining
    fake.data.touch_pr("web", 3, body="edited")
    fake.reset_counts()
    agent_export(agent_root, cfg)
    changed = fake.count()
    fake.data.touch_pr("api", 1, body="edited")
    fake.reset_counts()
    merged = agent_export(agent_root, cfg)
    changed_merged = fake.count()
    print(
        f"requests: full {full}, incremental {first_incremental} then {quiet} ({quota} counted), "
        f"one open PR changed {changed}, one merged PR changed {changed_merged}"
    )
    pr = merged.objects["sourcecode.PullRequest"][0]
    assert pr["identifier"] == "acme/api#1" and pr["merged_by_ref_id"] == node_id("User", 1002)
    # full: members 1 + repos 1 + pulls 1 per repo (4) + closers 1 per repo with closed PRs (3)
    # + commits and reviews per PR (2 x 9) + comments 2 per repo (8)
    assert (full, first_incremental, quiet, quota, changed, changed_merged) == (35, 6, 6, 2, 10, 11)


def test_merged_by_and_closed_by_come_from_one_query_per_page(
    fake: FakeGitHub, gh_config: dict[str, Any], agent_root: Path
) -> None:
    """Merged and closed PRs name who merged / closed them (the list leaves that out), the closers are
    exported as users, a closer whose account is gone is the ghost, and open PRs name nobody."""
    run = agent_export(agent_root, gh_config)
    prs = {p["identifier"]: p for p in run.objects["sourcecode.PullRequest"]}
    alice, bob, carol = (node_id("User", n) for n in (1001, 1002, 1003))
    assert {k: (p["status"], p["merged_by_ref_id"], p["closed_by_ref_id"]) for k, p in prs.items()} == {
        "acme/api#1": ("MERGED", bob, bob),
        "acme/api#2": ("CLOSED", "", carol),
        "acme/api#3": ("OPEN", "", ""),
        "acme/api#4": ("MERGED", alice, alice),
        "acme/api#5": ("CLOSED", "", "MDQ6VXNlcjEwMTM3"),  # closed by an account deleted since: the ghost
        "acme/web#1": ("MERGED", bob, bob),
        "acme/web#2": ("CLOSED", "", carol),
        "acme/web#3": ("OPEN", "", ""),
        "acme/docs#1": ("MERGED", bob, bob),
    }
    users = {u["ref_id"] for u in run.objects["sourcecode.User"] if u["ref_type"] == "github"}
    assert {alice, bob, carol, "MDQ6VXNlcjEwMTM3"} <= users
    assert fake.count("graphql") == 2 + 5  # members (2 pages) + one closers query per page with a closed PR
    assert _single_reads(fake) == (0, 0)  # no per-PR reads


def test_a_closers_query_that_cannot_resolve_a_node_falls_back_to_rest(
    fake: FakeGitHub, gh_config: dict[str, Any], agent_root: Path
) -> None:
    """When GraphQL cannot resolve a pull request of a page, that page's closed PRs are read by REST instead
    (the export does not fail), and still name who merged or closed them."""
    fake.unresolvable.add(node_id("PullRequest", 100001))  # acme/api#1, on page 1 with #2
    run = agent_export(agent_root, gh_config)
    assert [p["error"] for p in run.integration["projects"]] == ["", "", "", ""]
    prs = {p["identifier"]: p for p in run.objects["sourcecode.PullRequest"]}
    assert prs["acme/api#1"]["merged_by_ref_id"] == node_id("User", 1002)
    assert prs["acme/api#2"]["closed_by_ref_id"] == node_id("User", 1003)
    assert _single_reads(fake) == (1, 1)  # api#1's pull request, api#2's issue


def _single_reads(fake: FakeGitHub) -> tuple[int, int]:
    """Reads of one pull request, and of one issue."""
    return (sum(1 for r in fake.requests if re.search(r"/pulls/\d+$", r.path)),
            sum(1 for r in fake.requests if re.search(r"/issues/\d+$", r.path)))


def test_bots_are_bots(fake: FakeGitHub, gh_config: dict[str, Any], agent_root: Path) -> None:
    """GitHub's ``web-flow`` committer (a ``type: User`` account), ``*[bot]`` logins and ``type: Bot``
    accounts are exported as bots; people as humans."""
    run = agent_export(agent_root, gh_config)
    kinds = {u["username"]: u["type"] for u in run.objects["sourcecode.User"] if u["ref_type"] == "github"}
    assert kinds["web-flow"] == "BOT" and kinds["dependabot[bot]"] == "BOT" and kinds["github-noreply"] == "BOT"
    assert kinds["alice"] == kinds["bob"] == kinds["carol"] == "HUMAN"


def test_payloads_without_node_ids_give_one_user_per_person(
    fake: FakeGitHub, gh_config: dict[str, Any], agent_root: Path
) -> None:
    """An Enterprise server whose REST payloads carry no ``node_id``: users met in PRs, reviews and commits get
    the node id GraphQL gives the same person (members), so each person is one user; PRs, repos, reviews and
    comments keep their node ids too; who merged or closed a PR comes from one REST read per closed PR."""
    fake.node_ids = False
    run = agent_export(agent_root, gh_config)
    assert run.integration["error"] == ""
    users = [u for u in run.objects["sourcecode.User"] if u["ref_type"] == "github"]
    by_login: dict[str, set[str]] = {}
    for u in users:
        by_login.setdefault(u["username"], set()).add(u["ref_id"])
    assert by_login["alice"] == {node_id("User", 1001)} and by_login["bob"] == {node_id("User", 1002)}
    assert by_login["dependabot[bot]"] == {node_id("Bot", 49699333)}
    assert all(len(refs) == 1 for refs in by_login.values()) and len(users) == len(by_login)
    prs = {p["identifier"]: p for p in run.objects["sourcecode.PullRequest"]}
    assert prs["acme/api#1"]["ref_id"] == node_id("PullRequest", 100001)
    assert prs["acme/api#1"]["merged_by_ref_id"] == node_id("User", 1002)
    assert prs["acme/api#2"]["closed_by_ref_id"] == node_id("User", 1003)
    assert {r["ref_id"] for r in run.objects["sourcecode.Repo"]} >= {node_id("Repository", 100)}
    links = {(c["email"], c["associated_ref_id"]) for c in run.objects["sourcecode.CommitUser"]}
    assert ("alice@acme.example", node_id("User", 1001)) in links
    # no GraphQL closers query without node ids: merged PRs read the PR (4), closed ones the issue (3)
    assert fake.count("graphql") == 2 and _single_reads(fake) == (4, 3)


def test_the_fake_lists_pull_requests_in_githubs_list_shape(fake: FakeGitHub, client) -> None:
    """The fake's pull request list leaves out what GitHub's does (merged, merged_by, mergeable, counts);
    the single pull request has them, and only the issue says who closed it."""
    listed = next(iter(client.pages("/repos/acme/api/pulls", {"state": "all"}))).items
    missing = {"merged", "merged_by", "mergeable", "comments", "review_comments", "commits", "additions",
               "deletions", "changed_files", "closed_by"}
    assert listed and all(not (missing & set(pr)) for pr in listed)
    assert {"diff_url", "requested_reviewers", "auto_merge", "_links"} <= set(listed[0])
    full = client.get("/repos/acme/api/pulls/1").data
    assert full["merged"] is True and full["merged_by"]["login"] == "bob" and "closed_by" not in full
    assert client.get("/repos/acme/api/issues/2").data["closed_by"]["login"] == "carol"
