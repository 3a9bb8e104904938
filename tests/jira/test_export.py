"""Exports through the agent's export path (real plugin process, session manager, state and output files)
against the fake Jira, Cloud and Data Center."""

from __future__ import annotations

from pathlib import Path

from integrations.jira import models
from pinpoint_agent.ids import values
from tests.github.test_cli import every_file_text
from tests.jira.conftest import CUSTOMER, agent_export
from tests.jira.fake_jira import API_TOKEN, PAT, FakeJira


def _by_key(run_objects: dict, model: str = "work.Issue") -> dict[str, dict]:
    return {o["identifier"]: o for o in run_objects.get(model, [])}


def test_full_export_both_flavours(fake: FakeJira, tmp_path: Path) -> None:
    """A first export sends projects, users, issues (fields, custom fields found via /field, change log),
    rendered comments and sprints, with the original agent's ids, in several pages per project."""
    run = agent_export(tmp_path / "root", fake.config(page_size=3))
    jira = run.integration
    assert jira["error"] == "" and jira["incremental"] is False
    assert [(p["name"], p["error"]) for p in jira["projects"]] == [("ENG", ""), ("OPS", ""), ("DOC", "")]
    o = run.objects
    assert {k: len(v) for k, v in o.items()} == {"work.Project": 3, "work.User": 4, "work.Issue": 21,
                                                 "work.IssueComment": 42, "work.Sprint": 4}
    issues = _by_key(o)
    eng4, eng1, eng3 = issues["ENG-4"], issues["ENG-1"], issues["ENG-3"]
    raw = fake.data.by_key("ENG-4")
    assert raw is not None
    assert eng4["id"] == values(CUSTOMER, str(raw.id), "jira") and eng4["ref_type"] == "jira"
    assert eng4["project_id"] == values(CUSTOMER, "10000", "jira")
    assert (eng4["status"], eng4["status_category"], eng4["resolution"]) == ("Done", "done", "Done")
    assert eng4["story_points"] is None and issues["ENG-3"]["story_points"] == 3.0
    assert issues["ENG-3"]["sprint_ids"] == [values(CUSTOMER, "1", "jira"), values(CUSTOMER, "2", "jira")]
    assert eng4["epic_id"] == eng1["id"]  # Cloud: the parent epic; DC: the Epic Link key, looked up
    assert eng3["linked_issues"][0]["link_type"] == "BLOCKS" and eng3["linked_issues"][0]["issue_id"] == eng1["id"]
    assert eng4["created_date"]["offset"] == 120 and eng4["description"] == "<p>Description of ENG-4</p>"
    statuses = [(c["from"], c["to"], c["user_id"]) for c in eng4["change_log"] if c["field"] == "STATUS"]
    first_author = fake.data.users()[(4 + 0) % 3]
    assert statuses[0] == ("To Do", "In Progress", models.user_ref(first_author))
    assert [c["ordinal"] for c in eng4["change_log"]] == list(range(len(eng4["change_log"])))
    comments = [c for c in o["work.IssueComment"] if c["issue_id"] == eng4["id"]]
    assert [c["body"] for c in comments] == ["<p>Comment 1 on ENG-4</p>", "<p>Comment 2 on ENG-4</p>"]
    assert comments[0]["id"] == values(CUSTOMER, comments[0]["ref_id"], "jira", eng4["project_id"])
    users = {u["name"]: u for u in o["work.User"]}
    alice = users["Alice Liddell"]
    assert alice["email"] == "alice@acme.example" and users["Carol Danvers"]["email"] == ""
    assert alice["ref_id"] == ("5b10a2844c20165700ede21g" if fake.cloud else "JIRAUSER10000")
    assert alice["id"] == values(CUSTOMER, "jira", alice["ref_id"])
    assert users["Automation for Jira"]["kind"] == ("BOT" if fake.cloud else "HUMAN")
    sprints = {s["name"]: s for s in o["work.Sprint"]}
    assert sprints["Sprint 1"]["status"] == "CLOSED" and sprints["Sprint 3"]["started_date"]["epoch"] == 0
    search = "/search/jql" if fake.cloud else "/rest/api/2/search"
    assert fake.count(search) == 9  # 7 issues per project, 3 per page, 3 projects: nothing else per issue
    assert all(j.endswith("ORDER BY updated ASC, key ASC") and "updated >=" not in j for j in fake.jqls)
    everything = every_file_text(tmp_path / "root")  # logs, state, output: no credential anywhere
    assert API_TOKEN not in everything and PAT not in everything


def test_second_export_is_incremental_and_sends_only_what_changed(fake: FakeJira, tmp_path: Path) -> None:
    """After a transition and a new comment, the next export searches `updated >=` the last token minus the
    window (in the user's time zone) and writes only the changed issues and the new comment."""
    root = tmp_path / "root"
    agent_export(root, fake.config(page_size=3))
    moved, commented = fake.data.by_key("DOC-2"), fake.data.by_key("ENG-5")
    assert moved is not None and commented is not None
    fake.data.transition(moved, "3", author=1)
    fake.data.add_comment(commented, 2, "A new comment")
    fake.jqls.clear()
    fake.reset_counts()
    run = agent_export(root, fake.config(page_size=3))
    assert run.integration["incremental"] is True and run.integration["error"] == ""
    assert sorted(_by_key(run.objects)) == ["DOC-2", "ENG-5"]
    assert [c["body"] for c in run.objects["work.IssueComment"]] == ["<p>A new comment</p>"]
    assert "work.Project" not in run.objects and "work.User" not in run.objects  # unchanged: dedup dropped them
    assert all('AND updated >= "2024/03/01 ' in j for j in fake.jqls), fake.jqls
    search = "/search/jql" if fake.cloud else "/rest/api/2/search"
    assert fake.count(search) == 3  # one page per project


def test_truncated_comments_and_change_log_are_completed(cloud: FakeJira, tmp_path: Path) -> None:
    """Cloud embeds at most 20 comments and 40 histories in a search answer: the rest is read from
    /comment and /changelog for that issue only, and everything is exported."""
    busy = cloud.data.by_key("OPS-3")
    assert busy is not None
    for n in range(25):
        cloud.data.add_comment(busy, n % 3, f"note {n}")
    for n in range(45):
        cloud.data.transition(busy, ["3", "10000"][n % 2])
    run = agent_export(tmp_path / "root", cloud.config())
    issue = _by_key(run.objects)["OPS-3"]
    assert len([c for c in issue["change_log"] if c["field"] == "STATUS"]) == 47
    assert len([c for c in run.objects["work.IssueComment"] if c["issue_id"] == issue["id"]]) == 27
    assert cloud.count("/issue/OPS-3/comment") == 1 and cloud.count("/issue/OPS-3/changelog") == 1
    assert cloud.count("/comment") == 1 and cloud.count("/changelog") == 1


def test_data_center_pages_with_startat_when_it_answers_fewer_than_asked(tmp_path: Path) -> None:
    """Data Center caps search pages at 50: asking 100, the walk advances by what came and gets all 120."""
    with FakeJira(cloud=False, projects=1, issues_per_project=120, comments_per_issue=0,
                  histories_per_issue=1) as dc:
        run = agent_export(tmp_path / "root", dc.config(page_size=100, sprints=False))
        assert len(run.objects["work.Issue"]) == 120
        assert dc.count("/rest/api/2/search") == 3


def test_a_failed_first_export_keeps_its_checkpoints(cloud: FakeJira, tmp_path: Path) -> None:
    """A first export closes its issue batch every checkpoint_pages pages: when a later page fails, the project
    reports the error, the earlier batches stay, and the next export resumes after them."""
    root = tmp_path / "root"
    cloud.fail("/search/jql", 400, skip=2, message="boom")  # pages 1-2 pass, page 3 fails
    config = cloud.config(page_size=2, checkpoint_pages=1, concurrency=1, projects=["ENG"])
    first = agent_export(root, config)
    assert "boom" in first.integration["projects"][0]["error"]
    kept = len(first.objects.get("work.Issue", []))
    assert kept == 4  # two pages of two, each closed as its own batch
    cloud.jqls.clear()
    second = agent_export(root, config)
    assert second.integration["projects"][0]["error"] == ""
    assert "updated >=" in cloud.jqls[0]  # resumed from the checkpoint, not from the start
    assert kept + len(second.objects["work.Issue"]) >= 7 and len(second.objects["work.Issue"]) < 7


def test_rate_limits_reach_the_agent_as_pause_and_resume(cloud: FakeJira, tmp_path: Path) -> None:
    """A 429 in the middle of an export becomes a pause event (with the resume time) and a resume event at the
    agent, and the export completes."""
    cloud.rate_limit("/search/jql", wait=1, skip=1)
    run = agent_export(tmp_path / "root", cloud.config(concurrency=1))
    assert run.integration["error"] == "" and len(run.objects["work.Issue"]) == 21
    assert [e[0] for e in run.events] == ["pause", "resume"]


def test_one_failing_project_does_not_stop_the_others(dc: FakeJira, tmp_path: Path) -> None:
    """A project whose search keeps failing is reported with its error; the other projects are exported."""
    original = dc._matching

    def failing(jql: str) -> list:
        if '"OPS"' in jql:
            from tests.jira.fake_jira import _Answer
            raise _Answer(403, {"errorMessages": ["You do not have permission to browse OPS"], "errors": {}})
        return original(jql)

    dc._matching = failing  # type: ignore[method-assign]
    run = agent_export(tmp_path / "root", dc.config())
    errors = {p["name"]: p["error"] for p in run.integration["projects"]}
    assert "permission to browse OPS" in errors["OPS"] and errors["ENG"] == errors["DOC"] == ""
    assert len(run.objects["work.Issue"]) == 14


def test_deleted_issues_are_not_resent(cloud: FakeJira, tmp_path: Path) -> None:
    """Jira's search never returns a deleted issue: after a delete the next export neither fails nor sends it
    (deletions reach the agent through the jira:issue_deleted webhook)."""
    root = tmp_path / "root"
    agent_export(root, cloud.config())
    gone = cloud.data.by_key("ENG-7")
    assert gone is not None
    cloud.data.transition(gone, "3")
    cloud.delete("ENG-7")
    run = agent_export(root, cloud.config())
    assert run.integration["error"] == "" and "ENG-7" not in _by_key(run.objects)


def test_sprint_failure_and_vanishing_issue_do_not_fail_the_export(cloud: FakeJira, tmp_path: Path) -> None:
    """A board listing that fails is logged and leaves the sprints out, the issues stay exported; an issue
    deleted between the search and the read of its remaining comments keeps the comments the search gave."""
    busy = cloud.data.by_key("ENG-2")
    assert busy is not None
    for n in range(25):
        cloud.data.add_comment(busy, 0, f"note {n}")
    cloud.fail("/issue/ENG-2/comment", 404, message="Issue does not exist or you do not have permission to see it.")
    cloud.fail("/rest/agile/1.0/board", 500, times=10)
    run = agent_export(tmp_path / "root", cloud.config())
    assert run.integration["error"] == "" and all(p["error"] == "" for p in run.integration["projects"])
    assert len(run.objects["work.Issue"]) == 21 and "work.Sprint" not in run.objects
    eng2 = _by_key(run.objects)["ENG-2"]
    assert len([c for c in run.objects["work.IssueComment"] if c["issue_id"] == eng2["id"]]) == 20


def test_a_long_incremental_export_checkpoints_too(cloud: FakeJira, tmp_path: Path) -> None:
    """After many changes, an incremental export also closes a batch every checkpoint_pages pages: a failure
    late in the walk keeps what came before and the next run starts after it."""
    root = tmp_path / "root"
    config = cloud.config(page_size=2, checkpoint_pages=1, concurrency=1, projects=["ENG"], safety_window_minutes=1)
    agent_export(root, config)
    for n in range(1, 8):
        issue = cloud.data.by_key(f"ENG-{n}")
        assert issue is not None
        cloud.data.touch(issue, summary=f"changed {n}")
    cloud.fail("/search/jql", 400, skip=2, message="boom")  # pages 1-2 of the incremental walk pass
    failed = agent_export(root, config)
    assert failed.integration["projects"][0]["error"] and len(failed.objects["work.Issue"]) == 4
    cloud.failures.clear()
    cloud.jqls.clear()
    resumed = agent_export(root, config)
    assert resumed.integration["projects"][0]["error"] == ""
    assert "updated >=" in cloud.jqls[0]
    # ENG-4 is read again (the safety window) but unchanged: the agent's dedup drops it
    assert sorted(_by_key(resumed.objects)) == ["ENG-5", "ENG-6", "ENG-7"]
