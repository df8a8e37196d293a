"""What `python -m env_server serve` binds: /metrics on the --host address unless --metrics-host says otherwise."""

from __future__ import annotations

import socket
import urllib.request

from tests.servers import ServerProcess


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of the IPv4 sockets listening on `port`, from /proc/net/tcp (state 0A is LISTEN)."""
    found = set()
    with open("/proc/net/tcp") as table:
        for line in list(table)[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


def test_metrics_bind_the_host_address_by_default() -> None:
    with ServerProcess("null", "--log-level", "warning") as server:  # --host 127.0.0.1
        assert _listening_addresses(server.metrics_port) == {"127.0.0.1"}
        body = urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=10).read()
        assert b"shiftgym_env_active_sessions" in body


def test_metrics_host_can_differ_from_the_grpc_host() -> None:
    with ServerProcess("null", "--log-level", "warning", "--metrics-host", "0.0.0.0") as server:
        assert _listening_addresses(server.metrics_port) == {"0.0.0.0"}
