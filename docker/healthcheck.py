"""Docker HEALTHCHECK of the env-server image: exit 0 when the server's standard gRPC health check says SERVING.

The check reads `--host` and `--port` off the server's command line (PID 1), so it follows whatever
`docker run IMAGE --port N` chose; $SHIFTGYM_HEALTH_PORT overrides the port.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

# The server's own defaults (`python -m env_server serve --help`).
DEFAULT_HOST, DEFAULT_PORT = "0.0.0.0", "50051"
_ANY = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "[::]": "[::1]"}


def option(cmdline: list[str], name: str, default: str) -> str:
    for i, arg in enumerate(cmdline):
        if arg == name and i + 1 < len(cmdline):
            return cmdline[i + 1]
        if arg.startswith(f"{name}="):
            return arg.partition("=")[2]
    return default


def target(cmdline: list[str]) -> str:
    """Where to reach the server from inside its container: loopback when it binds every address."""
    host = option(cmdline, "--host", DEFAULT_HOST)
    host = _ANY.get(host, f"[{host}]" if ":" in host and not host.startswith("[") else host)
    port = os.environ.get("SHIFTGYM_HEALTH_PORT") or option(cmdline, "--port", DEFAULT_PORT)
    return f"{host}:{int(port)}"


def main() -> int:
    address = target(Path("/proc/1/cmdline").read_bytes().decode().split("\0"))
    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=3)
        except grpc.RpcError as err:
            print(f"health check of {address}: {err.code().name}", file=sys.stderr)  # type: ignore[attr-defined]
            return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(f"{address}: {status}")
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


if __name__ == "__main__":
    sys.exit(main())
