"""Reading a plugin's log lines: what level and message each carries, whatever wrote it.

Three shapes reach the host on a plugin's stderr (or its go-plugin stdio stream):

- the SDK's structlog JSON: ``{"level": "info", "event": "export finished", "timestamp": …, key: value}``;
- hclog JSON (Go plugins, ``JSONFormat: true``):
  ``{"@level": "warn", "@message": "slow", "@module": "github", "@timestamp": …, key: value}``;
- hclog text: ``2024-01-01T00:00:00.000Z [INFO]  module: message: key=value key2="two words"`` (the
  timestamp and the module are optional; levels are TRACE, DEBUG, INFO, WARN, ERROR).

Anything else is a plain line at info. ``crash_start`` tells where a crash report begins (a Python
traceback, a Go ``panic:`` or runtime ``fatal error:``), so the host can repeat a Go report from its head
rather than the tail of a goroutine dump. Pure functions: no I/O here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

LEVELS = {"trace": "debug", "debug": "debug", "info": "info", "warn": "warning", "warning": "warning",
          "error": "error", "err": "error", "fatal": "critical", "critical": "critical"}

_TEXT = re.compile(r"^(?:(?P<ts>\d{4}-\d\d-\d\dT\S+)\s+)?\[(?P<level>TRACE|DEBUG|INFO|WARN|ERROR)\]\s+(?P<rest>.*)$")
_VALUE = r'(?:"(?:[^"\\]|\\.)*"|\S*)'
_PAIR = re.compile(r'\s(?P<key>[^\s="]+)=(?P<value>' + _VALUE + ")")
# hclog ends the message with ":" and then writes " key=value" pairs.
_WITH_ARGS = re.compile(r"^(?P<head>.*?):(?P<args>(?:\s[^\s=\"]+=" + _VALUE + r")+)$")
_MODULE = re.compile(r"^(?P<module>[\w.\-/]+): (?P<message>.+)$")
_GO_CRASH = ("panic: ", "fatal error: ")


@dataclass
class LogLine:
    level: str  # a structlog method name: debug, info, warning, error, critical
    message: str
    fields: dict[str, Any] = field(default_factory=dict)
    traceback: bool = False  # the line carries a Python exception (structlog's ``exception`` field)


def parse_line(line: str) -> LogLine:
    """The level, message and fields of one plugin log line."""
    if line.startswith("{"):
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError:
            event = None
        if isinstance(event, dict):
            return _from_json(event)
    match = _TEXT.match(line)
    if match:
        return _from_text(match.group("level"), match.group("rest"))
    return LogLine("info", line, {"stream": "stderr"})


def _from_json(event: dict[str, Any]) -> LogLine:
    if "@level" in event or "@message" in event:  # hclog
        level = str(event.pop("@level", "info"))
        message = str(event.pop("@message", ""))
        module = event.pop("@module", None)
        event.pop("@timestamp", None)
        caller = event.pop("@caller", None)
        fields = {_safe_key(k): v for k, v in event.items()}
        if module:
            fields["module"] = module
        if caller:
            fields["caller"] = caller
        return LogLine(_level(level), message, fields)
    level = str(event.pop("level", "info"))
    message = str(event.pop("event", ""))
    event.pop("timestamp", None)
    event.pop("integration", None)
    return LogLine(_level(level), message, {_safe_key(k): v for k, v in event.items()},
                   traceback=bool(event.get("exception")))


def _from_text(level: str, rest: str) -> LogLine:
    fields: dict[str, Any] = {}
    head = rest
    with_args = _WITH_ARGS.match(rest)
    if with_args:
        head = with_args.group("head")
        for pair in _PAIR.finditer(with_args.group("args")):
            value = pair.group("value")
            if value.startswith('"'):
                try:
                    value = str(orjson.loads(value))
                except orjson.JSONDecodeError:
                    value = value[1:-1]
            fields[_safe_key(pair.group("key"))] = value
    # "module: message": hclog names a named logger's module first. A first part with a space in it is
    # part of the message ("export failed: timeout"), not a module.
    named = _MODULE.match(head)
    if named:
        fields["module"] = named.group("module")
        head = named.group("message")
    return LogLine(_level(level), head, fields)


def _level(name: str) -> str:
    return LEVELS.get(name.strip().lower(), "info")


def _safe_key(key: str) -> str:
    # structlog takes fields as keyword arguments; these names are its own.
    return f"plugin_{key}" if key in ("event", "level", "integration", "exc_info") else key


def crash_start(line: str) -> str | None:
    """``"go"`` for the first line of a Go crash report (``panic:``, runtime ``fatal error:``), whose cause
    is at its head; ``"python"`` for a Python traceback, whose cause is at its end; else ``None``."""
    if line.startswith(_GO_CRASH):
        return "go"
    if line.startswith("Traceback (most recent call last)"):
        return "python"
    return None
