"""One env server as the pool sees it: its channel, a Session stream for episode traffic, its health and its open
episodes."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shiftgym.env.v1 import env_pb2 as pb
from shiftgym.env.v1 import env_pb2_grpc
from trainer.client import channels, requests
from trainer.client.errors import EnvCallError
from trainer.client.requests import ServerInfo
from trainer.client.stream import AsyncSessionStream

Code = grpc.StatusCode
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["EnvironmentService"].full_name


class Pod:
    """One env server: its channel, its Session stream, its health and the count of its open episodes."""

    def __init__(self, target: str, call_s: float, security: channels.ChannelSecurity | None = None) -> None:
        self.target = target
        self.call_s = call_s
        self.healthy = False
        self.retired = False  # gone from DNS: no new episodes; closed when its last one ends
        self.in_flight = 0  # episodes placed here and not yet over
        self.channel = channels.open_async_channel(target, security)
        self._stub = env_pb2_grpc.EnvironmentServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self._health = health_pb2_grpc.HealthStub(self.channel)
        self._stream: AsyncSessionStream | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False

    async def call(self, method: str, timeout_s: float, *args: object, **kwargs: object) -> Any:
        stream = self._stream
        if self._closed:
            raise EnvCallError(Code.CANCELLED, f"the pool closed its channel to {self.target}")
        if stream is None:
            stream = self._stream = await AsyncSessionStream(self._stub, self.call_s).__aenter__()
        try:
            return await getattr(stream, method)(*args, timeout_s=timeout_s, **kwargs)
        except EnvCallError as err:
            if err.code == Code.UNAVAILABLE and self._stream is stream:
                self._retire_stream()  # a broken stream stays broken: the next call opens a new one
            raise

    def _retire_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            task = asyncio.get_running_loop().create_task(stream.__aexit__(None, None, None))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def check(self, timeout_s: float) -> bool:
        try:
            response = await self._health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=timeout_s)
        except grpc.aio.AioRpcError:
            return False
        return bool(response.status == health_pb2.HealthCheckResponse.SERVING)

    async def describe(self, timeout_s: float) -> ServerInfo:
        try:
            return requests.server_info(await self._stub.Describe(pb.DescribeRequest(), timeout=timeout_s))
        except grpc.aio.AioRpcError as err:
            raise EnvCallError.from_rpc(err) from None

    async def aclose(self) -> None:
        self._closed = True
        self._retire_stream()
        await asyncio.gather(*self._closing, return_exceptions=True)
        await self.channel.close()
