"""Live episodes of one environment: session limits, idle TTL, turn limits, and replay of a repeated step.

Environment code is CPU-bound and blocking, so slow resets and steps run in a bounded thread pool, off the
event loop. A thread only lets the loop go on while the call holds no GIL, and Python hands the GIL over
every 5 ms (sys.getswitchinterval), so a pure-Python call shorter than that blocks the loop either way, and
the hand-off itself costs about 0.1 ms plus the GIL's back and forth. Resets and steps whose recent cost is below
`Limits.inline_step_s` (20 ms) therefore run on the loop itself: a few milliseconds of stalled I/O cost less than
the hand-off (BabyAI at concurrency 64: 82% of its in-process rate this way, 76% with a 5 ms bar, whose rare
slow planning steps sent a share of all steps to the pool). One slow call moves its kind to the pool at once
(see CallCost).
A per-session lock keeps one session's steps in order while other sessions proceed. An environment whose
spec says it is not thread-safe gets one thread for all its calls, and none on the loop.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Awaitable, Callable, Coroutine, Sequence, TypeVar

from env_server.adapters.base import AdapterContext, AdapterSpec, Rejected, Stack, Turn, build_stack
from env_server.envs.base import Environment, Episode
from env_server.errors import (
    Draining,
    EpisodeFinished,
    InvalidRequest,
    OracleDisabled,
    SessionLimit,
    SessionNotFound,
    UnknownTask,
)
from env_server.metrics import ServerMetrics
from env_server.types import Observation, Opened, Outcome, StepResult, TaskSelector

log = logging.getLogger(__name__)
T = TypeVar("T")

INVALID_ACTION_TEXT = "Invalid action: {reason}"  # text the interface could not parse; the reason is the adapter's
# How long a client refused for a full server or quota is told to wait: episodes end and free sessions all the time.
RETRY_AFTER_S = 1.0


@dataclass(frozen=True, slots=True)
class Limits:
    max_sessions: int = 4096
    max_sessions_per_client: int = 0  # per client identity (security.client_identity); 0: no quota
    idle_ttl_s: float = 600.0
    # A finished episode is kept this long (so a retried last step still gets its answer), then freed.
    finished_ttl_s: float = 60.0
    max_action_bytes: int = 16 * 1024
    env_threads: int = 4
    enable_oracle: bool = False
    inline_step_s: float = 0.02
    # Requests of one Session stream read but not yet answered *and written*; further reads wait, so a client that
    # stops reading its responses stalls its own stream (HTTP/2 flow control) instead of growing server memory.
    stream_in_flight: int = 1024


class CallCost:
    """A running estimate of what a kind of env call costs: it rises at once on a slow call, then decays.

    It starts high, so an environment runs in the pool until its first calls have shown themselves cheap; the
    decay brings a cheap environment back onto the loop a few calls after an occasional slow one.
    """

    DECAY = 0.8

    def __init__(self, initial_s: float = 0.05) -> None:
        self.estimate_s = initial_s

    def record(self, seconds: float) -> None:
        self.estimate_s = max(seconds, self.DECAY * self.estimate_s + (1 - self.DECAY) * seconds)


@dataclass(slots=True)
class _Session:
    session_id: str
    episode: Episode
    stack: Stack
    max_turns: int
    client_episode_id: str
    client: str  # who opened it (security.client_identity), for quotas
    first: StepResult
    canonical_obs: Observation  # the environment's own view of the latest observation
    view: Turn = Turn()  # how the latest observation was rendered
    turn: int = 0
    done: bool = False
    last: StepResult | None = None
    last_active: float = field(default_factory=time.monotonic)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Runtime:
    """Owns every live episode of one environment; closes them on Close, idle TTL, or shutdown."""

    def __init__(self, env: Environment, limits: Limits, metrics: ServerMetrics) -> None:
        self.env = env
        self.limits = limits
        self.metrics = metrics
        self.metrics.set_max_sessions(limits.max_sessions)
        self.draining = False
        self._sessions: dict[str, _Session] = {}
        self._by_client_id: dict[tuple[str, str], str] = {}  # (client, client_episode_id) -> session id
        self._per_client: collections.Counter[str] = collections.Counter()  # open and opening sessions per client
        self._opening = 0  # resets past their checks, waiting for the env
        threads = limits.env_threads if env.spec.thread_safe else 1
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"env-{env.spec.name}")
        self._reaper: asyncio.Task[None] | None = None
        self._ids = itertools.count()
        self._step_cost = CallCost()
        self._reset_cost = CallCost()
        self._lexicon_words: tuple[str, ...] | None = None

    def _words(self) -> tuple[str, ...]:
        # The env's optional lexicon_words() hook, read once: the lexicon cache keys on this very tuple.
        if self._lexicon_words is None:
            self._lexicon_words = tuple(self.env.lexicon_words())  # type: ignore[attr-defined]
        return self._lexicon_words

    # --- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        self._reaper = asyncio.get_running_loop().create_task(self._reap_forever())

    async def aclose(self) -> None:
        if self._reaper:
            self._reaper.cancel()
        for session_id in list(self._sessions):
            self._drop(session_id, "abandoned")
        self._pool.shutdown(wait=False, cancel_futures=True)

    @property
    def open_sessions(self) -> int:
        return len(self._sessions)

    def sessions_of(self, client: str) -> int:
        return self._per_client[client]

    @property
    def running_episodes(self) -> int:
        return sum(1 for s in self._sessions.values() if not s.done)

    # --- the episode API -------------------------------------------------------------------------------

    async def reset(
        self,
        task: TaskSelector,
        seed: int,
        interface: Sequence[AdapterSpec] = (),
        max_turns: int = 0,
        client_episode_id: str = "",
        client: str = "",
    ) -> Opened:
        """Open an episode for `client` (its identity: quotas count per client, and a client_episode_id names
        an episode within one client only, so no client can reach another's session by guessing it)."""
        if self.draining:
            raise Draining("server is draining for shutdown; reset on another server")
        if client_episode_id and (client, client_episode_id) in self._by_client_id:
            session = self._sessions[self._by_client_id[client, client_episode_id]]
            return Opened(session.session_id, session.episode.task, session.first, session.stack.name)
        if seed < 0:
            raise InvalidRequest(f"seed must be >= 0; got {seed}")
        spec = self.env.spec
        if not 0 <= max_turns <= spec.max_turns_limit:
            raise InvalidRequest(f"max_turns must be between 1 and {spec.max_turns_limit} (0 for the default {spec.default_max_turns}); got {max_turns}")
        if len(self._sessions) + self._opening >= self.limits.max_sessions:
            raise SessionLimit(
                f"server holds its limit of {self.limits.max_sessions} open sessions; close finished sessions, "
                f"or retry in {RETRY_AFTER_S:g} s or on another server"
            )
        quota = self.limits.max_sessions_per_client
        if quota and self._per_client[client] >= quota:
            raise SessionLimit(
                f"client {client!r} holds its quota of {quota} open sessions on this server; close finished "
                f"sessions, or retry in {RETRY_AFTER_S:g} s"
            )
        has_words = callable(getattr(self.env, "lexicon_words", None))
        stack = build_stack(interface, AdapterContext(seed, self._words if has_words else None))
        task_id = self._resolve(task)
        # The session is counted from here, so resets that wait for the env together cannot overshoot a limit.
        self._opening += 1
        self._per_client[client] += 1
        inline = self._inline(self._reset_cost)
        opening = self._open(task_id, seed, stack, max_turns, client_episode_id, client, inline)
        return await (opening if inline else _finish(opening))

    async def _open(self, task_id: str, seed: int, stack: Stack, max_turns: int, client_episode_id: str,
                    client: str, inline: bool) -> Opened:
        spec = self.env.spec
        try:
            start = lambda: self._start(task_id, seed)  # noqa: E731
            episode, canonical = await self._call_env(self._reset_cost, start, inline)
            first = StepResult(stack.render(canonical, Turn(0)), reward=0.0, done=False, truncated=False,
                               action_valid=True)
        except BaseException:
            self._uncount(client)
            raise
        finally:
            self._opening -= 1
        session_id = f"{next(self._ids):x}-{secrets.token_hex(8)}"
        self._sessions[session_id] = _Session(
            session_id=session_id,
            episode=episode,
            stack=stack,
            max_turns=max_turns or spec.default_max_turns,
            client_episode_id=client_episode_id,
            client=client,
            first=first,
            canonical_obs=canonical,
        )
        if client_episode_id:
            self._by_client_id[client, client_episode_id] = session_id
        self.metrics.reset(stack.name)
        self.metrics.set_open_sessions(len(self._sessions))
        return Opened(session_id, episode.task, first, stack.name)

    async def step(self, session_id: str, action: str, step_index: int | None) -> tuple[StepResult, int]:
        """Act once; returns the result and the turn count after it."""
        if len(action.encode("utf-8", "surrogatepass")) > self.limits.max_action_bytes:
            raise InvalidRequest(f"action is longer than {self.limits.max_action_bytes} bytes; send a shorter action")
        inline = self._inline(self._step_cost)
        stepping = self._step(self._get(session_id), action, step_index, inline)
        return await (stepping if inline else _finish(stepping))

    async def _step(self, session: _Session, action: str, step_index: int | None,
                    inline: bool) -> tuple[StepResult, int]:
        async with session.lock:
            if step_index is not None and step_index == session.turn - 1 and session.last is not None:
                return session.last, session.turn  # a retry of the last step: answer it again, do not act twice
            if step_index is not None and step_index != session.turn:
                raise InvalidRequest(
                    f"step_index {step_index} is out of order: this session expects {session.turn}"
                    + (f" (or {session.turn - 1} to repeat the last step)" if session.turn else "")
                )
            if session.done:
                raise EpisodeFinished(f"episode {session.session_id} is over; reset to start a new one")
            started = time.perf_counter()
            result = await self._act(session, action, inline)
            self.metrics.step(session.stack.name, result.action_valid, time.perf_counter() - started)
            if result.done:
                self.metrics.episode_over(session.stack.name, _outcome_label(result))
            return result, session.turn

    async def oracle_action(self, session_id: str) -> str:
        if not self.limits.enable_oracle:
            raise OracleDisabled("the oracle is disabled on this server (start it with --enable-oracle)")
        session = self._get(session_id)
        async with session.lock:
            if session.done:
                raise EpisodeFinished(f"episode {session_id} is over; the oracle has nothing to say")
            action = await self._run(session.episode.oracle_action)
            return session.stack.encode(action, session.canonical_obs, session.view)

    def close(self, session_id: str) -> None:
        session = self._get(session_id)
        self._drop(session.session_id, "abandoned")

    # --- internals -------------------------------------------------------------------------------------

    async def _act(self, session: _Session, text: str, inline: bool) -> StepResult:
        canonical_action = session.stack.parse(text, session.canonical_obs, session.view)
        if isinstance(canonical_action, Rejected):
            # The interface's own answer; nothing happened in the world. Adapters may re-render it (feedback).
            message = INVALID_ACTION_TEXT.format(reason=canonical_action.reason)
            obs = session.canonical_obs
            result = StepResult(
                replace(obs, text=message, fields={**obs.fields, "message": message}),
                reward=0.0,
                done=False,
                truncated=False,
                action_valid=False,
            )
        else:
            result = await self._call_env(self._step_cost, lambda: session.episode.step(canonical_action), inline)
        session.turn += 1
        session.canonical_obs = result.observation
        if not result.done and session.turn >= session.max_turns:
            low = self.env.spec.reward_range[0]
            result = replace(result, done=True, truncated=True, outcome=Outcome(success=False, score=low))
        session.done = result.done
        session.view = Turn(session.turn, result.action_valid)
        session.last = replace(result, observation=session.stack.render(result.observation, session.view))
        session.last_active = time.monotonic()
        return session.last

    def _resolve(self, task: TaskSelector) -> str:
        if task.task_id:
            return task.task_id
        if not task.split or not task.difficulty:
            raise InvalidRequest("reset needs a task_id, or a task_ref with split, difficulty and index")
        tasks = self.env.tasks(task.split, task.difficulty)
        if not 0 <= task.index < len(tasks):
            raise UnknownTask(
                f"index {task.index} is out of range for split {task.split!r} difficulty {task.difficulty!r} "
                f"(0..{len(tasks) - 1})"
            )
        return tasks[task.index].task_id

    def _get(self, session_id: str) -> _Session:
        session = self._sessions.get(session_id)
        if session is None:
            raise SessionNotFound(f"unknown or expired session {session_id!r}; reset to start a new episode")
        session.last_active = time.monotonic()
        return session

    def _drop(self, session_id: str, reason: str) -> None:
        session = self._sessions.pop(session_id, None)
        if session is None:
            return
        if session.client_episode_id:
            self._by_client_id.pop((session.client, session.client_episode_id), None)
        self._uncount(session.client)
        if not session.done:
            self.metrics.episode_over(session.stack.name, reason)
        try:
            session.episode.close()
        except Exception:  # a failing close must not keep the session alive
            log.exception("closing episode %s failed", session_id)
        self.metrics.set_open_sessions(len(self._sessions))

    def _uncount(self, client: str) -> None:
        self._per_client[client] -= 1
        if not self._per_client[client]:
            del self._per_client[client]

    def _start(self, task_id: str, seed: int) -> tuple[Episode, Observation]:
        episode = self.env.reset(task_id, seed)
        return episode, episode.observe()

    def _inline(self, cost: CallCost) -> bool:
        """Whether to run this kind of env call on the loop: it has been cheap lately and the env is thread-safe.

        Decided before the call starts: an inline call has no await between its checks and its record, so no
        caller's cancellation can land inside it; a call in the pool runs under _finish for that reason."""
        return self.env.spec.thread_safe and cost.estimate_s < self.limits.inline_step_s

    async def _call_env(self, cost: CallCost, fn: Callable[[], T], inline: bool) -> T:
        """Run env code on the loop when this kind of call has been cheap lately, else in the pool."""
        timed = _cpu_timed(fn)
        result, cpu_s = timed() if inline else await self._run(timed)
        cost.record(cpu_s)
        return result

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn)

    async def _reap_forever(self) -> None:
        period = max(0.05, min(self.limits.idle_ttl_s / 4, self.limits.finished_ttl_s / 4, 5.0))
        while True:
            await asyncio.sleep(period)
            self.reap_idle()

    def reap_idle(self) -> int:
        now = time.monotonic()
        idle_deadline = now - self.limits.idle_ttl_s
        finished_deadline = now - min(self.limits.idle_ttl_s, self.limits.finished_ttl_s)
        expired = [
            sid
            for sid, s in self._sessions.items()
            if s.last_active < (finished_deadline if s.done else idle_deadline) and not s.lock.locked()
        ]
        for session_id in expired:
            self._drop(session_id, "expired")
        if expired:
            log.info("expired idle sessions", extra={"count": len(expired)})
        return len(expired)


def _finish(call: Coroutine[Any, Any, T]) -> Awaitable[T]:
    """Run `call` to its end even when its caller is cancelled (a unary deadline, a stream gone): a step applied in
    the env's thread is then recorded, so a retry with its step index gets the answer instead of acting again, and a
    game built for a reset becomes a session that the idle TTL closes instead of an episode no one closes."""
    task = asyncio.ensure_future(call)
    task.add_done_callback(_retrieve)
    return asyncio.shield(task)


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # an error after the caller left is the caller's no more; asyncio need not log it


def _cpu_timed(fn: Callable[[], T]) -> Callable[[], tuple[T, float]]:
    """fn, also returning the CPU time it took on its thread: wall time would count waits for the other core."""

    def call() -> tuple[T, float]:
        started = time.thread_time()
        result = fn()
        return result, time.thread_time() - started

    return call


def _outcome_label(result: StepResult) -> str:
    if result.truncated:
        return "truncated"
    return "success" if result.outcome and result.outcome.success else "failure"
