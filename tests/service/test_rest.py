"""The service as a backend uses it: every deployment triggered through Prefect's REST API, results read back,
idempotency keys, stale requests refused, warm plugins reused and restarted, heartbeats, one export at a time."""

from __future__ import annotations

import os
import re
import signal
import time
import uuid
from datetime import UTC, datetime, timedelta

from flows.mutate import mutate as mutate_flow
from flows.onboard import export_onboard_data as onboard_flow
from integrations.mock.integration import _pull_request, _repo
from pinpoint_agent.config import Mutation
from pinpoint_agent.service._api import heartbeat_variable

from .conftest import Service, mock

AGENT_CONFIG = {"customer_id": "c7"}


def _params(svc: Service, **extra: object) -> dict[str, object]:
    return {"integrations": mock(users=3, repos=2, prs_per_repo=2), "agent_config": AGENT_CONFIG, **extra}


def test_each_command_runs_through_rest_and_returns_its_result(shared_service: Service) -> None:
    """Each of the five deployments, triggered by create_flow_run, completes with the command's result JSON
    readable as the run's result artifact; the interactive ones agree with the command flows run directly."""
    svc = shared_service
    mutation = {"fn": "PR_SET_TITLE", "data": {"ref_id": "0-1", "title": "New title"}}
    _, result = svc.run("mutate", _params(svc, mutation=mutation))
    direct = mutate_flow.fn(integrations=mock(users=3, repos=2, prs_per_repo=2), mutation=Mutation(**mutation),
                            agent_config=AGENT_CONFIG, pinpoint_root=str(svc.root))
    assert result == direct and result["success"] is True
    assert result["mutated_objects"]["sourcecode.PullRequest"][0]["title"] == "New title"

    run, result = svc.run("export-onboard-data", _params(svc, object_type="users"))
    assert run["name"] == "export-onboard-data users"  # the flow's run name template applies
    assert result == onboard_flow.fn(integrations=mock(users=3, repos=2, prs_per_repo=2), object_type="users",
                                     agent_config=AGENT_CONFIG, pinpoint_root=str(svc.root))
    assert len(result["data"]) == 3

    _, result = svc.run("validate-config", _params(svc))
    assert result == {"errors": [], "success": True, "server_version": "mock-1.0"}

    delivery = {"headers": {"X-Mock-Event": "pull_request"}, "body": {"repo": 1, "number": 4}}
    _, result = svc.run("webhook", _params(svc, data=delivery))
    expected = _pull_request("c7", _repo("c7", 1), 4)
    assert result == {"mutated_objects": {"sourcecode.PullRequest": [expected]}, "success": True, "error": ""}

    _, result = svc.run("export", _params(svc))
    assert [i["objects"].get("sourcecode.PullRequest") for i in result["integrations"]] == [4]
    assert (svc.root / "exports" / result["export_id"]).is_dir()  # the service's root is the deployments' default


def test_bad_input_fails_the_run_with_a_clear_message_and_the_service_goes_on(shared_service: Service) -> None:
    """An unknown mutation fn comes back in the result; unusable parameters fail the run with one clear line."""
    svc = shared_service
    _, result = svc.run("mutate", _params(svc, mutation={"fn": "NO_SUCH_FN", "data": {}}))
    assert result["success"] is False and result["error"].endswith("(mock/no_such_fn)")
    run = svc.wait(svc.trigger("export-onboard-data", _params(svc, object_type="dogs"))["id"])
    assert run["state"]["type"] == "FAILED" and "dogs" in run["state"]["message"]
    run = svc.wait(svc.trigger("mutate", _params(svc, mutation={"fn": "X"}) | {
        "integrations": [{"id": "s", "name": "mock", "type": 1, "config": {"token": "secret-store:nope"}}]})["id"])
    assert run["state"]["type"] == "FAILED" and "secret-store:nope" in run["state"]["message"]
    svc.run("validate-config", _params(svc))  # still serving


def test_a_repeated_idempotency_key_gives_the_same_run(shared_service: Service) -> None:
    """Two create_flow_run calls with one idempotency key make one flow run, run once."""
    svc = shared_service
    key = f"backend-request-{uuid.uuid4()}"
    params = _params(svc, mutation={"fn": "PR_SET_TITLE", "data": {"ref_id": "1", "title": "once"}})
    first = svc.trigger("mutate", params, key=key)
    second = svc.trigger("mutate", params, key=key)
    assert first["id"] == second["id"]
    assert svc.wait(first["id"])["state"]["type"] == "COMPLETED"
    assert svc.trigger("mutate", params, key=key)["id"] == first["id"]  # also after it ran
    assert svc.log.count(f"id={first['id']}") == 1  # started once


def test_requests_older_than_their_limit_are_refused(shared_service: Service) -> None:
    """A mutation due 20 s ago and an export due 6 minutes ago are cancelled with a message saying why."""
    svc = shared_service

    def scheduled(seconds_ago: float) -> dict[str, object]:
        at = (datetime.now(UTC) - timedelta(seconds=seconds_ago)).isoformat()
        return {"state": {"type": "SCHEDULED", "state_details": {"scheduled_time": at}}}

    old_mutation = svc.trigger("mutate", _params(svc, mutation={"fn": "PR_SET_TITLE", "data": {}}),
                               **scheduled(20))
    old_export = svc.trigger("export", _params(svc), **scheduled(360))
    for run_id, limit in ((old_mutation["id"], "15s"), (old_export["id"], "300s")):
        state = svc.wait(run_id)["state"]
        assert state["type"] == "CANCELLED"
        assert "ignored by the agent" in state["message"] and f"older than {limit}" in state["message"]
    started = [line for line in svc.log.splitlines() if "run started" in line]
    assert not [line for line in started if old_mutation["id"] in line or old_export["id"] in line]


def test_a_run_scheduled_for_later_starts_at_its_time_not_when_announced(shared_service: Service) -> None:
    """Prefect announces a run when it is created; one scheduled 5 s ahead still starts only when due."""
    svc = shared_service
    at = datetime.now(UTC) + timedelta(seconds=5)
    run = svc.trigger("mutate", _params(svc, mutation={"fn": "PR_SET_TITLE", "data": {"ref_id": "1", "title": "t"}}),
                      state={"type": "SCHEDULED", "state_details": {"scheduled_time": at.isoformat()}})
    time.sleep(2)
    assert svc.read(run["id"])["state"]["type"] == "SCHEDULED"
    done = svc.wait(run["id"], timeout=30)
    assert done["state"]["type"] == "COMPLETED"
    assert datetime.fromisoformat(done["start_time"]) >= at


def _warm_pid(svc: Service, key: str) -> int:
    found = re.findall(rf"warm plugin started integration={re.escape(key)} .*?pid=(\d+)", svc.log)
    assert found, svc.log[-2000:]
    return int(found[-1])


def test_warm_plugin_is_reused_and_restarted_after_a_crash(shared_service: Service) -> None:
    """Interactive runs share one plugin process; killed, it is restarted by the health check and serves again."""
    svc = shared_service
    params = _params(svc, mutation={"fn": "PR_SET_TITLE", "data": {"ref_id": "1", "title": "warm"}})
    params["integrations"] = [{"id": "warm", "name": "mock", "type": 1, "config": {}}]
    svc.run("mutate", params)
    pid = _warm_pid(svc, "mock@SOURCECODE@warm")
    svc.run("mutate", params)
    assert svc.log.count("warm plugin started integration=mock@SOURCECODE@warm") == 1  # reused, not restarted
    assert pid in svc.plugin_pids()
    os.kill(pid, signal.SIGKILL)
    svc.wait_log("warm plugin restarted", timeout=15)
    svc.wait_log("warm plugin started integration=mock@SOURCECODE@warm", count=2)
    new_pid = _warm_pid(svc, "mock@SOURCECODE@warm")
    assert new_pid != pid and new_pid in svc.plugin_pids()
    _, result = svc.run("mutate", params)
    assert result["success"] is True
    assert _warm_pid(svc, "mock@SOURCECODE@warm") == new_pid


def test_heartbeat_goes_to_the_log_and_a_prefect_variable(shared_service: Service) -> None:
    """The service logs a heartbeat and keeps its Prefect variable current: pinpoint_agent_heartbeat, or, for
    an agent with another deployment name (as each test service has), pinpoint_agent_heartbeat_<name>."""
    svc = shared_service
    assert heartbeat_variable("agent") == "pinpoint_agent_heartbeat"
    assert heartbeat_variable("EU-1.prod") == "pinpoint_agent_heartbeat_eu_1_prod"
    svc.wait_log("heartbeat", timeout=10, count=2)
    assert svc.proc is not None
    deadline = time.monotonic() + 10
    while True:
        r = svc.http.get(f"/variables/name/pinpoint_agent_heartbeat_{svc.name}")
        if r.status_code == 200 and r.json()["value"]["pid"] == svc.proc.pid:
            break
        assert time.monotonic() < deadline, r.text
        time.sleep(0.2)
    beat = r.json()["value"]
    assert beat["api_reachable"] is True and "warm_plugins" in beat


def test_one_export_at_a_time_the_next_waits_in_the_queue(shared_service: Service) -> None:
    """Two export runs triggered together run one after the other: the second starts after the first ended."""
    svc = shared_service
    params = _params(svc) | {"integrations": mock(users=3, repos=4, prs_per_repo=3000)}
    first = svc.trigger("export", params)
    second = svc.trigger("export", params)
    runs = [svc.wait(r["id"], timeout=120) for r in (first, second)]
    assert [r["state"]["type"] for r in runs] == ["COMPLETED", "COMPLETED"]
    a, b = sorted(runs, key=lambda r: r["start_time"])
    assert b["start_time"] >= a["end_time"]
    assert "export queued behind the running one" in svc.log


def test_secret_store_references_are_resolved_in_the_agent_only(shared_service: Service, tmp_path) -> None:
    """A token sent as "secret-store:<name>" is read from the root's encrypted store; Prefect keeps only the
    reference and no log line holds the token."""
    from pydantic import SecretStr

    from pinpoint_agent.backend import EnrolledConfig, open_secret_store, save_config

    svc = shared_service
    root = tmp_path / "enrolled"
    root.mkdir()
    save_config(root, EnrolledConfig(api_key=SecretStr("k" * 20), customer_id="c1", device_id="d1",
                                     backend_url="http://127.0.0.1:9", encryption_key=SecretStr("ab" * 32)))
    token = f"tok-{uuid.uuid4().hex}"
    open_secret_store(root).put("mock-1.token", token)
    params = {"integrations": [{"id": "s1", "name": "mock", "type": 1,
                                "config": {"token": "secret-store:mock-1.token"}}],
              "mutation": {"fn": "PR_SET_TITLE", "data": {"ref_id": "1", "title": "t"}}, "pinpoint_root": str(root)}
    run, result = svc.run("mutate", params)
    assert result["success"] is True
    assert run["parameters"]["integrations"][0]["config"]["token"] == "secret-store:mock-1.token"
    logs = [svc.log] + [p.read_text(errors="replace") for p in (root / "logs").rglob("*") if p.is_file()]
    assert not [text for text in logs if token in text]
