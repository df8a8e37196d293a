"""Builds the gRPC server of one environment: the service, health checking, reflection, and drain on SIGTERM.

Concurrency model: one server process per pod, one environment per process, scaled out by Kubernetes
replicas. Environment steps run in a small thread pool off the event loop; sessions are sticky because an
episode lives in exactly one process and the client pool pins it to that pod's address.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from env_server import registry
from env_server.envs.base import Environment
from env_server.metrics import ServerMetrics
from env_server.runtime import Limits, Runtime
from env_server.security import ServerSecurity
from env_server.service import EnvironmentServicer, safe_deserializer
from shiftgym.env.v1 import env_pb2 as pb

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["EnvironmentService"].full_name
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
_OPTIONS = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.so_reuseport", 0),  # a second server on a taken port must fail, not share it silently
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
)


def _handlers(servicer: EnvironmentServicer) -> grpc.GenericRpcHandler:
    # Built by hand rather than with the generated add_*_to_server so that undecodable requests
    # (e.g. invalid UTF-8 in a string field) reach the servicer and get INVALID_ARGUMENT, not INTERNAL.
    service = pb.DESCRIPTOR.services_by_name["EnvironmentService"]
    handlers = {}
    for method in service.methods:
        request_type = getattr(pb, method.input_type.name)
        response_type = getattr(pb, method.output_type.name)
        kind = grpc.stream_stream_rpc_method_handler if method.client_streaming else grpc.unary_unary_rpc_method_handler
        handlers[method.name] = kind(
            getattr(servicer, method.name),
            request_deserializer=safe_deserializer(request_type),
            response_serializer=response_type.SerializeToString,
        )
    return grpc.method_handlers_generic_handler(SERVICE_NAME, handlers)


@dataclass
class EnvServer:
    """A built server: start() it, then stop() or drain()."""

    server: grpc.aio.Server
    port: int
    runtime: Runtime
    health: health.aio.HealthServicer

    async def start(self) -> None:
        await self.server.start()
        self.runtime.start()
        for name in ("", SERVICE_NAME):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace_s: float | None = None) -> None:
        await self.server.stop(grace_s)
        await self.runtime.aclose()

    async def drain(self, grace_s: float) -> None:
        """Stop taking episodes, let running ones finish within grace_s, then stop."""
        self.runtime.draining = True
        for name in ("", SERVICE_NAME):
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        deadline = time.monotonic() + grace_s
        while self.runtime.running_episodes and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        log.info("drained", extra={"unfinished_episodes": self.runtime.running_episodes})
        await self.stop(grace_s=1.0)


async def build_server(
    env: str | Environment,
    address: str = "127.0.0.1:0",
    limits: Limits | None = None,
    metrics: ServerMetrics | None = None,
    security: ServerSecurity | None = None,
) -> EnvServer:
    """Build (not start) a server for one environment; the returned port is the one actually bound.

    `security` adds TLS or mutual TLS and bearer tokens (env_server/security.py); without it the port is plaintext.
    """
    environment = registry.load(env) if isinstance(env, str) else env
    limits = limits or Limits()
    metrics = metrics or ServerMetrics(environment.spec.name)
    security = security or ServerSecurity()
    runtime = Runtime(environment, limits, metrics)
    interceptors = security.interceptors(lambda method: metrics.error(method.rsplit("/", 1)[-1], "UNAUTHENTICATED"))
    server = grpc.aio.server(options=_OPTIONS, maximum_concurrent_rpcs=None, interceptors=interceptors)
    server.add_generic_rpc_handlers((_handlers(EnvironmentServicer(runtime, security)),))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    credentials = security.credentials()
    port = server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"could not bind {address}: the port is taken or the address is not local")
    return EnvServer(server, port, runtime, health_servicer)
