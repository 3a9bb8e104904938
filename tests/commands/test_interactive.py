"""The interactive commands' logic (``pinpoint_agent.interactive``) against real mock plugin processes,
without Prefect."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from pinpoint_agent import interactive
from pinpoint_agent.askpass import credential_env, split_credentials
from pinpoint_agent.config import AgentConfig, Delivery, Mutation, parse_delivery, parse_mutation
from pinpoint_agent.errors import ConfigError
from pinpoint_agent.host import Callbacks, IntegrationHost
from pinpoint_agent.interactive import Target
from pinpoint_agent.protocol import IntegrationConfig, IntegrationType, OnboardObjectType

from .conftest import GitServer


def _target(root: Path, **config: Any) -> Target:
    entry = IntegrationConfig(id="i1", name="mock", type=IntegrationType.SOURCECODE, config=config)
    return Target(entry=entry, agent=AgentConfig(customer_id="c1"), root=root)


# -- inputs ---------------------------------------------------------------------------------------------
def test_parse_mutation_reads_fn_and_data() -> None:
    """A well-formed --mutation gives its fn and data unchanged."""
    m = parse_mutation('{"fn": "PR_SET_TITLE", "data": {"ref_id": "1", "title": "t"}}')
    assert m == Mutation(fn="PR_SET_TITLE", data={"ref_id": "1", "title": "t"})


@pytest.mark.parametrize(("text", "says"), [
    ("{not json", "not valid JSON"),
    ('["PR_SET_TITLE"]', "must be a JSON object"),
    ('{"data": {}}', "needs 'fn'"),
    ('{"fn": "  ", "data": {}}', "fn: must name the mutation"),
    ('{"fn": "X", "data": {}, "extra": 1}', "unknown field 'extra'"),
])
def test_parse_mutation_rejects_bad_input(text: str, says: str) -> None:
    """A --mutation that is not {"fn", "data"} is a one-line config error naming the problem."""
    with pytest.raises(ConfigError, match=says) as info:
        parse_mutation(text)
    assert "\n" not in str(info.value)


def test_parse_webhook_keeps_json_and_raw_bodies() -> None:
    """A JSON body is passed on as JSON bytes, a string body as the raw text it is."""
    d = parse_delivery('{"headers": {"X-Mock-Event": "pull_request"}, "body": {"repo": 1}}')
    assert d == Delivery(headers={"X-Mock-Event": "pull_request"}, body={"repo": 1})
    assert d.body_bytes == b'{"repo":1}'
    assert parse_delivery('{"headers": {}, "body": "a=b&c"}').body_bytes == b"a=b&c"


@pytest.mark.parametrize(("text", "says"), [
    ("nope", "not valid JSON"),
    ("[]", "must be a JSON object"),
    ('{"body": {}}', "needs 'headers'"),
    ('{"headers": {"a": 1}, "body": {}}', "headers.a: must be a string"),
    ('{"headers": {}}', "needs 'body'"),
])
def test_parse_webhook_rejects_bad_input(text: str, says: str) -> None:
    """--data without an object of string headers and a body is a one-line config error."""
    with pytest.raises(ConfigError, match=says):
        parse_delivery(text)


def test_single_integration_refuses_two() -> None:
    """Interactive commands work on exactly one integration and say which were given otherwise."""
    entries = [IntegrationConfig(id=i, name="mock", type=IntegrationType.SOURCECODE) for i in ("a", "b")]
    with pytest.raises(ConfigError, match=r"exactly one integration, got 2 \(mock@SOURCECODE@a, mock@"):
        interactive.single_integration(entries, "mutate")


def test_target_from_params_reads_flow_parameters(tmp_path: Path) -> None:
    """A flow's JSON parameters become the entry, agent config and root the call uses."""
    entries = [{"id": "", "name": "mock", "type": 1, "config": {"users": 1}}]
    t = interactive.target_from_params("mutate", entries, {"customer_id": "c9"}, str(tmp_path), None)
    assert (t.entry.display_key, t.entry.config, t.agent.customer_id, t.root) == (
        "mock@SOURCECODE@0", {"users": 1}, "c9", tmp_path)


# -- validate-config ------------------------------------------------------------------------------------
def test_validate_config_success(root: Path, no_leaked_processes: None) -> None:
    """A valid config gives no errors, success and the integration's server version; the plugin is reaped."""
    assert interactive.validate_config(_target(root)) == {"errors": [], "success": True,
                                                          "server_version": "mock-1.0"}


def test_validate_config_reports_integration_errors(root: Path) -> None:
    """Errors the integration finds in its config come back in errors with success false."""
    res = interactive.validate_config(_target(root, users=-1))
    assert res["success"] is False
    assert res["errors"] == ["users must be a non-negative integer, got -1"]


def test_validate_config_test_clones_a_local_repo(root: Path, git_repo: Path) -> None:
    """A repo the integration names is cloned into root/temp and the clone is removed afterwards."""
    res = interactive.validate_config(_target(root, git_repos=[str(git_repo)]))
    assert res == {"errors": [], "success": True, "server_version": "mock-1.0"}
    assert list((root / "temp").iterdir()) == []


def test_validate_config_reports_a_failed_clone(root: Path, tmp_path: Path) -> None:
    """A repo that cannot be cloned is one error naming the url and git's reason."""
    missing = tmp_path / "no-such-repo"
    res = interactive.validate_config(_target(root, git_repos=[str(missing)]))
    assert res["success"] is False
    assert res["errors"] == [f"test clone of {missing} failed: repository '{missing}' does not exist"]


def test_clone_credentials_reach_git_only_through_the_environment(root: Path, git_server: GitServer,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """repo_credentials authenticate the clone over HTTP while git's argv and the url never contain them."""
    argvs: list[list[str]] = []
    real_run = subprocess.run

    def spy(cmd: list[str], **kwargs: Any) -> Any:
        argvs.append(list(cmd))
        return real_run(cmd, **kwargs)

    monkeypatch.setattr(interactive.subprocess, "run", spy)
    creds = f"{git_server.user}:{git_server.password}"
    res = interactive.validate_config(_target(root, git_repos=[git_server.url], repo_credentials=creds))
    assert res == {"errors": [], "success": True, "server_version": "mock-1.0"}
    assert git_server.authorizations, "git never authenticated"
    assert not any(git_server.password in arg or git_server.user in arg for argv in argvs for arg in argv)
    assert list((root / "temp").iterdir()) == []  # the askpass script went with the clone folder


def test_wrong_clone_credentials_fail_without_leaking_them(root: Path, git_server: GitServer) -> None:
    """Rejected credentials give a clone error that names the url but not the secret."""
    secret = "wrong-secret-token-99"
    res = interactive.validate_config(_target(root, git_repos=[git_server.url], repo_credentials=secret))
    assert res["success"] is False
    [error] = res["errors"]
    assert error.startswith(f"test clone of {git_server.url} failed: ") and "Authentication failed" in error
    assert secret not in error


def test_clone_error_hides_userinfo_in_the_url(tmp_path: Path) -> None:
    """A url with user:password in it is reported without them."""
    error = interactive.try_clone("http://bob:pa55word@127.0.0.1:9/x.git", "", tmp_path, timeout=20)
    assert error.startswith("test clone of http://127.0.0.1:9/x.git failed: ")
    assert "pa55word" not in error and "bob" not in error


def test_bare_token_is_answered_as_password() -> None:
    """A token without a user is offered as the password of x-access-token, via the askpass script."""
    with credential_env(*reversed(split_credentials("tok-123456"))) as env:
        script = Path(env["GIT_ASKPASS"])
        assert "tok-123456" not in script.read_text()

        def ask(prompt: str) -> str:
            done = subprocess.run([str(script), prompt], env=env, capture_output=True, text=True, check=True)
            return done.stdout

        assert (ask("Username for 'http://h': "), ask("Password for 'http://h': ")) == ("x-access-token\n",
                                                                                        "tok-123456\n")
    assert not script.exists()


def test_credentials_inside_the_repo_url_reach_git_only_through_the_environment(
        root: Path, git_server: GitServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A repo url the integration names with user:password inside is cloned with the clean url; the
    credentials authenticate through GIT_ASKPASS and appear in no argv."""
    argvs: list[list[str]] = []
    real_run = subprocess.run

    def spy(cmd: list[str], **kwargs: Any) -> Any:
        argvs.append(list(cmd))
        return real_run(cmd, **kwargs)

    monkeypatch.setattr(interactive.subprocess, "run", spy)
    host = git_server.url.split("://", 1)[1]
    url = f"http://{git_server.user}:{git_server.password}@{host}"
    res = interactive.validate_config(_target(root, git_repos=[url]))
    assert res == {"errors": [], "success": True, "server_version": "mock-1.0"}
    assert git_server.authorizations
    assert not any(git_server.password in arg for argv in argvs for arg in argv)
    assert any(git_server.url in arg for argv in argvs for arg in argv)


# -- export-onboard-data --------------------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "count"), [(OnboardObjectType.USERS, 3), (OnboardObjectType.REPOS, 2),
                                             (OnboardObjectType.PROJECTS, 4)])
def test_onboard_lists_objects(root: Path, kind: OnboardObjectType, count: int) -> None:
    """Users, repos and projects come back as the integration lists them."""
    res = interactive.export_onboard_data(_target(root, users=3, repos=2, projects=4), kind)
    assert (res["success"], res["error"], len(res["data"])) == (True, "", count)


def test_onboard_not_supported_is_a_clear_error(root: Path) -> None:
    """An object type the integration does not offer is success false with the integration's reason."""
    res = interactive.export_onboard_data(_target(root), OnboardObjectType.WORKCONFIG)
    assert res == {"success": False, "error": "mock does not support onboarding workconfig", "data": None}


# -- mutate ---------------------------------------------------------------------------------------------
def test_mutate_returns_mutated_objects(root: Path) -> None:
    """A mutation the integration knows returns its objects and webapp response."""
    res = interactive.mutate(_target(root), Mutation(fn="PR_SET_TITLE", data={"ref_id": "7", "title": "New"}))
    assert res["success"] is True and res["error"] == "" and res["error_code"] == ""
    assert res["webapp_response"] == {"ok": True}
    [pr] = res["mutated_objects"]["sourcecode.PullRequest"]
    assert (pr["ref_id"], pr["title"], pr["customer_id"]) == ("7", "New", "c1")


def test_mutate_unknown_fn_is_suffixed(root: Path) -> None:
    """An unknown fn is success false, the error ending with (<integration>/<fn in lower case>)."""
    res = interactive.mutate(_target(root), Mutation(fn="ISSUE_ADD_COMMENT", data={}))
    assert res == {"mutated_objects": {}, "webapp_response": None, "success": False, "error_code": "",
                   "error": "mock does not support mutation ISSUE_ADD_COMMENT (mock/issue_add_comment)"}


def test_mutate_data_that_does_not_fit_is_suffixed(root: Path) -> None:
    """Data the function cannot use is success false with the integration's reason and the suffix."""
    res = interactive.mutate(_target(root), Mutation(fn="PR_SET_TITLE", data={"ref_id": 7}))
    assert res["success"] is False
    assert res["error"] == 'PR_SET_TITLE needs {"ref_id": str, "title": str} (mock/pr_set_title)'


def test_mutate_timeout_is_reported_and_the_plugin_reaped(root: Path, monkeypatch: pytest.MonkeyPatch,
                                                          no_leaked_processes: None) -> None:
    """An integration that does not answer in time is stopped and reported in the result, with the suffix."""
    monkeypatch.setitem(interactive.TIMEOUTS, "mutate", 0.3)
    res = interactive.mutate(_target(root, mutate_delay_ms=5000), Mutation(fn="PR_SET_TITLE", data={}))
    assert res["success"] is False
    assert "did not finish within 0.3s" in res["error"] and res["error"].endswith(" (mock/pr_set_title)")


# -- webhook --------------------------------------------------------------------------------------------
def test_webhook_returns_objects(root: Path) -> None:
    """A delivery of an event the integration knows becomes its model objects."""
    d = Delivery(headers={"X-Mock-Event": "pull_request"}, body={"repo": 1, "number": 4})
    res = interactive.webhook(_target(root), d)
    assert res["success"] is True and res["error"] == ""
    [pr] = res["mutated_objects"]["sourcecode.PullRequest"]
    assert pr["ref_id"] == "1-4"


@pytest.mark.parametrize(("headers", "body", "says"), [
    ({"X-Mock-Event": "pull_request"}, "{broken", "mock: webhook body is not JSON"),
    ({"X-Mock-Event": "push"}, {}, "mock: unknown webhook event 'push'"),
])
def test_webhook_bad_delivery_is_in_the_result(root: Path, headers: dict[str, str], body: Any,
                                               says: str) -> None:
    """A body that is not JSON or an unknown event is success false with the integration's reason."""
    res = interactive.webhook(_target(root), Delivery(headers=headers, body=body))
    assert res["success"] is False and res["mutated_objects"] == {}
    assert res["error"].startswith(says)


# -- a warm plugin --------------------------------------------------------------------------------------
def test_a_given_host_is_used_and_left_running(root: Path) -> None:
    """With a running host (the service's warm plugin) the calls reuse it and do not stop it."""
    target = _target(root)
    host = IntegrationHost.start(target.entry, Callbacks(), root=root)
    try:
        target.host = host
        pid = host.process.proc.pid
        assert interactive.mutate(target, Mutation(fn="PR_SET_TITLE", data={"ref_id": "1", "title": "a"}))["success"]
        assert interactive.validate_config(target)["success"]
        assert host.healthy() and host.process.proc.pid == pid
    finally:
        host.close()
