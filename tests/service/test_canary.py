"""A canary credential inside URLs and under a config key nobody declared, through the CLI and the ``run``
service, then searched for everywhere it must not be: Prefect's database and API, logs, outputs (gzip
opened), results, state, the mirror cache, and the argv of every process sampled while the commands ran."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import orjson
import psutil

from pinpoint_agent.secrets import open_store
from tests.conftest import GitServer

from .conftest import Service

AGENT = [sys.executable, "-m", "pinpoint_agent.cli"]


class ArgvSampler:
    """Samples the command line of every process on the machine (but the caller's own) until stopped."""

    def __init__(self, exclude: set[int]) -> None:
        self.exclude = exclude
        self.seen: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for p in psutil.process_iter(["pid", "cmdline"]):
                if p.info["pid"] not in self.exclude and p.info["cmdline"]:
                    self.seen[p.info["pid"]] = " ".join(p.info["cmdline"])
            self._stop.wait(0.01)

    def stop(self) -> dict[int, str]:
        self._stop.set()
        self._thread.join()
        return self.seen


def _texts_under(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` as bytes, gzip files opened."""
    out = {}
    for p in folder.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            if p.name.endswith(".gz"):
                try:
                    data += gzip.decompress(data)
                except (OSError, EOFError):
                    pass
            out[str(p)] = data
    return out


def _where(canary: str, places: dict[str, bytes]) -> list[str]:
    return sorted(name for name, data in places.items() if canary.encode() in data)


def test_a_canary_in_urls_and_unknown_keys_leaks_nowhere(make_service, prefect_api: str, prefect_home: Path,
                                                         git_server: GitServer, tmp_path: Path) -> None:
    """CLI export, validate-config and onboarding, then the service's validate-config, mutate and export,
    with the canary as a URL's password (git repos, the mock's test clone) and under an unknown key: found in
    zero places, while the clone and the mirror did authenticate with it."""
    canary = git_server.password
    host = git_server.url.split("://", 1)[1]
    secret_url = f"http://{git_server.user}:{canary}@{host}"
    entries = [
        {"id": "g1", "name": "git", "type": 1, "config": {"repos": [secret_url], "zz_unknown": canary}},
        {"id": "m1", "name": "mock", "type": 1, "config": {"repos": 1, "prs_per_repo": 2, "users": 1,
                                                           "git_repos": [secret_url], "zz_unknown": canary}},
    ]
    root = tmp_path / "cli-root"
    ints = tmp_path / "ints.json"
    ints.write_bytes(orjson.dumps(entries))
    one = tmp_path / "one.json"
    one.write_bytes(orjson.dumps(entries[:1]))
    outputs: dict[str, bytes] = {}
    sampler = ArgvSampler(exclude={os.getpid()})
    try:
        for name, args in (("export", ["export", "--integrations-file", str(ints)]),
                           ("validate", ["validate-config", "--integrations-file", str(one)]),
                           ("onboard", ["export-onboard-data", "--object-type", "repos", "--integrations-file",
                                        str(one)])):
            out = tmp_path / f"{name}.json"
            proc = subprocess.run([*AGENT, *args, "--pinpoint-root", str(root), "--output-file", str(out)],
                                  capture_output=True, timeout=300, stdin=subprocess.DEVNULL)
            assert proc.returncode == 0, proc.stderr.decode()[-2000:]
            outputs[f"{name} stdout"], outputs[f"{name} stderr"] = proc.stdout, proc.stderr
            outputs[f"{name} result"] = out.read_bytes()
        result = orjson.loads(outputs["export result"])
        assert [i["error"] for i in result["integrations"]] == ["", ""]
        assert result["integrations"][0]["objects"]["sourcecode.Commit"] == 1  # the mirror authenticated
        assert orjson.loads(outputs["validate result"])["success"] is True  # so did the test clone
        assert git_server.authorizations

        # The service: a backend passes a reference to a config it stored with the agent.
        svc_root = tmp_path / "svc-root"
        open_store(svc_root).put("git-1", orjson.dumps(entries[0]["config"]).decode())
        svc: Service = make_service(svc_root)
        svc.start()
        ref = [{"id": "g1", "name": "git", "type": 1, "config": "secret-store:git-1"}]
        for command, params in (("validate-config", {}), ("export", {}),
                                ("export-onboard-data", {"object_type": "repos"})):
            run, res = svc.run(command, {"integrations": ref, "pinpoint_root": str(svc_root), **params},
                               timeout=180)
            assert run["state"]["type"] == "COMPLETED"
            outputs[f"service {command} result"] = orjson.dumps(res)
        api = httpx.Client(base_url=prefect_api, timeout=30)
        outputs["prefect api flow runs"] = api.post("/flow_runs/filter", json={"limit": 200}).content
        outputs["prefect api logs"] = api.post("/logs/filter", json={"limit": 200}).content
        outputs["prefect api artifacts"] = api.post("/artifacts/filter", json={"limit": 200}).content
    finally:
        argvs = sampler.stop()
    places: dict[str, bytes] = {**outputs, **_texts_under(root), **_texts_under(svc_root),
                                **_texts_under(prefect_home)}
    places.update({f"argv of {pid}": cmd.encode() for pid, cmd in argvs.items()})
    assert any(str(root / "cache") in name for name in places)  # the mirror cache was searched
    assert any("prefect.db" in name for name in places)
    leaks = _where(canary, places)
    assert leaks == [], leaks
    assert len(argvs) > 3  # the sampler saw the commands' children

