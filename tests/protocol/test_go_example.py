"""The Go example integration (examples/go-plugin, hashicorp/go-plugin 1.0.1 from Debian), built here and run
as a real Go plugin: a one-shot CLI export twice (the second incremental) and a warm plugin (the run
service's pool) idle 6 s, past go-plugin's 5 s broker window, before it dials, exporting twice. Skipped, with
the reason, where the Go toolchain or Debian's Go sources are missing (CI installs them: .ci/run)."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import orjson
import pytest

from pinpoint_agent.config import AgentConfig
from pinpoint_agent.errors import NotSupportedError, PluginCrashed
from pinpoint_agent.exporter import ExportJob
from pinpoint_agent.host import IntegrationHost
from pinpoint_agent.interactive import Target
from pinpoint_agent.protocol import CallConfig, IntegrationConfig, IntegrationType
from pinpoint_agent.root import Root
from pinpoint_agent.service._plugins import WarmPlugins
from tests.export.helpers import read_export, run_cli

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "examples" / "go-plugin" / "build.sh"
NEEDS = {"go": "golang-go", "protoc": "protobuf-compiler", "protoc-gen-go": "protoc-gen-go",
         "protoc-gen-go-grpc": "protoc-gen-go-grpc"}
SOURCES = {"/usr/share/gocode/src/github.com/hashicorp/go-plugin": "golang-github-hashicorp-go-plugin-dev",
           "/usr/share/gocode/src/google.golang.org/grpc": "golang-google-grpc-dev",
           "/usr/share/gocode/src/google.golang.org/protobuf": "golang-google-protobuf-dev",
           # 1.5 (over APIv2); with 1.3 gRPC's codec panics on messages from today's protoc-gen-go
           "/usr/share/gocode/src/github.com/golang/protobuf/proto/registry.go":
               "golang-github-golang-protobuf-1-5-dev"}


def _missing() -> list[str]:
    return [pkg for tool, pkg in NEEDS.items() if shutil.which(tool) is None] + \
        [pkg for path, pkg in SOURCES.items() if not Path(path).exists()]


pytestmark = [
    pytest.mark.skipif(bool(_missing()), reason="the Go example needs the Debian packages "
                       + ", ".join(_missing()) + " (apt-get install them; .ci/run does)"),
    pytest.mark.usefixtures("no_leaked_processes"),
]


@pytest.fixture(scope="module")
def go_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("go-example")
    proc = subprocess.run([str(BUILD), str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (out / "bin" / "go-example").is_file()
    return out


def entry(**config: object) -> dict[str, object]:
    return {"id": "go1", "name": "go-example", "type": 1, "config": config}


@pytest.mark.usefixtures("prefect_api")
def test_one_shot_cli_exports_twice_incrementally(go_dir, tmp_path):
    """`pinpoint-agent export --integrations-dir` runs the Go plugin: the first export sends its repos, the
    second is incremental and sends only the repo added since; its hclog lines reach the integration's log."""
    root, out = tmp_path / "root", tmp_path / "r.json"
    results = []
    for repos in (3, 4):
        proc = run_cli("export", "--integrations-json", orjson.dumps([entry(repos=repos)]).decode(),
                       "--integrations-dir", str(go_dir), "--pinpoint-root", str(root), "--output-file", str(out),
                       "--agent-config-json", '{"customer_id": "c1"}')
        assert proc.returncode == 0, proc.stderr
        results.append(orjson.loads(out.read_bytes()))
    first, second = (r["integrations"][0] for r in results)
    assert first["error"] == "" and first["incremental"] is False
    assert second["error"] == "" and second["incremental"] is True
    assert [p["name"] for p in second["projects"]] == [f"example/repo{i}" for i in range(1, 5)]
    assert [o["ref_id"] for o in read_export(root, results[0]["export_id"])["sourcecode.Repo"]] == ["1", "2", "3"]
    assert [o["ref_id"] for o in read_export(root, results[1]["export_id"])["sourcecode.Repo"]] == ["4"]
    log = (root / "logs" / "integrations" / "go-example@SOURCECODE@go1").read_text()
    assert '"@message":"export started"' in log and '"incremental":true' in log


def _export(target: Target, host) -> tuple[bool, dict[str, int]]:
    job = ExportJob.begin(Root(target.root), target.agent)
    manager = job.manager(target.entry)
    incremental = job.state.has_tokens(target.entry.state_key + "/")
    try:
        host.export(target.call_config, timeout=60, callbacks=manager)
        manager.rollback_open()
        job.finish([], [])
    finally:
        job.state.close()
    return incremental, manager.objects_by_model()


def test_warm_go_plugin_dials_after_a_6_s_pause(go_dir, tmp_path):
    """A warm Go plugin idle 6 s (past the 5 s a go-plugin broker offer lives) exports twice, dialing the
    agent in each call; the second is incremental. UNIMPLEMENTED calls answer "not supported"."""
    target = Target(entry=IntegrationConfig(id="go1", name="go-example", type=IntegrationType.SOURCECODE,
                                            config={"repos": 3}),
                    agent=AgentConfig(), root=tmp_path / "root", integrations_dir=go_dir)
    pool = WarmPlugins()
    try:
        with pool.lease(target) as host:
            time.sleep(6)
            assert _export(target, host) == (False, {"sourcecode.Repo": 3})
            assert _export(target, host) == (True, {})
            with pytest.raises(NotSupportedError, match="^go-example does not support validate-config$"):
                host.validate_config(target.call_config, timeout=10)
            pid = host.process.proc.pid
        with pool.lease(target) as host:
            assert host.process.proc.pid == pid  # the same warm process served every call
    finally:
        pool.close()


def test_go_panic_is_a_crash_with_its_cause(go_dir, tmp_path):
    """A real Go panic in the plugin is a crash (exit code 2) whose error starts at the panic message."""
    e = IntegrationConfig(id="go1", name="go-example", type=IntegrationType.SOURCECODE, config={"panic": True})
    with IntegrationHost.start(e, root=tmp_path, integrations_dir=go_dir) as host, \
            pytest.raises(PluginCrashed) as info:
        host.export(CallConfig(integration=e), timeout=30)
    assert info.value.exit_code == 2
    assert "panic: runtime error: index out of range" in str(info.value)


@pytest.mark.usefixtures("prefect_api")
def test_go_panic_in_a_cli_export_is_in_the_result_and_on_stdout(go_dir, tmp_path):
    """Through the CLI, the Go panic is the integration's error in the result (exit 0) and is repeated on
    the agent's stdout, cause first."""
    out = tmp_path / "r.json"
    proc = run_cli("export", "--integrations-json", orjson.dumps([entry(panic=True)]).decode(),
                   "--integrations-dir", str(go_dir), "--pinpoint-root", str(tmp_path / "root"),
                   "--output-file", str(out))
    assert proc.returncode == 0, proc.stderr
    error = orjson.loads(out.read_bytes())["integrations"][0]["error"]
    assert "crashed (exit code 2)" in error and "panic: runtime error: index out of range" in error
    assert "panic: runtime error: index out of range" in proc.stdout
