"""An export flow run in its own process, started by the service for a run it claimed.

    python -m pinpoint_agent.service._export_process <flow run id> <root> <log format> <log level>

Exports run apart from the service (their memory, their plugins, their crash) and can be stopped the way
Prefect stops a run: SIGTERM reaches Prefect's engine in this process's main thread, the export flow cancels
its integrations (open sessions roll back, plugins are reaped) and the run ends Crashed; the service then
puts it back in the queue. Logs go to ``<root>/logs/export``, as for the CLI's export.
Exit codes: 0 the run completed, 1 it did not, 143 stopped by SIGTERM.
"""

from __future__ import annotations

import sys
from pathlib import Path
from uuid import UUID


def main(argv: list[str]) -> int:
    flow_run_id, root, log_format, log_level = argv
    from pinpoint_agent.log import setup

    setup("export", Path(root) / "logs", fmt=log_format, level=log_level)
    from prefect.client.orchestration import get_client
    from prefect.exceptions import TerminationSignal

    from pinpoint_agent.prefect_compat import run_claimed
    from pinpoint_agent.service._commands import COMMANDS

    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(UUID(flow_run_id))
    try:
        state = run_claimed(COMMANDS["export"].flow, flow_run)
    except TerminationSignal:
        return 143
    return 0 if state.is_completed() else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
