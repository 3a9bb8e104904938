"""go-plugin's handshake: the magic cookie in the child's environment and the one stdout line
``CORE|APP|NETWORK|ADDRESS|PROTOCOL[|SERVER_CERT]`` the plugin prints when it is serving."""

from __future__ import annotations

from dataclasses import dataclass

from pinpoint_agent.errors import PinpointError

MAGIC_COOKIE_KEY = "PLUGIN"
MAGIC_COOKIE_VALUE = "pinpoint-agent-plugin"
CORE_PROTOCOL_VERSION = 1
APP_PROTOCOL_VERSION = 1

# Largest message either side accepts: a batch of objects or an onboarding answer.
MAX_MESSAGE_BYTES = 100 * 1024 * 1024
GRPC_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
]


class HandshakeError(PinpointError):
    """The handshake line is not one this host can use."""


@dataclass(frozen=True)
class Handshake:
    network: str  # "tcp" or "unix"
    address: str

    @property
    def target(self) -> str:
        """The gRPC target for this address."""
        return f"unix:{self.address}" if self.network == "unix" else self.address

    def line(self) -> str:
        return f"{CORE_PROTOCOL_VERSION}|{APP_PROTOCOL_VERSION}|{self.network}|{self.address}|grpc"


def parse_handshake(line: str) -> Handshake:
    """Parses and checks a handshake line (five fields, or six with go-plugin's server certificate)."""
    text = line.strip()
    parts = text.split("|")
    if len(parts) not in (5, 6):
        raise HandshakeError(f"expected the handshake line CORE|APP|NETWORK|ADDRESS|grpc, got {text[:200]!r}")
    core, app, network, address, proto = parts[:5]
    if core != str(CORE_PROTOCOL_VERSION):
        raise HandshakeError(f"unsupported go-plugin core protocol version {core!r}")
    if app != str(APP_PROTOCOL_VERSION):
        raise HandshakeError(f"plugin speaks app protocol {app!r}, this agent speaks {APP_PROTOCOL_VERSION}")
    if network not in ("tcp", "unix"):
        raise HandshakeError(f"unsupported network {network!r} in handshake")
    if proto != "grpc":
        raise HandshakeError(f"plugin protocol {proto!r} is not grpc")
    if len(parts) == 6 and parts[5]:
        raise HandshakeError("plugin asks for mTLS (server certificate in handshake), which this agent does not use")
    return Handshake(network, address)
