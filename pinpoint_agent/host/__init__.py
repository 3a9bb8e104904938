"""The agent's side of the plugin protocol: start integrations, call them, serve their callbacks."""

from pinpoint_agent.host.callbacks import AgentServicer, Callbacks
from pinpoint_agent.host.client import Cancelled, IntegrationHost
from pinpoint_agent.host.process import PluginProcess, resolve_command

__all__ = ["AgentServicer", "Callbacks", "Cancelled", "IntegrationHost", "PluginProcess", "resolve_command"]
