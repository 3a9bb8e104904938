"""``pinpoint-agent run``: the long-running service.

It serves one Prefect deployment per backend command (the flows in ``flows/``) and runs their flow runs
in its own process. The backend triggers a command with Prefect's REST API (``POST
/api/deployments/{id}/create_flow_run``); the service hears of the new Scheduled run on Prefect's event
stream and polls for it at once (it also polls every second, every 100 ms while the stream is down; the
agent only makes outbound connections), claims it and runs the flow with Prefect's engine in a thread:
an interactive command on a warm plugin process, an export one at a time. Every command is a flow run in
the Prefect UI; its result JSON is an artifact of the run.

Import ``serve`` only after ``PREFECT_API_URL`` is set (``pinpoint_agent.prefect_server.ensure_api``):
Prefect reads its settings on import. (Loaded lazily, so ``flows/`` can use the plain helpers here.)
"""

from __future__ import annotations

from typing import Any

__all__ = ["Service", "Settings", "serve"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from pinpoint_agent.service import _service

        return getattr(_service, name)
    raise AttributeError(name)
