"""The token never leaves its header: not in logs, output, state, results or errors, even when things fail."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from tests.github.test_cli import every_file_text
from tests.gitlab.conftest import agent_export
from tests.gitlab.fake_gitlab import USER_TOKEN, FakeGitLab


def test_no_token_in_any_file_or_error_even_when_things_go_wrong(
    fake: FakeGitLab, gl_config: dict[str, Any], agent_root: Path
) -> None:
    """Failures (a project gone, retried 5xx, a 429, a rejected token) leave no token in any log line, output
    or state file under the root, in the result JSON, in an error or in a git request's url."""
    fake.fail("/projects/13/merge_requests", 404, times=10)
    fake.fail("/projects/12/merge_requests", 502, times=1)
    fake.rate_limit("/projects/11/merge_requests/2/commits", wait=1)
    failing = agent_export(agent_root, {**gl_config, "concurrency": 2})
    assert [bool(p["error"]) for p in failing.integration["projects"]] == [False, False, True]
    after_failures = every_file_text(agent_root)  # integration logs keep the last run only: read them now
    assert "rate limited, waiting" in after_failures and "retrying" in after_failures
    wrong = "glpat-WRONG-token-1234567890"
    rejected = agent_export(agent_root, {**gl_config, "access_token": wrong})
    assert "rejected the token" in rejected.integration["error"]
    log = (agent_root / "logs" / "integrations" / "gitlab@SOURCECODE@gl1").read_text()
    assert "rejected the token" in log
    texts = [
        after_failures,
        every_file_text(agent_root),
        orjson.dumps(failing.result).decode(),
        orjson.dumps(rejected.result).decode(),
        repr([g.request for g in failing.git]),
        " ".join(g.request.url for g in failing.git),
    ]
    for text in texts:
        assert USER_TOKEN not in text and wrong not in text
