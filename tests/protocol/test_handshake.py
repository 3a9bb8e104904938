import pytest

from pinpoint_agent.protocol import parse_handshake
from pinpoint_agent.protocol.handshake import HandshakeError


def test_tcp_line_parses_to_a_grpc_target():
    """Our plugins' five-field tcp line gives the host a host:port target."""
    hs = parse_handshake("1|1|tcp|127.0.0.1:1234|grpc\n")
    assert (hs.network, hs.target) == ("tcp", "127.0.0.1:1234")


def test_go_plugin_unix_line_with_empty_certificate_field_parses():
    """go-plugin 1.0.1 prints a unix socket and a sixth (empty) field; the host accepts it."""
    hs = parse_handshake("1|1|unix|/tmp/plugin123|grpc|")
    assert hs.target == "unix:/tmp/plugin123"


@pytest.mark.parametrize("line, words", [
    ("hello, I am not a handshake", "CORE|APP"),
    ("2|1|tcp|127.0.0.1:1|grpc", "core protocol"),
    ("1|7|tcp|127.0.0.1:1|grpc", "app protocol"),
    ("1|1|udp|127.0.0.1:1|grpc", "network"),
    ("1|1|tcp|127.0.0.1:1|netrpc", "not grpc"),
    ("1|1|tcp|127.0.0.1:1|grpc|Q0VSVA==", "mTLS"),
])
def test_bad_lines_are_refused_with_a_reason(line, words):
    """Each kind of unusable handshake is refused with an error that says what is wrong."""
    with pytest.raises(HandshakeError, match=words):
        parse_handshake(line)
