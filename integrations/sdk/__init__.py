"""The plugin SDK: write an integration as a subclass of ``Integration`` and run it with ``serve``.

    class Hello(Integration):
        name = "hello"

        def export(self, ctx: Context) -> ExportResult:
            with ctx.require_agent().session("sourcecode.Repo") as repos:
                repos.send({"id": "1", "ref_id": "1", "ref_type": "hello", "name": "world", "hashcode": "…"})
            return ExportResult()

    if __name__ == "__main__":
        serve(Hello)
"""

# First: in a plugin process it defers modules grpc and protobuf import but a plugin does not use.
from integrations.sdk import _startup  # noqa: F401

# isort: split
from integrations.sdk._agent import AgentClient, Session
from integrations.sdk._base import Context, Integration
from integrations.sdk._log import Logger, configure_logging, get_logger
from integrations.sdk._server import serve
from pinpoint_agent.errors import ConfigError, FatalError, NotSupportedError, RetriableError
from pinpoint_agent.protocol import (
    ExportProject,
    ExportResult,
    GitPullRequest,
    GitRepoRequest,
    MutateResult,
    OnboardObjectType,
    ValidateResult,
    WebhookResult,
)
from pinpoint_agent.urls import SplitURL, clean_url, split_url

__all__ = [
    "AgentClient",
    "ConfigError",
    "Context",
    "ExportProject",
    "ExportResult",
    "FatalError",
    "GitPullRequest",
    "GitRepoRequest",
    "Integration",
    "Logger",
    "MutateResult",
    "NotSupportedError",
    "OnboardObjectType",
    "RetriableError",
    "Session",
    "SplitURL",
    "ValidateResult",
    "WebhookResult",
    "clean_url",
    "configure_logging",
    "get_logger",
    "serve",
    "split_url",
]
