"""Thin clients of one env server over the unary RPCs: AsyncEnvClient (grpc.aio) and EnvClient (blocking).

Every call has a deadline; a non-OK status becomes EnvCallError. Domain values in, domain values out.
"""

from __future__ import annotations

from typing import Any

import grpc

from env_server import convert
from env_server.types import Opened, StepResult, TaskInfo
from shiftgym.env.v1 import env_pb2 as pb
from shiftgym.env.v1 import env_pb2_grpc
from trainer.client import channels, requests
from trainer.client.errors import EnvCallError
from trainer.client.requests import ServerInfo
from trainer.client.stream import AsyncSessionStream, SessionStream

DEFAULT_TIMEOUT_S = 30.0


class AsyncEnvClient:
    def __init__(self, target: str, timeout_s: float = DEFAULT_TIMEOUT_S,
                 security: channels.ChannelSecurity | None = None) -> None:
        self.target = target
        self.timeout_s = timeout_s
        self._channel = channels.open_async_channel(target, security)
        self._stub = env_pb2_grpc.EnvironmentServiceStub(self._channel)

    async def __aenter__(self) -> "AsyncEnvClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._channel.close()

    async def _call(self, method: Any, request: Any, timeout_s: float | None) -> Any:
        try:
            return await method(request, timeout=timeout_s or self.timeout_s)
        except grpc.aio.AioRpcError as err:
            raise EnvCallError.from_rpc(err) from None

    async def describe(self, timeout_s: float | None = None) -> ServerInfo:
        return requests.server_info(await self._call(self._stub.Describe, pb.DescribeRequest(), timeout_s))

    async def list_tasks(self, split: str = "", difficulty: str = "", page_size: int = 1000) -> list[TaskInfo]:
        tasks, token = [], ""
        while True:
            page = await self._call(
                self._stub.ListTasks,
                pb.ListTasksRequest(split=split, difficulty=difficulty, page_size=page_size, page_token=token),
                None,
            )
            tasks.extend(convert.task_from_proto(t) for t in page.tasks)
            if not (token := page.next_page_token):
                return tasks

    async def reset(self, task_id: str = "", *, timeout_s: float | None = None, **kwargs: Any) -> Opened:
        """Open an episode; see requests.reset_request for the keyword arguments (seed, interface, ...)."""
        response = await self._call(self._stub.Reset, requests.reset_request(task_id, **kwargs), timeout_s)
        return requests.opened(response)

    async def step(
        self, session_id: str, action: str, step_index: int | None = None, timeout_s: float | None = None
    ) -> tuple[StepResult, int]:
        response = await self._call(self._stub.Step, requests.step_request(session_id, action, step_index), timeout_s)
        return requests.stepped(response)

    async def close(self, session_id: str, timeout_s: float | None = None) -> None:
        await self._call(self._stub.Close, pb.CloseRequest(session_id=session_id), timeout_s)

    async def oracle_action(self, session_id: str, timeout_s: float | None = None) -> str:
        response = await self._call(self._stub.OracleAction, pb.OracleActionRequest(session_id=session_id), timeout_s)
        return response.action

    def stream(self) -> AsyncSessionStream:
        """A Session stream multiplexing many episodes; use as `async with client.stream() as s:`."""
        return AsyncSessionStream(self._stub, self.timeout_s)


class EnvClient:
    """The blocking twin of AsyncEnvClient, for scripts, notebooks and the Gymnasium adapter."""

    def __init__(self, target: str, timeout_s: float = DEFAULT_TIMEOUT_S,
                 security: channels.ChannelSecurity | None = None) -> None:
        self.target = target
        self.timeout_s = timeout_s
        self._channel = channels.open_channel(target, security)
        self._stub = env_pb2_grpc.EnvironmentServiceStub(self._channel)

    def __enter__(self) -> "EnvClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close_channel()

    def close_channel(self) -> None:
        self._channel.close()

    def _call(self, method: Any, request: Any, timeout_s: float | None) -> Any:
        try:
            return method(request, timeout=timeout_s or self.timeout_s)
        except grpc.RpcError as err:
            raise EnvCallError.from_rpc(err) from None  # type: ignore[arg-type]

    def describe(self, timeout_s: float | None = None) -> ServerInfo:
        return requests.server_info(self._call(self._stub.Describe, pb.DescribeRequest(), timeout_s))

    def list_tasks(self, split: str = "", difficulty: str = "", page_size: int = 1000) -> list[TaskInfo]:
        tasks, token = [], ""
        while True:
            page = self._call(
                self._stub.ListTasks,
                pb.ListTasksRequest(split=split, difficulty=difficulty, page_size=page_size, page_token=token),
                None,
            )
            tasks.extend(convert.task_from_proto(t) for t in page.tasks)
            if not (token := page.next_page_token):
                return tasks

    def reset(self, task_id: str = "", *, timeout_s: float | None = None, **kwargs: Any) -> Opened:
        return requests.opened(self._call(self._stub.Reset, requests.reset_request(task_id, **kwargs), timeout_s))

    def step(
        self, session_id: str, action: str, step_index: int | None = None, timeout_s: float | None = None
    ) -> tuple[StepResult, int]:
        return requests.stepped(
            self._call(self._stub.Step, requests.step_request(session_id, action, step_index), timeout_s)
        )

    def close(self, session_id: str, timeout_s: float | None = None) -> None:
        self._call(self._stub.Close, pb.CloseRequest(session_id=session_id), timeout_s)

    def oracle_action(self, session_id: str, timeout_s: float | None = None) -> str:
        return self._call(self._stub.OracleAction, pb.OracleActionRequest(session_id=session_id), timeout_s).action

    def stream(self) -> SessionStream:
        """A blocking Session stream; use as `with client.stream() as s:`."""
        return SessionStream(self._stub, self.timeout_s)
