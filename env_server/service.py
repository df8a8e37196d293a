"""The gRPC servicer: proto in, proto out, exceptions -> status codes. No environment logic lives here."""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets
from typing import AsyncIterator, Callable, TypeVar

import grpc

from env_server import convert
from env_server.adapters.base import KINDS
from env_server.errors import EnvServerError, InvalidRequest, SessionLimit
from env_server.runtime import RETRY_AFTER_S, Runtime
from env_server.security import ServerSecurity, client_identity
from env_server.types import TaskInfo
from shiftgym.env.v1 import env_pb2 as pb

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
# gRPC's retry pushback trailer (gRFC A6): how long a client should wait before retrying a RESOURCE_EXHAUSTED Reset.
RETRY_PUSHBACK = "grpc-retry-pushback-ms"
MAX_MESSAGE_ENCODED = 2048  # bytes of an error message once percent-encoded for the grpc-message trailer


class MalformedRequest:
    """Stands in for a request whose bytes did not parse (bad wire format, invalid UTF-8 in a string)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def safe_deserializer(message_type: type) -> Callable[[bytes], object]:
    def parse(data: bytes) -> object:
        try:
            return message_type.FromString(data)
        except Exception as err:  # DecodeError, or UnicodeDecodeError for invalid UTF-8 in a string field
            # protobuf's own words vary by version and rarely name the cause; say what usually is.
            return MalformedRequest(f"request is not a valid {message_type.DESCRIPTOR.name} (check that string "
                                    f"fields are valid UTF-8 and the message matches the proto): {err}")

    return parse


def _status_of(err: Exception, method: str) -> tuple[grpc.StatusCode, str]:
    if isinstance(err, EnvServerError):
        return err.code, _bounded(str(err))
    error_id = secrets.token_hex(4)
    log.exception("unexpected error in %s", method, extra={"error_id": error_id})
    return grpc.StatusCode.INTERNAL, f"internal error {error_id}; the server log has the details"


def _bounded(message: str) -> str:
    """A message cut in its middle to fit the status trailer. Messages quote what the client sent (a task id, an
    adapter name), and gRPC percent-encodes a message into metadata that clients refuse beyond 8 KiB (as
    RESOURCE_EXHAUSTED); the start says what was wrong and the end how to fix it, so both stay."""
    if _encoded_len(message) <= MAX_MESSAGE_ENCODED:
        return message
    head, tail = message[:MAX_MESSAGE_ENCODED // 6], message[-MAX_MESSAGE_ENCODED // 12:]
    while _encoded_len(head) + _encoded_len(tail) > MAX_MESSAGE_ENCODED - 20:
        head, tail = head[: len(head) * 3 // 4], tail[len(tail) // 4:]
    return f"{head} ... {tail}"


def _encoded_len(text: str) -> int:
    return sum(1 if 0x20 <= b < 0x7F and b != 0x25 else 3 for b in text.encode("utf-8", "replace"))


class EnvironmentServicer:
    def __init__(self, runtime: Runtime, security: ServerSecurity | None = None) -> None:
        self.runtime = runtime
        self.metrics = runtime.metrics
        self.security = security

    # --- unary RPCs ---------------------------------------------------------------------------------

    async def Describe(self, request: object, context: grpc.aio.ServicerContext) -> pb.DescribeResponse:
        return await self._unary("Describe", request, context, self._describe)

    async def ListTasks(self, request: object, context: grpc.aio.ServicerContext) -> pb.ListTasksResponse:
        return await self._unary("ListTasks", request, context, self._list_tasks)

    async def Reset(self, request: object, context: grpc.aio.ServicerContext) -> pb.ResetResponse:
        client = client_identity(context, self.security)
        return await self._unary("Reset", request, context, lambda r: self._reset(r, client))

    async def Step(self, request: object, context: grpc.aio.ServicerContext) -> pb.StepResponse:
        return await self._unary("Step", request, context, self._step)

    async def Close(self, request: object, context: grpc.aio.ServicerContext) -> pb.CloseResponse:
        return await self._unary("Close", request, context, self._close)

    async def OracleAction(self, request: object, context: grpc.aio.ServicerContext) -> pb.OracleActionResponse:
        return await self._unary("OracleAction", request, context, self._oracle_action)

    async def _unary(self, method: str, request: object, context: grpc.aio.ServicerContext, handle: Callable) -> T:
        try:
            if isinstance(request, MalformedRequest):
                raise InvalidRequest(request.reason)
            return await handle(request)
        except Exception as err:
            code, message = _status_of(err, method)
            self.metrics.error(method, code.name)
            if isinstance(err, SessionLimit):
                context.set_trailing_metadata(((RETRY_PUSHBACK, str(int(RETRY_AFTER_S * 1000))),))
            await context.abort(code, message)
            raise  # unreachable: abort raises

    # --- the Session stream ------------------------------------------------------------------------

    async def Session(
        self, requests: AsyncIterator[object], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.SessionResponse]:
        # A slot is held from reading a request until its response is written, so a client that stops reading
        # holds at most stream_in_flight answers here; then reads stop and HTTP/2 flow control stalls the client.
        responses: asyncio.Queue[pb.SessionResponse | None] = asyncio.Queue()
        slots = asyncio.Semaphore(self.runtime.limits.stream_in_flight)
        tasks: set[asyncio.Task[None]] = set()
        client = client_identity(context, self.security)

        async def answer(request: object) -> None:
            responses.put_nowait(await self._session_request(request, client))

        async def read_all() -> None:
            try:
                async for request in requests:
                    await slots.acquire()
                    task = asyncio.create_task(answer(request))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                if tasks:
                    await asyncio.gather(*tasks, return_exceptions=True)
            finally:
                responses.put_nowait(None)

        reader = asyncio.create_task(read_all())
        try:
            while (response := await responses.get()) is not None:
                yield response
                slots.release()
        finally:
            reader.cancel()
            for task in list(tasks):
                task.cancel()

    async def _session_request(self, request: object, client: str) -> pb.SessionResponse:
        correlation_id = getattr(request, "correlation_id", "")
        kind = request.WhichOneof("kind") if isinstance(request, pb.SessionRequest) else None
        try:
            if isinstance(request, MalformedRequest):
                raise InvalidRequest(request.reason)
            if kind is None:
                raise InvalidRequest("session request carries no reset, step, close or oracle_action")
            handle = {
                "reset": lambda r: self._reset(r, client),
                "step": self._step,
                "close": self._close,
                "oracle_action": self._oracle_action,
            }[kind]
            result = await handle(getattr(request, kind))
            return pb.SessionResponse(correlation_id=correlation_id, **{kind: result})
        except Exception as err:
            code, message = _status_of(err, f"Session.{kind}")
            self.metrics.error(f"Session.{kind or 'unknown'}", code.name)
            return pb.SessionResponse(correlation_id=correlation_id, error=pb.Error(code=code.value[0], message=message))

    # --- handlers: proto request -> runtime -> proto response ----------------------------------------

    async def _describe(self, request: pb.DescribeRequest) -> pb.DescribeResponse:
        return convert.describe_to_proto(self.runtime.env.spec, self.runtime.limits, list(KINDS.values()))

    async def _list_tasks(self, request: pb.ListTasksRequest) -> pb.ListTasksResponse:
        tasks = self._matching_tasks(request.split, request.difficulty)
        page_size = request.page_size or DEFAULT_PAGE_SIZE
        if not 0 < page_size <= MAX_PAGE_SIZE:
            raise InvalidRequest(f"page_size must be between 1 and {MAX_PAGE_SIZE}; got {request.page_size}")
        start = _decode_page_token(request.page_token, request.split, request.difficulty)
        end = start + page_size
        next_token = _encode_page_token(end, request.split, request.difficulty) if end < len(tasks) else ""
        return pb.ListTasksResponse(
            tasks=[convert.task_to_proto(t) for t in tasks[start:end]], next_page_token=next_token, total_count=len(tasks)
        )

    def _matching_tasks(self, split: str, difficulty: str) -> list[TaskInfo]:
        spec = self.runtime.env.spec
        splits = [s.name for s in spec.splits]
        if split and split not in splits:
            raise InvalidRequest(f"unknown split {split!r} (known: {', '.join(splits)})")
        if difficulty and difficulty not in spec.difficulties:
            raise InvalidRequest(f"unknown difficulty {difficulty!r} (known: {', '.join(spec.difficulties)})")
        return [
            task
            for s in ([split] if split else splits)
            for d in ([difficulty] if difficulty else spec.difficulties)
            if spec.split(s) and spec.split(s).task_counts.get(d)  # type: ignore[union-attr]
            for task in self.runtime.env.tasks(s, d)
        ]

    async def _reset(self, request: pb.ResetRequest, client: str) -> pb.ResetResponse:
        opened = await self.runtime.reset(
            convert.selector_from_proto(request),
            seed=request.seed,
            interface=convert.interface_from_proto(request.interface),
            max_turns=request.max_turns,
            client_episode_id=request.client_episode_id,
            client=client,
        )
        return convert.opened_to_proto(opened)

    async def _step(self, request: pb.StepRequest) -> pb.StepResponse:
        step_index = request.step_index if request.HasField("step_index") else None
        result, turn = await self.runtime.step(request.session_id, convert.action_text(request), step_index)
        return pb.StepResponse(result=convert.step_result_to_proto(result, turn))

    async def _close(self, request: pb.CloseRequest) -> pb.CloseResponse:
        self.runtime.close(request.session_id)
        return pb.CloseResponse()

    async def _oracle_action(self, request: pb.OracleActionRequest) -> pb.OracleActionResponse:
        return pb.OracleActionResponse(action=await self.runtime.oracle_action(request.session_id))


def _encode_page_token(offset: int, split: str, difficulty: str) -> str:
    return base64.urlsafe_b64encode(f"{split}|{difficulty}|{offset}".encode()).decode()


def _decode_page_token(token: str, split: str, difficulty: str) -> int:
    if not token:
        return 0
    try:
        token_split, token_difficulty, offset = base64.urlsafe_b64decode(token.encode()).decode().split("|")
        if (token_split, token_difficulty) == (split, difficulty) and int(offset) >= 0:
            return int(offset)
    except (ValueError, UnicodeDecodeError):
        pass
    raise InvalidRequest("page_token does not belong to this split and difficulty filter; start again without it")
