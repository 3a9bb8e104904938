"""Exports of the fake group through the agent: the gitlab plugin as a real process, the real session manager,
state store and output files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from integrations.gitlab import endpoints as ep
from integrations.gitlab.client import GitLabClient
from integrations.gitlab.cursor import UpdatedCursor
from integrations.gitlab.export import walk_updated
from pinpoint_agent import ids
from pinpoint_agent.protocol import IntegrationType
from tests.gitlab.conftest import CUSTOMER, agent_export
from tests.gitlab.fake_data import FakeUser
from tests.gitlab.fake_gitlab import ADMIN_TOKEN, OAUTH_TOKEN, FakeGitLab

GROUP_PROJECTS = ["acme/api", "acme/web", "acme/platform/infra"]


def by_ref(objs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["ref_id"]: o for o in objs}


def test_admin_export_sends_every_model_with_ids_per_the_formulas(
    fake: FakeGitLab, gl_config: dict[str, Any], agent_root: Path
) -> None:
    """An admin token's first export sends users, their emails as CommitUser links (turned into git users by
    the agent), repos, merge requests with commits, approvals, reviewer states and user notes (no system
    notes), with ids from
    the agreed formulas, and queues git for each project with its MR heads and the token only in credentials."""
    run = agent_export(agent_root, {**gl_config, "access_token": ADMIN_TOKEN})
    assert run.integration["error"] == "" and not run.integration["incremental"]
    assert [(p["name"], p["error"]) for p in run.integration["projects"]] == [(n, "") for n in GROUP_PROJECTS]
    o = run.objects
    users = by_ref([u for u in o["sourcecode.User"] if u["ref_type"] == "gitlab"])
    assert users["1"]["id"] == ids.user_id(CUSTOMER, "gitlab", "1") and users["1"]["email"] == "alice@acme.example"
    assert users["4"]["type"] == "BOT" and users["2"]["type"] == "HUMAN"
    git_users = {u["email"]: u for u in o["sourcecode.CommitUser"]}
    assert set(git_users) == {
        "alice@acme.example",
        "alice@home.example",
        "bob@acme.example",
        "carol@acme.example",
        "c.danvers@old.example",
        "project11_bot@noreply.example",
    }
    user_pages = [r for r in fake.requests if r.path == "/api/v4/users"]  # keyset: id_after, no page numbers
    assert [r.query.get("id_after") for r in user_pages] == [None, "2"] and all(
        "page" not in r.query for r in user_pages
    )
    assert git_users["alice@home.example"]["associated_ref_id"] == "1"
    assert git_users["alice@home.example"]["id"] == ids.linked_git_user_id(CUSTOMER, "alice@home.example", "1")

    repos = {r["name"]: r for r in o["sourcecode.Repo"]}
    assert set(repos) == set(GROUP_PROJECTS)  # acme/old is archived; alice/sandbox is outside the group
    api = repos["acme/api"]
    assert api["id"] == ids.repo_id(CUSTOMER, "gitlab", "11")

    prs = {p["identifier"]: p for p in o["sourcecode.PullRequest"]}
    assert len(prs) == 10
    mr1, mr2, mr3, mr5 = (prs[f"acme/api!{n}"] for n in (1, 2, 3, 5))
    assert mr1["id"] == ids.pull_request_id(CUSTOMER, "511001", "gitlab", api["id"]) and mr1["number"] == 1
    assert (mr1["status"], mr1["merged"], mr1["merged_by_ref_id"], mr1["labels"]) == (
        "MERGED",
        True,
        "2",
        ["feature", "backend"],
    )
    assert mr1["merge_commit_id"] == ids.commit_id(CUSTOMER, mr1["merge_sha"], "gitlab", api["id"]) and mr1["merge_sha"]
    assert (mr1["milestone"], mr1["branch_name"], mr1["base_branch_name"]) == ("v1.0", "feature-1", "main")
    assert (mr2["status"], mr2["draft"], mr2["merge_status"]) == ("OPEN", True, "mergeable")
    assert (mr3["status"], mr3["closed_by_ref_id"], mr5["status"]) == ("CLOSED", "3", "LOCKED")
    commits = [c for c in o["sourcecode.PullRequestCommit"] if c["pull_request_id"] == mr1["id"]]
    assert [c["sha"] for c in commits] == mr1["commit_shas"] and len(commits) == 2  # oldest first
    assert mr1["last_commit_sha"] == mr1["commit_shas"][-1]
    assert commits[0]["author_ref_id"] == ids.git_user_ref_id(CUSTOMER, "bob@acme.example")
    reviews = [r for r in o["sourcecode.PullRequestReview"] if r["pull_request_id"] == mr1["id"]]
    assert [(r["state"], r["user_ref_id"]) for r in reviews] == [
        ("APPROVED", "3")
    ]  # its reviewer's "approved" is not sent twice
    states = {
        n: [r["state"] for r in o["sourcecode.PullRequestReview"] if r["pull_request_id"] == pr["id"]]
        for n, pr in (("open", mr2), ("closed", mr3), ("locked", mr5))
    }
    assert states == {"open": ["CHANGES_REQUESTED"], "closed": ["COMMENTED"], "locked": []}  # locked: unreviewed
    comments = o["sourcecode.PullRequestComment"]
    assert len(comments) == 30 and not any(c["body"] == "added 1 commit" for c in comments)
    note = comments[0]
    assert note["id"] == ids.values(CUSTOMER, note["ref_id"], "gitlab", note["repo_id"])

    git = {g.request.unique_name: g.request for g in run.git}
    assert set(git) == set(GROUP_PROJECTS)
    req = git["acme/api"]
    assert req.url == f"{fake.url}/acme/api.git" and req.credentials == ADMIN_TOKEN and req.ref_type == "gitlab"
    assert {p.branch_name: p.last_commit_sha for p in req.prs}["feature-1"] == mr1["last_commit_sha"]
    assert req.commit_url_template == f"{fake.url}/acme/api/-/commit/@@@sha@@@"


def test_plain_user_export_has_no_emails_and_asks_for_none(
    fake: FakeGitLab, gl_config: dict[str, Any], agent_root: Path
) -> None:
    """With a non-admin token users come from group members without emails, no CommitUser is sent and
    /users/:id/emails (admin only) is never asked."""
    run = agent_export(agent_root, gl_config)
    assert run.integration["error"] == ""
    assert "sourcecode.CommitUser" not in run.objects
    users = by_ref(run.objects["sourcecode.User"])
    assert set(users) == {"1", "2", "3"} and all(u["email"] == "" for u in users.values())
    assert fake.count("/emails") == 0 and fake.count("/api/v4/users") == 0
    assert fake.count("/groups/acme/members/all") > 0


def test_without_groups_the_membership_projects_are_listed_by_keyset(
    fake: FakeGitLab, gl_config: dict[str, Any], agent_root: Path
) -> None:
    """No groups: /projects?membership=true is walked with keyset pagination; include_archived and
    exclusions decide which projects are exported."""
    cfg = {**gl_config, "groups": [], "include_archived": True, "exclusions": ["acme/web", "infra"]}
    run = agent_export(agent_root, cfg)
    assert [p["name"] for p in run.integration["projects"]] == ["acme/api", "acme/old", "alice/sandbox"]
    listing = [r for r in fake.requests if r.path == "/api/v4/projects"]
    assert listing and all(r.query["pagination"] == "keyset" and r.query["order_by"] == "id" for r in listing)
    assert {r["name"]: r["active"] for r in run.objects["sourcecode.Repo"]}["acme/old"] is False


def test_second_export_is_incremental_and_sends_only_what_changed(
    fake: FakeGitLab, gl_config: dict[str, Any], agent_root: Path
) -> None:
    """An unchanged second export costs one merge request request per project and writes nothing new; after a
    note on api!2 and a retitled web!1 only those two merge requests (and the new note) are read and written."""
    agent_export(agent_root, gl_config)
    fake.reset_counts()
    same = agent_export(agent_root, gl_config)
    assert same.integration["incremental"] is True
    assert not same.objects.get("sourcecode.PullRequest")
    assert fake.count("/merge_requests?") == 3 and fake.count("/notes") == 0 and fake.count("/commits") == 0
    # users (members: 2 pages of 2) + projects (2 pages) + 3 merge request lists + /user
    assert len(fake.requests) == 2 + 2 + 3 + 1

    fake.data.add_mr_note(11, 2, 1, "looks good now")
    fake.data.touch_mr(12, 1, title="Renamed")
    fake.reset_counts()
    changed = agent_export(agent_root, gl_config)
    prs = {p["identifier"]: p for p in changed.objects["sourcecode.PullRequest"]}
    assert set(prs) == {"acme/api!2", "acme/web!1"} and prs["acme/web!1"]["title"] == "Renamed"
    new = [c for c in changed.objects["sourcecode.PullRequestComment"] if c["body"] == "looks good now"]
    assert len(new) == 1 and new[0]["pull_request_id"] == prs["acme/api!2"]["id"]
    # only the two changed merge requests' notes are read: api!2's 5 in 3 pages of 2, web!1's 4 in 2
    assert fake.count("/merge_requests/2/notes") == 3 and fake.count("/notes") == 5


def test_an_update_during_the_walk_skips_nothing(client: GitLabClient, fake: FakeGitLab) -> None:
    """The updated_after walk restarts after each page: a merge request updated while the walk runs moves to
    the end of the list, and no other merge request is skipped (a page-number walk would skip one)."""
    seen: list[int] = []

    def on_page(items: list[dict[str, Any]], total: int | None, more: bool) -> None:
        if not seen:
            fake.data.touch_mr(11, 1, title="edited mid-walk")  # the first page's first item moves to the end
        seen.extend(i["iid"] for i in items)

    cursor = UpdatedCursor()
    walk_updated(client, ep.MERGE_REQUESTS.url(project=11), ep.MERGE_REQUESTS.query(), cursor, on_page)
    assert sorted(set(seen)) == [1, 2, 3, 4, 5] and seen.count(1) == 2
    assert cursor.after == next(m for m in fake.data.projects[11].mrs if m["iid"] == 1)["updated_at"]

    # the same change with page numbers loses a merge request
    fake.data.touch_mr(11, 3)
    pages = client.pages(ep.MERGE_REQUESTS.url(project=11), ep.MERGE_REQUESTS.query())
    naive: list[int] = []
    for n, page in enumerate(pages):
        if n == 0:
            fake.data.touch_mr(11, page.items[0]["iid"])
        naive.extend(i["iid"] for i in page.items)
    assert len(set(naive)) < 5


def test_a_failure_mid_walk_keeps_the_checkpointed_batches(
    fake: FakeGitLab, gl_config: dict[str, Any], agent_root: Path
) -> None:
    """With checkpoint_pages 1, persistent 500s on the second page of api's merge requests fail that project
    only; the first page stays stored and the next export goes on from there without sending it again."""
    cfg = {**gl_config, "checkpoint_pages": 1}
    fake.fail("/projects/11/merge_requests?", 500, skip=1, times=5)
    first = agent_export(agent_root, cfg)
    errors = {p["name"]: p["error"] for p in first.integration["projects"]}
    assert "HTTP 500 after 5 tries" in errors["acme/api"] and errors["acme/web"] == ""
    api_first = [p["number"] for p in first.objects["sourcecode.PullRequest"] if p["identifier"].startswith("acme/api")]
    assert api_first == [1, 2]
    second = agent_export(agent_root, cfg)
    api_second = [
        p["number"] for p in second.objects["sourcecode.PullRequest"] if p["identifier"].startswith("acme/api")
    ]
    assert sorted(api_second) == [3, 4, 5]


def test_rate_limits_during_an_export_reach_the_agent_as_pause_and_resume(
    fake: FakeGitLab, gl_config: dict[str, Any], agent_root: Path
) -> None:
    """A 429 on a merge request's notes makes the plugin wait and tell the agent (pause, then resume); the
    export still completes with every note."""
    fake.rate_limit("/projects/12/merge_requests/2/notes", wait=1)
    run = agent_export(agent_root, gl_config)
    assert run.integration["error"] == "" and [e[0] for e in run.events] == ["pause", "resume"]
    assert len(run.objects["sourcecode.PullRequestComment"]) == 30


def test_oauth_export_uses_bearer_tokens_from_the_agent(
    fake: FakeGitLab, gl_config: dict[str, Any], agent_root: Path
) -> None:
    """With OAuth the config needs no token: the plugin asks the agent for one, sends it as Bearer, asks again
    when it is rejected, and the git request carries the current one in credentials (with GitLab's oauth2 user
    name, not a secret, in the url)."""
    cfg = {k: v for k, v in gl_config.items() if k != "access_token"}
    run = agent_export(agent_root, cfg, use_oauth=True, oauth_tokens=["oauth-EXPIRED", OAUTH_TOKEN])
    assert run.integration["error"] == ""
    assert {r.auth for r in fake.requests} == {"bearer"} and fake.requests[0].status == 401
    assert {g.request.credentials for g in run.git} == {OAUTH_TOKEN}
    host = fake.url.split("://", 1)[1]
    assert {g.request.url for g in run.git} == {f"http://oauth2@{host}/{p}.git" for p in GROUP_PROJECTS}


def test_work_export_sends_projects_issues_and_user_comments_incrementally(
    fake: FakeGitLab, gl_config: dict[str, Any], agent_root: Path
) -> None:
    """Type WORK exports work.Project, work.Issue and work.IssueComment (no system notes); a second run
    after one new issue note sends only that issue and its notes."""
    run = agent_export(agent_root, gl_config, kind=IntegrationType.WORK)
    assert run.integration["error"] == ""
    o = run.objects
    assert {p["identifier"] for p in o["work.Project"]} == set(GROUP_PROJECTS)
    issues = {i["identifier"]: i for i in o["work.Issue"]}
    assert len(issues) == 6 and issues["acme/api#2"]["status"] == "closed"
    assert issues["acme/api#1"]["id"] == ids.values(CUSTOMER, "811001", "gitlab")
    assert {c["body"] for c in o["work.IssueComment"]} == {"seen it"}
    assert not run.git and "sourcecode.PullRequest" not in o
    fake.data.add_issue_note(12, 1, 3, "me too")
    again = agent_export(agent_root, gl_config, kind=IntegrationType.WORK)
    assert [i["identifier"] for i in again.objects["work.Issue"]] == ["acme/web#1"]
    assert sorted(c["body"] for c in again.objects["work.IssueComment"]) == ["me too"]  # "seen it" deduped


def test_admin_incremental_reads_secondary_emails_of_new_users_only(
    fake: FakeGitLab, gl_config: dict[str, Any], agent_root: Path
) -> None:
    """With an admin token the first export reads every user's /emails; an unchanged second one reads none,
    a new user's only; with emails_refresh_hours 0 every export reads them all again."""
    cfg = {**gl_config, "access_token": ADMIN_TOKEN}
    agent_export(agent_root, cfg)
    assert fake.count("/emails") == 4
    fake.reset_counts()
    same = agent_export(agent_root, cfg)
    assert fake.count("/emails") == 0 and not same.objects.get("sourcecode.CommitUser")
    fake.data.add_user(FakeUser(5, "dave", "Dave Null", "dave@acme.example", ["dave@old.example"]))
    fake.reset_counts()
    new = agent_export(agent_root, cfg)
    assert [r.path for r in fake.requests if r.path.endswith("/emails")] == ["/api/v4/users/5/emails"]
    assert {u["email"] for u in new.objects["sourcecode.CommitUser"]} == {"dave@acme.example", "dave@old.example"}
    fake.reset_counts()
    agent_export(agent_root, {**cfg, "emails_refresh_hours": 0})
    assert fake.count("/emails") == 5


def test_work_export_checkpoints_and_resumes_after_a_failure(
    fake: FakeGitLab, gl_config: dict[str, Any], agent_root: Path
) -> None:
    """Issues are walked like merge requests: with checkpoint_pages 1 a failure on the second page keeps the
    first page's issues stored, and the next export sends only the rest."""
    cfg = {**gl_config, "per_page": 1, "checkpoint_pages": 1}
    fake.fail("/projects/11/issues?", 500, skip=1, times=5)
    first = agent_export(agent_root, cfg, kind=IntegrationType.WORK)
    errors = {p["name"]: p["error"] for p in first.integration["projects"]}
    assert "HTTP 500" in errors["acme/api"] and errors["acme/web"] == ""
    assert [i["identifier"] for i in first.objects["work.Issue"] if i["identifier"].startswith("acme/api")] == [
        "acme/api#1"
    ]
    second = agent_export(agent_root, cfg, kind=IntegrationType.WORK)
    assert [i["identifier"] for i in second.objects["work.Issue"]] == ["acme/api#2"]


def test_a_project_with_merge_requests_off_is_exported_without_asking_for_them(
    fake: FakeGitLab, gl_config: dict[str, Any], agent_root: Path
) -> None:
    """merge_requests_access_level disabled: the project is a repo with git and no error, and its merge request
    list (which would answer 403) is never asked for."""
    fake.data.projects[12].merge_requests_enabled = False
    run = agent_export(agent_root, gl_config)
    assert [(p["name"], p["error"]) for p in run.integration["projects"]] == [(n, "") for n in GROUP_PROJECTS]
    assert fake.count("/projects/12/merge_requests") == 0 and "acme/web" in {g.request.unique_name for g in run.git}
