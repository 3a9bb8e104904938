"""The token never leaves the Authorization header: not in logs, output, state, results or errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from tests.github.conftest import agent_export
from tests.github.fake_github import TOKEN, FakeGitHub
from tests.github.test_cli import every_file_text


def test_no_token_in_any_file_or_error_even_when_things_go_wrong(
    fake: FakeGitHub, gh_config: dict[str, Any], agent_root: Path
) -> None:
    """Failures (a repo gone, retried 5xx, rate limits, a rejected token) leave no token in any log line,
    output
    or state file under the root, in the result JSON, or in an error."""
    fake.gone.add("docs")
    fake.fail("/repos/acme/web/pulls", 502, times=1)
    fake.rate_limit("/repos/acme/api/pulls/2/commits", "429", wait=1)
    failing = agent_export(agent_root, {**gh_config, "concurrency": 2})
    assert [bool(p["error"]) for p in failing.integration["projects"]] == [False, False, True, False]
    after_failures = every_file_text(agent_root)  # integration logs keep the last run only: read them now
    assert "rate limited, waiting" in after_failures and "retrying" in after_failures
    wrong = "ghp_WRONG_token_1234567890"
    rejected = agent_export(agent_root, {**gh_config, "api_key": wrong})
    assert "rejected the token" in rejected.integration["error"]
    log = (agent_root / "logs" / "integrations" / "github@SOURCECODE@gh1").read_text()
    assert "rejected the token" in log  # the log of the last run is there, and it is what we grep below
    texts = [
        after_failures,
        every_file_text(agent_root),
        orjson.dumps(failing.result).decode(),
        orjson.dumps(rejected.result).decode(),
        repr([g.request for g in failing.git]),
    ]
    for text in texts:
        assert TOKEN not in text and wrong not in text
