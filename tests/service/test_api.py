"""The service and the Prefect API: it rides out an outage, and prefect.yaml deploys every command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil
import pytest

from pinpoint_agent.prefect_server import local_url, read_info, revive, stop_local
from tests.export.helpers import assert_nothing_lost, read_export

from .conftest import FINAL, LOCAL, Proxy, Service, mock

ROOT = Path(__file__).resolve().parents[2]


def test_service_rides_out_an_api_outage(make_service, prefect_api: str) -> None:
    """With the API cut for a few seconds (connections dropped, new ones refused), the service keeps going and
    runs the mutation the backend created meanwhile once the API is back."""
    proxy = Proxy(urlsplit(prefect_api).port or 80)
    svc: Service = make_service()
    svc.api_for_service = f"http://127.0.0.1:{proxy.port}/api"
    svc.start()
    params = {"integrations": mock(), "mutation": {"fn": "PR_SET_TITLE", "data": {"ref_id": "1", "title": "t"}}}
    svc.run("mutate", params)
    proxy.down()
    run = svc.trigger("mutate", params)  # the backend reaches the server; the agent does not
    time.sleep(4)
    assert svc.read(run["id"])["state"]["type"] == "SCHEDULED"
    proxy.up()
    assert svc.wait(run["id"], timeout=60)["state"]["type"] == "COMPLETED"
    assert svc.result(run["id"])["success"] is True
    assert "Prefect API unreachable; retrying" in svc.log and "Prefect API reachable again" in svc.log
    svc.wait_log("Prefect event stream open again", timeout=30)  # and the events wake it again


def test_a_dead_local_prefect_server_is_started_again(make_service, tmp_path: Path) -> None:
    """Without PREFECT_API_URL the service runs on the root's own Prefect server. Killed (SIGKILL, as the
    OOM killer would), it is started again at the same address, and the service runs what the backend
    sends there."""
    root = tmp_path / "local-root"
    svc: Service = make_service(root)
    svc.api_for_service = LOCAL
    home = root / "prefect"
    try:
        svc.start(timeout=150)  # starts the root's server first
        url = local_url(home)
        svc.http = httpx.Client(base_url=url, timeout=30)
        params = {"integrations": mock(), "mutation": {"fn": "PR_SET_TITLE", "data": {"ref_id": "1", "title": "t"}}}
        svc.run("mutate", params)
        os.kill(read_info(home)["pid"], signal.SIGKILL)
        svc.wait_log("the local Prefect server had stopped; started it again", timeout=150)
        assert local_url(home) == url
        # A mutation first seen 15 s after it was made is ignored: send it once the service is back (on a
        # loaded machine its first calls to a server just started can take that long)
        svc.wait_log("Prefect API reachable again", timeout=60)
        _, result = svc.run("mutate", params, timeout=90)
        assert result["success"] is True
        # Nothing to do for an address that is not this root's server, or for a server that answers.
        assert not revive(home, "http://127.0.0.1:1/api") and not revive(home, url)
    finally:
        if svc.proc is not None:
            assert svc.stop() == 0
        stop_local(home)


def test_prefect_event_wakes_the_service_at_once(make_service) -> None:
    """With both poll intervals at two minutes, runs the backend creates still start within seconds: the
    service hears Prefect's ``prefect.flow-run.Scheduled`` event and polls at once."""
    svc: Service = make_service()
    svc.env = {"PINPOINT_POLL_INTERVAL": "120", "PINPOINT_EVENTS_POLL_INTERVAL": "120"}
    svc.start()
    svc.wait_log("listening to Prefect's event stream")
    params = {"integrations": mock(), "mutation": {"fn": "PR_SET_TITLE", "data": {"ref_id": "1", "title": "t"}}}
    for _ in range(3):
        started = time.monotonic()
        run = svc.trigger("mutate", params)
        assert svc.wait(run["id"], timeout=30)["state"]["type"] == "COMPLETED"
        assert time.monotonic() - started < 30
        assert svc.result(run["id"])["success"] is True


@pytest.fixture(scope="module")
def pool_deployed(prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """`prefect deploy --all` from prefect.yaml (no network: the pull step only sets the folder) onto a
    process work pool, and automations.yaml's automation; returns the environment the Prefect CLI ran with."""
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "PWD": str(ROOT),
           "PREFECT_HOME": str(tmp_path_factory.mktemp("prefect-cli"))}
    prefect = [sys.executable, "-m", "prefect"]
    pool = subprocess.run([*prefect, "work-pool", "create", "pinpoint-agent", "--type", "process", "--overwrite"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert pool.returncode == 0, pool.stdout + pool.stderr
    deploy = subprocess.run([*prefect, "--no-prompt", "deploy", "--all"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert deploy.returncode == 0, deploy.stdout[-3000:] + deploy.stderr[-3000:]
    automation = subprocess.run([*prefect, "automation", "create", "--from-file", "automations.yaml"], cwd=ROOT,
                                env=env, capture_output=True, text=True, timeout=120)
    assert automation.returncode == 0, automation.stdout[-3000:] + automation.stderr[-3000:]
    return env


def test_prefect_yaml_deploys_every_command_to_a_work_pool(pool_deployed: dict[str, str], prefect_api: str,
                                                           tmp_path: Path) -> None:
    """Every command is deployed on the process pool from its one flow in flows/, the export limited to one
    at a time, and the cron-scheduled export."""
    svc = Service(tmp_path, prefect_api, "pool")
    for command, module in (("export", "export"), ("validate-config", "validate_config"),
                            ("export-onboard-data", "onboard"), ("mutate", "mutate"), ("webhook", "webhook")):
        d = svc.request("GET", f"/deployments/name/{command}/pool").json()
        assert d["work_pool_name"] == "pinpoint-agent" and d["entrypoint"].startswith(f"flows/{module}.py:")
        assert d["pull_steps"] == [{"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}]
    assert svc.request("GET", "/deployments/name/export/pool").json()["global_concurrency_limit"]["limit"] == 1
    nightly = svc.request("GET", "/deployments/name/export/nightly").json()
    assert [s["schedule"]["cron"] for s in nightly["schedules"]] == ["0 3 * * *"]
    assert uuid.UUID(nightly["id"])


def test_a_process_worker_runs_an_export_and_a_mutate_on_a_new_root(pool_deployed: dict[str, str],
                                                                    prefect_api: str, tmp_path: Path) -> None:
    """A real `prefect worker` runs the deployed export and mutate flows; the export's root did not exist
    before (the flow makes it), and both results are published as the runs' result artifacts."""
    root = tmp_path / "worker-root"
    env = {**pool_deployed, "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "1"}
    worker = subprocess.Popen([sys.executable, "-m", "prefect", "worker", "start", "--pool", "pinpoint-agent"],
                              cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        svc = Service(root, prefect_api, "pool")
        export = svc.trigger("export", {"integrations": mock(repos=2, prs_per_repo=3),
                                        "pinpoint_root": str(root)})
        mutate = svc.trigger("mutate", {"integrations": mock(), "pinpoint_root": str(root),
                                        "mutation": {"fn": "PR_SET_TITLE", "data": {"ref_id": "1", "title": "t"}}})
        assert svc.wait(export["id"], timeout=240)["state"]["type"] == "COMPLETED"
        assert svc.wait(mutate["id"], timeout=240)["state"]["type"] == "COMPLETED"
        [integration] = svc.result(export["id"])["integrations"]
        assert integration["error"] == "" and integration["objects"]["sourcecode.PullRequest"] == 6
        assert svc.result(mutate["id"])["success"] is True
        assert list((root / "exports").rglob("*.json.gz"))
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(60)


def test_another_prefect_version_is_one_line_saying_what_to_do(tmp_path: Path) -> None:
    """With a Prefect release other than the one prefect_compat was read against, `run` stops with one line
    naming both versions and the way out, not a traceback from a moved internal."""
    code = ("import sys, prefect; prefect.__version__ = '3.10.0'; from pinpoint_agent.cli import main; "
            f"main(['run', '--pinpoint-root', {str(tmp_path / 'root')!r}])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PREFECT_API_URL": "http://127.0.0.1:9/api"}, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1
    line = proc.stderr.strip().splitlines()[-1]
    assert "Traceback" not in proc.stderr
    assert line.startswith("error: pinpoint-agent was checked with Prefect 3.9.x but Prefect 3.10.0 is installed")
    assert "PINPOINT_PREFECT_UNCHECKED=1" in line


def _worker(env: dict[str, str], root: Path, limit: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "prefect", "worker", "start", "--pool", "pinpoint-agent",
                             "--limit", str(limit)], cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True,
                            env={**env, "PINPOINT_ROOT": str(root), "PREFECT_WORKER_QUERY_SECONDS": "1",
                                 "PREFECT_WORKER_PREFETCH_SECONDS": "1"})


def test_an_export_of_eight_integrations_fans_out_over_two_workers(pool_deployed: dict[str, str],
                                                                   prefect_api: str, tmp_path: Path) -> None:
    """With fan_out_deployment set, an export of 8 integrations runs one child run per integration on the
    export/fan-out deployment; two process workers with different roots share them, and the parent's result
    and summary hold every integration's objects."""
    roots = [tmp_path / "worker-a", tmp_path / "worker-b"]
    workers = [_worker(pool_deployed, r, limit=5) for r in roots]
    try:
        svc = Service(tmp_path, prefect_api, "pool")
        entries = [{"id": f"m{i}", "name": "mock", "type": 1, "config": {"repos": 1, "prs_per_repo": i + 1}}
                   for i in range(8)]
        parent = svc.trigger("export", {"integrations": entries,
                                        "agent_config": {"fan_out_deployment": "export/fan-out"}})
        run = svc.wait(parent["id"], timeout=400)
        assert run["state"]["type"] == "COMPLETED", run["state"]
        result = svc.result(parent["id"])
        # (The eight entries share one state key, mock@SOURCECODE: on one root the later ones run incremental,
        # so counts differ per entry; what each child reported is what its worker's root holds.)
        assert sorted((i["id"], i["error"]) for i in result["integrations"]) == [(f"m{i}", "") for i in range(8)]
        assert len(result["children"]) == 8
        written = sum(len(read_export(r).get("sourcecode.PullRequest", [])) for r in roots)
        assert written == sum(i["objects"].get("sourcecode.PullRequest", 0) for i in result["integrations"]) > 0
        children = svc.request("POST", "/flow_runs/filter", json={"flow_runs": {"parent_flow_run_id": {
            "operator": "and_", "any_": [parent["id"]]}}}).json()
        assert len(children) == 8 and all(c["state"]["type"] == "COMPLETED" for c in children)
        share = [len(list((r / "exports").glob("*"))) if (r / "exports").exists() else 0 for r in roots]
        assert min(share) >= 1, share  # both workers took part (an export with nothing new leaves no folder)
    finally:
        for w in workers:
            os.killpg(w.pid, signal.SIGTERM)
        for w in workers:
            w.wait(60)


def test_workers_with_different_roots_share_state_in_postgresql(pool_deployed: dict[str, str], prefect_api: str,
                                                                pg_url: str, tmp_path: Path) -> None:
    """With PINPOINT_STATE_URL on both workers, an export run by worker A and the next one by worker B (another
    root, another machine as far as the agent knows) is incremental: B continues from A's tokens."""
    svc = Service(tmp_path, prefect_api, "pool")
    params = {"integrations": mock(repos=2, prs_per_repo=3, new_prs_per_run=1)}
    results = []
    for name in ("worker-a", "worker-b"):
        worker = _worker({**pool_deployed, "PINPOINT_STATE_URL": pg_url}, tmp_path / name, limit=1)
        try:
            run = svc.wait(svc.trigger("export", params)["id"], timeout=240)
            assert run["state"]["type"] == "COMPLETED", run["state"]
            results.append(svc.result(run["id"])["integrations"][0])
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(60)
    assert [(r["error"], r["incremental"]) for r in results] == [("", False), ("", True)]
    assert results[0]["objects"]["sourcecode.PullRequest"] == 6
    assert results[1]["objects"]["sourcecode.PullRequest"] == 2  # only the run's new ones
    assert list((tmp_path / "worker-b" / "exports").rglob("*.json.gz"))


def _flow_run_process(worker: psutil.Process) -> psutil.Process | None:
    """The flow-run process a process worker started (its child running Prefect's engine), if any yet."""
    for child in worker.children():
        try:
            if "integrations." not in " ".join(child.cmdline()):
                return child
        except psutil.Error:
            continue
    return None


KILL_REPOS, KILL_PRS = 12, 4000


def test_kill_9_of_a_worker_mid_export_then_a_rerun_on_the_other_loses_nothing(
        pool_deployed: dict[str, str], prefect_api: str, pg_url: str, tmp_path: Path) -> None:
    """Worker A (state in PostgreSQL) runs an export/pool run and is killed with -9 together with its flow-run
    process after the first sessions committed; the plugin exits by itself. The dead run, left Running, holds the
    deployment's one slot until automations.yaml's automation marks it Crashed (no heartbeat); then worker B
    (another root) reruns the export at once: the killed run's complete files and B's together hold every
    object, every token is current, nothing staged stays, and the dead run's integration claim is gone."""
    from pinpoint_agent.root import Root
    from pinpoint_agent.stores import open_state
    from tests.export.helpers import plugins_of

    env = {**pool_deployed, "PINPOINT_STATE_URL": pg_url}
    root_a, root_b = tmp_path / "worker-a", tmp_path / "worker-b"
    svc = Service(tmp_path, prefect_api, "pool")
    params = {"integrations": mock(repos=KILL_REPOS, prs_per_repo=KILL_PRS, users=3),
              "agent_config": {"customer_id": "c9"}}
    worker_a = _worker(env, root_a, limit=1)
    worker_b: subprocess.Popen[bytes] | None = None
    try:
        killed = svc.trigger("export", params)
        flow_run, plugin_pids, deadline = None, set(), time.monotonic() + 120
        while True:
            flow_run = flow_run or _flow_run_process(psutil.Process(worker_a.pid))
            if flow_run is not None:
                worker_b = worker_b or _worker(env, root_b, limit=1)  # starts meanwhile; A has the run
                plugin_pids |= {p.pid for p in plugins_of(flow_run.pid)}
            done = list((root_a / "exports").rglob("sourcecode.PullRequest/*.json.gz")) if root_a.exists() else []
            if len(done) >= 2:
                break
            assert time.monotonic() < deadline, svc.read(killed["id"])["state"]
            assert svc.read(killed["id"])["state"]["type"] not in FINAL, "the export ended before it was killed"
            time.sleep(0.02)
        assert flow_run is not None and plugin_pids
        os.kill(worker_a.pid, signal.SIGKILL)
        flow_run.kill()
        worker_a.wait()
        killed_at = time.monotonic()
        # The plugin notices its agent is gone (stdin EOF) and exits: no orphan.
        assert psutil.wait_procs([psutil.Process(p) for p in plugin_pids if psutil.pid_exists(p)], timeout=10)[1] == []
        first = read_export(root_a).get("sourcecode.PullRequest", [])
        assert 0 < len(first) < KILL_REPOS * KILL_PRS

        dead = svc.wait(killed["id"], timeout=180)  # 30 s heartbeats, Crashed after 90 s without one
        assert dead["state"]["type"] == "CRASHED" and "no heartbeat" in dead["state"]["message"], dead["state"]
        print(f"crashed {time.monotonic() - killed_at:.1f}s after the kill")
        rerun = svc.wait(svc.trigger("export", params)["id"], timeout=120)
        assert rerun["state"]["type"] == "COMPLETED", rerun["state"]
        [result] = svc.result(rerun["id"])["integrations"]
        assert result["error"] == "" and result["incremental"] is True
        assert list((root_b / "exports").rglob("*.json.gz"))
        state = open_state(Root(root_b), pg_url)
        assert_nothing_lost([root_a, root_b], state, KILL_REPOS, KILL_PRS)
        state.close()
    finally:
        for w in (worker_a, worker_b):
            if w is not None and w.poll() is None:
                os.killpg(w.pid, signal.SIGTERM)
        for w in (worker_a, worker_b):
            if w is not None:
                w.wait(60)
