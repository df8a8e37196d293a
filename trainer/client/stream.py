"""Clients of the Session stream: many episodes multiplexed over one stream, matched by correlation id.

Each call waits for its own response with a deadline; when the stream breaks, every call in flight fails
with UNAVAILABLE instead of hanging.
"""

from __future__ import annotations

import asyncio
import itertools
import queue
import threading
from concurrent.futures import Future
from typing import Any, AsyncIterator, Iterator

import grpc

from env_server.types import Opened, StepResult
from shiftgym.env.v1 import env_pb2 as pb
from trainer.client import requests
from trainer.client.errors import EnvCallError

_BROKEN = "the Session stream ended: {reason}"


_REFUSALS = frozenset({grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED})


def _unwrap(response: pb.SessionResponse, kind: str) -> Any:
    if response.WhichOneof("kind") == "error":
        raise EnvCallError.from_code(response.error.code, response.error.message)
    return getattr(response, kind)


class AsyncSessionStream:
    """`async with client.stream() as s: opened = await s.reset(task_id, seed=1)`."""

    def __init__(self, stub: Any, timeout_s: float) -> None:
        self._stub = stub
        self.timeout_s = timeout_s
        self._ids = itertools.count()
        self._pending: dict[str, asyncio.Future[pb.SessionResponse]] = {}
        self._outbox: asyncio.Queue[pb.SessionRequest | None] = asyncio.Queue()
        self._broken: EnvCallError | None = None

    async def __aenter__(self) -> "AsyncSessionStream":
        self._call = self._stub.Session(self._requests())
        self._reader = asyncio.get_running_loop().create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._outbox.put_nowait(None)
        try:
            await asyncio.wait_for(asyncio.shield(self._reader), timeout=self.timeout_s)
        except asyncio.TimeoutError:
            self._call.cancel()
            self._reader.cancel()

    async def _requests(self) -> AsyncIterator[pb.SessionRequest]:
        while (request := await self._outbox.get()) is not None:
            yield request

    async def _read(self) -> None:
        reason, code = "closed by the client", grpc.StatusCode.UNAVAILABLE
        try:
            async for response in self._call:
                future = self._pending.pop(response.correlation_id, None)
                if future is not None and not future.done():
                    future.set_result(response)
        except grpc.aio.AioRpcError as err:
            reason = f"{err.code().name}: {err.details()}"
            # A stream refused for who is calling stays refused: retrying elsewhere would not help.
            if err.code() in _REFUSALS:
                code = err.code()
        except asyncio.CancelledError:
            reason = "cancelled"
        self._broken = EnvCallError(code, _BROKEN.format(reason=reason))
        for future in self._pending.values():
            if not future.done():
                future.set_exception(self._broken)
        self._pending.clear()

    async def _send(self, kind: str, message: Any, timeout_s: float | None) -> Any:
        if self._broken is not None:
            raise self._broken
        correlation_id = str(next(self._ids))
        loop = asyncio.get_running_loop()
        future: asyncio.Future[pb.SessionResponse] = loop.create_future()
        self._pending[correlation_id] = future
        # A timer, not asyncio.wait_for: wait_for wraps every call in a task, which costs more than the call.
        deadline = loop.call_later(timeout_s or self.timeout_s, self._expire, correlation_id, kind)
        self._outbox.put_nowait(pb.SessionRequest(correlation_id=correlation_id, **{kind: message}))
        try:
            response = await future
        finally:
            deadline.cancel()
        return _unwrap(response, kind)

    def _expire(self, correlation_id: str, kind: str) -> None:
        future = self._pending.pop(correlation_id, None)
        if future is not None and not future.done():
            future.set_exception(
                EnvCallError(grpc.StatusCode.DEADLINE_EXCEEDED, f"no answer to {kind} within the deadline")
            )

    async def reset(self, task_id: str = "", *, timeout_s: float | None = None, **kwargs: Any) -> Opened:
        return requests.opened(await self._send("reset", requests.reset_request(task_id, **kwargs), timeout_s))

    async def step(
        self, session_id: str, action: str, step_index: int | None = None, timeout_s: float | None = None
    ) -> tuple[StepResult, int]:
        message = requests.step_request(session_id, action, step_index)
        return requests.stepped(await self._send("step", message, timeout_s))

    async def close(self, session_id: str, timeout_s: float | None = None) -> None:
        await self._send("close", pb.CloseRequest(session_id=session_id), timeout_s)

    async def oracle_action(self, session_id: str, timeout_s: float | None = None) -> str:
        response = await self._send("oracle_action", pb.OracleActionRequest(session_id=session_id), timeout_s)
        return response.action


class SessionStream:
    """The blocking Session stream; safe to call from several threads at once."""

    def __init__(self, stub: Any, timeout_s: float) -> None:
        self._stub = stub
        self.timeout_s = timeout_s
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._pending: dict[str, Future[pb.SessionResponse]] = {}
        self._outbox: queue.Queue[pb.SessionRequest | None] = queue.Queue()
        self._broken: EnvCallError | None = None

    def __enter__(self) -> "SessionStream":
        self._call = self._stub.Session(self._requests())
        self._reader = threading.Thread(target=self._read, name="session-stream-reader", daemon=True)
        self._reader.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._outbox.put(None)
        self._reader.join(timeout=self.timeout_s)
        if self._reader.is_alive():
            self._call.cancel()
            self._reader.join(timeout=5)

    def _requests(self) -> Iterator[pb.SessionRequest]:
        while (request := self._outbox.get()) is not None:
            yield request

    def _read(self) -> None:
        reason, code = "closed by the client", grpc.StatusCode.UNAVAILABLE
        try:
            for response in self._call:
                with self._lock:
                    future = self._pending.pop(response.correlation_id, None)
                if future is not None:
                    future.set_result(response)
        except grpc.RpcError as err:
            reason = f"{err.code().name}: {err.details()}"  # type: ignore[attr-defined]
            if err.code() in _REFUSALS:  # type: ignore[attr-defined]
                code = err.code()  # type: ignore[attr-defined]
        with self._lock:
            self._broken = EnvCallError(code, _BROKEN.format(reason=reason))
            pending, self._pending = self._pending, {}
        for future in pending.values():
            future.set_exception(self._broken)

    def _send(self, kind: str, message: Any, timeout_s: float | None) -> Any:
        future: Future[pb.SessionResponse] = Future()
        with self._lock:
            if self._broken is not None:
                raise self._broken
            correlation_id = str(next(self._ids))
            self._pending[correlation_id] = future
        self._outbox.put(pb.SessionRequest(correlation_id=correlation_id, **{kind: message}))
        try:
            response = future.result(timeout=timeout_s or self.timeout_s)
        except TimeoutError:
            with self._lock:
                self._pending.pop(correlation_id, None)
            raise EnvCallError(grpc.StatusCode.DEADLINE_EXCEEDED, f"no answer to {kind} within the deadline") from None
        return _unwrap(response, kind)

    def reset(self, task_id: str = "", *, timeout_s: float | None = None, **kwargs: Any) -> Opened:
        return requests.opened(self._send("reset", requests.reset_request(task_id, **kwargs), timeout_s))

    def step(
        self, session_id: str, action: str, step_index: int | None = None, timeout_s: float | None = None
    ) -> tuple[StepResult, int]:
        return requests.stepped(self._send("step", requests.step_request(session_id, action, step_index), timeout_s))

    def close(self, session_id: str, timeout_s: float | None = None) -> None:
        self._send("close", pb.CloseRequest(session_id=session_id), timeout_s)

    def oracle_action(self, session_id: str, timeout_s: float | None = None) -> str:
        return self._send("oracle_action", pb.OracleActionRequest(session_id=session_id), timeout_s).action
