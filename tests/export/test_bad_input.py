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
    proc = run_cli("export", "--integrations-json", '[{"name":"jira","type":0,"config":{"url":"https://x.atlassian.net"}}]',
                   "--integrations-dir", str(idir), "--pinpoint-root", str(tmp_path / "r"))
    check_one_line(proc, "unknown integration 'jira-cloud'")


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
