"""Plugin log lines read into level, message and fields (pinpoint_agent.host.plugin_log), shape by shape."""

from __future__ import annotations

import pytest

from pinpoint_agent.host.plugin_log import LogLine, crash_start, parse_line


@pytest.mark.parametrize("line, expected", [
    ('{"@level":"debug","@message":"dialing","@module":"plugin.go-example","@timestamp":"2024-01-01T00:00:00Z",'
     '"@caller":"main.go:12","broker_id":3}',
     LogLine("debug", "dialing", {"module": "plugin.go-example", "caller": "main.go:12", "broker_id": 3})),
    ('{"@level":"trace","@message":"x"}', LogLine("debug", "x", {})),
    ('{"@level":"error","@message":"boom","event":"e","level":"l"}',
     LogLine("error", "boom", {"plugin_event": "e", "plugin_level": "l"})),
    ('{"level":"warning","event":"slow","timestamp":"t","integration":"x","n":1}',
     LogLine("warning", "slow", {"n": 1})),
    ('2024-01-01T00:00:00.000-0700 [WARN]  github: rate limit: remaining=5 note="a \\"quoted\\" word"',
     LogLine("warning", "rate limit", {"module": "github", "remaining": "5", "note": 'a "quoted" word'})),
    ("2024-01-01T00:00:00.000Z [ERROR] export failed: timeout reached",
     LogLine("error", "export failed: timeout reached", {})),
    ("[TRACE] tick", LogLine("debug", "tick", {})),
    ("not a log line [INFO] really", LogLine("info", "not a log line [INFO] really", {"stream": "stderr"})),
    ("{not json", LogLine("info", "{not json", {"stream": "stderr"})),
])
def test_lines_keep_their_level_message_and_fields(line, expected):
    """Each shape a plugin writes (hclog JSON and text, structlog JSON, plain) gives its own level and fields."""
    assert parse_line(line) == expected


def test_crash_reports_are_recognised_by_their_first_line():
    """Go panics and runtime fatal errors start a Go crash report; a Python traceback a Python one."""
    assert crash_start("panic: runtime error: invalid memory address or nil pointer dereference") == "go"
    assert crash_start("fatal error: concurrent map writes") == "go"
    assert crash_start("Traceback (most recent call last):") == "python"
    assert crash_start("goroutine 1 [running]:") is None and crash_start("a panic: not at the start") is None
