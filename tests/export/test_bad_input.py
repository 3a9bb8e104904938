"""Bad input: one clear line on stderr, exit 1, no traceback, nothing written or corrupted."""

from __future__ import annotations

import os

import pytest

from tests.export.helpers import run_cli

GOOD = '[{"id":"1","name":"mock","type":1,"config":{}}]'


def check_one_line(proc, words):
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and words in lines[0]
    assert "Traceback" not in proc.stdout + proc.stderr


@pytest.mark.parametrize("args, words", [
    (["--integrations-json", "[{not json"], "--integrations-json is not valid JSON"),
    ([], "no integrations given"),
    (["--integrations-json", "[]"], "non-empty JSON list"),
    (["--integrations-json", '[{"name":"nosuch","type":1}]'], "unknown integration 'nosuch'"),
    (["--integrations-json", '[{"name":"mock","type":9}]'], "unknown type 9"),
    (["--integrations-json", GOOD, "--agent-config-json", "{oops"], "--agent-config-json is not valid JSON"),
    (["--integrations-json", GOOD, "--agent-config-json", '{"git_max_concurrent": 0}'], "git_max_concurrent"),
    (["--integrations-json", GOOD, "--log-format", "xml"], "--log-format"),
    (["--integrations-json", GOOD, "--no-such-flag"], "no-such-flag"),
])
def test_bad_arguments(tmp_path, args, words):
    """Each malformed or missing input is named in one line and nothing is created under the root."""
    root = tmp_path / "root"
    proc = run_cli("export", "--pinpoint-root", str(root), *args)
    check_one_line(proc, words)
    assert not root.exists()


def test_config_file_that_is_not_json(tmp_path):
    """An integrations file with text in it is refused with its path in the message."""
    f = tmp_path / "ints.json"
    f.write_text("integrations: yes\n")
    check_one_line(run_cli("export", "--integrations-file", str(f), "--pinpoint-root", str(tmp_path / "r")),
                   str(f))


def test_missing_config_file(tmp_path):
    """A missing integrations file is one line naming it."""
    check_one_line(run_cli("export", "--integrations-file", str(tmp_path / "nope.json")), "cannot read")


def test_integration_binary_missing(tmp_path):
    """An external integration that is not in the integrations dir (and not built in) is named."""
    idir = tmp_path / "ints"
    (idir / "bin").mkdir(parents=True)
    proc = run_cli("export", "--integrations-json", '[{"name":"sonarqube","type":2,"config":{}}]',
                   "--integrations-dir", str(idir), "--pinpoint-root", str(tmp_path / "r"))
    check_one_line(proc, "unknown integration 'sonarqube'")


@pytest.mark.skipif(os.geteuid() == 0 and not os.environ.get("PINPOINT_TEST_CHATTR"), reason="root reads anything")
def test_unreadable_root(tmp_path):  # pragma: no cover - only meaningful as a non-root user
    """A root the agent cannot write is one line."""
    root = tmp_path / "ro"
    root.mkdir(mode=0o500)
    check_one_line(run_cli("export", "--integrations-json", GOOD, "--pinpoint-root", str(root)), "cannot use")


def test_root_that_is_a_file(tmp_path):
    """A root path that is a regular file (so nothing can be created in it) is one line; the file is untouched."""
    root = tmp_path / "root"
    root.write_text("precious")
    check_one_line(run_cli("export", "--integrations-json", GOOD, "--pinpoint-root", str(root)), "cannot use")
    assert root.read_text() == "precious"


def test_output_file_in_missing_folder(tmp_path):
    """An --output-file whose folder does not exist is refused before the export starts."""
    proc = run_cli("export", "--integrations-json", GOOD, "--pinpoint-root", str(tmp_path / "r"),
                   "--output-file", str(tmp_path / "no" / "out.json"))
    check_one_line(proc, "does not exist")


def _no_prefect_env() -> dict[str, str]:
    """The environment without a Prefect API: a command that got past its checks would start a server."""
    return {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}


def _run_clean(*args: str, env: dict[str, str] | None = None):
    import subprocess

    from tests.export.helpers import AGENT

    return subprocess.run([*AGENT, *args], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                          env={**_no_prefect_env(), **(env or {})})


def test_inputs_refused_before_anything_is_written_or_started(tmp_path):
    """Each bad input of this list is one line and exit 1, with no root, no output file and no server."""
    big = tmp_path / "big.json"
    big.write_text('[{"name":"mock","type":1,"config":{"pad":"' + "x" * (600 * 1024) + '"}}]')
    latin = tmp_path / "latin1.json"
    latin.write_bytes('[{"name":"mock","type":1,"config":{"who":"Jos\xe9"}}]'.encode("latin-1"))
    folder = tmp_path / "a-folder"
    folder.mkdir()
    cases = [
        (["--integrations-file", str(big)], "the limit is 524288 bytes", {}),
        (["--integrations-json", GOOD, "--output-file", str(folder)], "is a folder", {}),
        (["--integrations-json", '[{"name":"mock","type":true}]'], "[0].type: must be a whole number", {}),
        (["--integrations-json", '[{"name":"mock","id":{"a":1}}]'], "[0].id", {}),
        (["--integrations-json", GOOD, "--log-level", "loud"], "--log-level must be one of", {}),
        (["--integrations-json", GOOD, "--agent-config-json", '{"idle_timeout": -1}'], "idle_timeout", {}),
        (["--integrations-json", GOOD, "--agent-config-json", '{"backend_url": "not a url", "api_key": "k"}'],
         "backend_url: must be an http(s) url", {}),
        (["--integrations-file", str(latin)], "is not UTF-8 text", {}),
        (["--integrations-json", GOOD], "PINPOINT_PREFECT_IDLE_STOP must be a positive number",
         {"PINPOINT_PREFECT_IDLE_STOP": "-3"}),
    ]
    for args, words, env in cases:
        root = tmp_path / "root"
        out = tmp_path / "out.json"
        proc = _run_clean("export", "--pinpoint-root", str(root), *(args if "--output-file" in args else
                                                                  [*args, "--output-file", str(out)]), env=env)
        check_one_line(proc, words)
        assert not root.exists() and not out.exists(), args


def test_a_corrupt_state_store_is_one_line_with_the_way_out(tmp_path):
    """Random bytes inside state.db: one line naming the file and how to rebuild it, exit 1, the root left
    as it was and no Prefect server started (not an error hidden inside a result with exit 0)."""
    import sqlite3

    root = tmp_path / "root"
    db_path = root / "state" / "state.db"
    db_path.parent.mkdir(parents=True)
    db = sqlite3.connect(db_path)
    db.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB)")
    db.executemany("INSERT INTO t VALUES (?, ?)", [(f"k{i}", os.urandom(200)) for i in range(2000)])
    db.commit()
    db.close()
    data = bytearray(db_path.read_bytes())
    data[8192:8192 + 4096] = os.urandom(4096)  # a page in the middle
    db_path.write_bytes(bytes(data))
    before = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*"))
    proc = _run_clean("export", "--pinpoint-root", str(root), "--integrations-json", GOOD)
    check_one_line(proc, f"the state store {db_path} is corrupt")
    assert f"mv {db_path} {db_path}.corrupt" in proc.stderr
    assert sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")) == before
