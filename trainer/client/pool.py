"""The env client pool: one environment's pods, each episode placed on the least-loaded healthy pod and pinned there.

Every call has a deadline inside its turn's, inside its episode's (`Deadlines`). A Reset that meets an unavailable,
slow or full pod is retried on another pod; a Step is retried only on its own pod and with its step index, so the
server answers a repeat from its record instead of acting twice. Pods are health-checked in the background, and one
whose calls fail with UNAVAILABLE leaves placement at once. An episode either ends or raises `EpisodeFailed` with a
reason, so none is lost and none hangs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass, replace
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from env_server.types import Opened, StepResult
from shiftgym.env.v1 import env_pb2 as pb
from shiftgym.env.v1 import env_pb2_grpc
from trainer.client import channels, requests
from trainer.client.endpoints import Endpoints
from trainer.client.errors import EnvCallError
from trainer.client.requests import ServerInfo
from trainer.client.rollout_metrics import EnvMetrics, RolloutMetrics
from trainer.client.stream import AsyncSessionStream

log = logging.getLogger(__name__)
T = TypeVar("T")
Code = grpc.StatusCode

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["EnvironmentService"].full_name
RESET_RETRY_CODES = frozenset({Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED, Code.RESOURCE_EXHAUSTED})  # on another pod
STEP_RETRY_CODES = frozenset({Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED})  # on the same pod, with the same index
CLOSE_TIMEOUT_S = 5.0

# Why the pool gave up on an episode (the `reason` label), and whether playing it again from Reset may succeed.
_REASONS: dict[grpc.StatusCode, tuple[str, bool]] = {
    Code.UNAVAILABLE: ("pod_lost", True),
    Code.CANCELLED: ("pod_lost", True),
    Code.DEADLINE_EXCEEDED: ("deadline", True),
    Code.RESOURCE_EXHAUSTED: ("pods_full", True),
    Code.NOT_FOUND: ("session_lost", True),  # the pod restarted, or the session idled past its TTL
    Code.INVALID_ARGUMENT: ("rejected", False),
    Code.FAILED_PRECONDITION: ("rejected", False),
}
FAILURE_REASONS = ("no_pods", "pod_lost", "deadline", "pods_full", "session_lost", "episode_deadline", "rejected",
                   "server_error")


@dataclass(frozen=True, slots=True)
class Deadlines:
    """Nested time limits, each with room for the one inside it: call < turn < episode."""

    call_s: float = 30.0  # one RPC attempt
    turn_s: float = 90.0  # one Reset, Step or OracleAction, retries and backoff included
    episode_s: float = 3600.0  # from the first Reset attempt to the last step

    def __post_init__(self) -> None:
        if not 0 < self.call_s < self.turn_s < self.episode_s:
            raise ValueError(
                f"deadlines must nest as 0 < call_s < turn_s < episode_s; got call_s={self.call_s}, "
                f"turn_s={self.turn_s}, episode_s={self.episode_s}"
            )


@dataclass(frozen=True, slots=True)
class Retries:
    reset_attempts: int = 4  # Reset attempts, each on a pod not yet tried while there is one
    step_attempts: int = 3  # Step and OracleAction attempts on the episode's own pod
    backoff_s: float = 0.05  # the first pause; it doubles per attempt, with jitter
    max_backoff_s: float = 1.0

    def __post_init__(self) -> None:
        if self.reset_attempts < 1 or self.step_attempts < 1 or not 0 <= self.backoff_s <= self.max_backoff_s:
            raise ValueError(f"retries need at least one attempt and 0 <= backoff_s <= max_backoff_s; got {self}")

    def pause_s(self, attempt: int, rng: random.Random) -> float:
        ceiling = min(self.max_backoff_s, self.backoff_s * 2.0**attempt)
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


@dataclass(frozen=True, slots=True)
class EpisodeRequest:
    task_id: str
    seed: int
    interface: tuple[tuple[str, Mapping[str, str]], ...] = ()  # (adapter name, params), as requests.reset_request
    max_turns: int = 0  # 0: the environment's default
    client_episode_id: str = ""  # lets a pod answer a repeated Reset with the session it already opened

    def __post_init__(self) -> None:
        object.__setattr__(self, "interface", tuple((name, params) for name, params in self.interface))


class EpisodeFailed(Exception):
    """The pool gave up on an episode: `reason` is one of FAILURE_REASONS; `retryable` says whether playing it
    again from Reset may succeed (a lost pod) or would fail the same way (a rejected request)."""

    def __init__(self, reason: str, message: str, *, retryable: bool, code: grpc.StatusCode | None = None,
                 pod: str = "") -> None:
        super().__init__(f"{reason}: {message}" + (f" (pod {pod})" if pod else ""))
        self.reason = reason
        self.message = message
        self.retryable = retryable
        self.code = code
        self.pod = pod

    @classmethod
    def from_error(cls, err: EnvCallError, pod: str = "") -> "EpisodeFailed":
        reason, retryable = _REASONS.get(err.code, ("server_error", False))
        return cls(reason, err.message, retryable=retryable, code=err.code, pod=pod)


class _Pod:
    """One env server: its channel, a Session stream for episode traffic, its health and its open episodes."""

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


class PooledEpisode:
    """An open episode pinned to one pod. `turns` is the number of steps taken, which is the next step index."""

    def __init__(self, pool: "EnvPool", pod: _Pod, opened: Opened, deadline: float) -> None:
        self.opened = opened
        self.pod = pod.target
        self.result: StepResult = opened.result
        self.turns = 0
        self.deadline = deadline  # time.monotonic() past which the episode fails with "episode_deadline"
        self._pool = pool
        self._pod = pod
        self._failed: EpisodeFailed | None = None

    @property
    def session_id(self) -> str:
        return self.opened.session_id

    async def step(self, action: str) -> StepResult:
        stepped: tuple[StepResult, int] = await self._retrying("step", self.session_id, action, step_index=self.turns)
        self.result, self.turns = stepped
        self._pool.metrics.steps.inc()
        return self.result

    async def oracle_action(self) -> str:
        action: str = await self._retrying("oracle_action", self.session_id)
        return action

    async def _retrying(self, method: str, *args: object, **kwargs: object) -> Any:
        if self._failed is not None:
            raise self._failed
        try:
            return await self._pool._on_pod(self._pod, method, self.deadline, *args, **kwargs)
        except EpisodeFailed as failed:
            self._failed = failed
            raise


class EnvPool:
    """Episodes of one environment over all its pods; `async with EnvPool([...]) as pool:` starts and closes it."""

    def __init__(
        self,
        endpoints: Sequence[str] | str | Endpoints,
        *,
        env: str = "",
        deadlines: Deadlines = Deadlines(),
        retries: Retries = Retries(),
        max_episodes: int = 256,
        metrics: RolloutMetrics | None = None,
        health_interval_s: float = 2.0,
        resolve_interval_s: float = 30.0,
        security: channels.ChannelSecurity | None = None,  # default: ChannelSecurity.from_env()
    ) -> None:
        if max_episodes < 1 or health_interval_s <= 0:
            raise ValueError(f"max_episodes must be >= 1 and health_interval_s > 0; got {max_episodes}, "
                             f"{health_interval_s}")
        self.endpoints = endpoints if isinstance(endpoints, Endpoints) else Endpoints(endpoints, resolve_interval_s)
        self.env = env
        self.deadlines = deadlines
        self.retries = retries
        self.max_episodes = max_episodes
        self.health_interval_s = health_interval_s
        self.security = security or channels.ChannelSecurity.from_env()
        self.rollout_metrics = metrics or RolloutMetrics()
        self.metrics: EnvMetrics = self.rollout_metrics.for_env(env)
        self.info: ServerInfo | None = None  # what the first healthy pod's Describe said at start
        self._pods: dict[str, _Pod] = {}
        self._slots = asyncio.Semaphore(max_episodes)
        self._open_episodes = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._closing: set[asyncio.Task[None]] = set()
        self._rng = random.Random()  # backoff jitter only
        self._rotation = 0
        self._state = "new"

    async def __aenter__(self) -> "EnvPool":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Resolve the endpoints, check every pod once, read the spec from one, then keep checking in the
        background. Raises OSError when a DNS name does not resolve, ValueError when a pod serves another env."""
        if self._state != "new":
            raise RuntimeError(f"this pool is {self._state}; build a new one")
        self._state = "started"
        await self._update_pods(await self.endpoints.resolve())
        healthy = next((p for p in self._pods.values() if p.healthy), None)
        if healthy is not None:
            try:
                self.info = await healthy.describe(self.deadlines.call_s)
            except EnvCallError as err:
                log.warning("describe failed", extra={"env": self.env, "pod": healthy.target, "error": str(err)})
        if self.info is not None:
            if self.env and self.info.spec.name != self.env:
                await self.aclose()
                raise ValueError(f"{self.endpoints} serves {self.info.spec.name!r}, not {self.env!r}")
            if not self.env:
                self.env = self.info.spec.name
                self.metrics = self.rollout_metrics.for_env(self.env)
        self._publish_pods()
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._every(self.health_interval_s, self._check_all)))
        if self.endpoints.dynamic:
            self._tasks.append(loop.create_task(self._follow_endpoints()))

    async def aclose(self) -> None:
        """Stop the background checks and close every stream and channel; open episodes fail with pod_lost."""
        self._state = "closed"
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.endpoints.aclose()
        closing = [*self._closing, *(pod.aclose() for pod in self._pods.values())]
        await asyncio.gather(*closing, return_exceptions=True)
        self._pods.clear()
        self._publish_pods()

    # --- episodes --------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def episode(self, request: EpisodeRequest) -> AsyncIterator[PooledEpisode]:
        """Take a slot, reset on the least-loaded healthy pod (elsewhere on failure), yield the episode, then close
        its session (best effort) and free the slot. Raises EpisodeFailed when no pod can open it in time."""
        if self._state != "started":
            raise RuntimeError("start() the pool before playing episodes" if self._state == "new" else "pool closed")
        async with self._slots:
            self._open_episodes += 1
            self.metrics.in_flight.set(self._open_episodes)
            try:
                deadline = time.monotonic() + self.deadlines.episode_s
                pod, opened = await self._open(request)
                episode = PooledEpisode(self, pod, opened, deadline)
                try:
                    yield episode
                finally:
                    await self._close(episode)
            finally:
                self._open_episodes -= 1
                self.metrics.in_flight.set(self._open_episodes)

    async def _open(self, request: EpisodeRequest) -> tuple[_Pod, Opened]:
        deadline = time.monotonic() + self.deadlines.turn_s
        tried: set[str] = set()
        error: EnvCallError | None = None
        attempts = waits = 0
        while attempts < self.retries.reset_attempts and (remaining := deadline - time.monotonic()) > 0:
            pod = self._place(tried) or self._place(set())
            if pod is None:  # no healthy pod: give the health checks time to find one
                await asyncio.sleep(min(self.retries.pause_s(waits, self._rng), remaining))
                waits += 1
                continue
            if attempts:
                self.metrics.retry("reset")
            attempts += 1
            pod.in_flight += 1
            try:
                opened = await self._call(pod, "reset", min(self.deadlines.call_s, remaining), request.task_id,
                                          seed=request.seed, interface=request.interface,
                                          max_turns=request.max_turns, client_episode_id=request.client_episode_id)
                return pod, opened
            except BaseException as err:
                self._release(pod)
                if not isinstance(err, EnvCallError):
                    raise  # cancelled: the slot on the pod is freed all the same
                error = err
                if err.code not in RESET_RETRY_CODES:
                    raise self._failure(EpisodeFailed.from_error(err, pod.target)) from err
                if err.code == Code.UNAVAILABLE:
                    self._mark_down(pod)
                tried.add(pod.target)
                if self._place(tried) is None:  # every healthy pod has failed once: pause before the next round
                    await asyncio.sleep(min(self.retries.pause_s(attempts, self._rng),
                                            max(0.0, deadline - time.monotonic())))
        if error is None:
            raise self._failure(EpisodeFailed("no_pods", f"no healthy pod of {self.endpoints} within "
                                              f"{self.deadlines.turn_s:g} s", retryable=True))
        raise self._failure(EpisodeFailed.from_error(error))

    async def _on_pod(self, pod: _Pod, method: str, episode_deadline: float, *args: object,
                      **kwargs: object) -> Any:
        """A call of an open episode: retried on its own pod only, with the same arguments (so the same step
        index), within the turn's deadline and the episode's."""
        deadline = min(time.monotonic() + self.deadlines.turn_s, episode_deadline)
        error: EnvCallError | None = None
        for attempt in range(self.retries.step_attempts):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if attempt:
                self.metrics.retry(method)
            try:
                return await self._call(pod, method, min(self.deadlines.call_s, remaining), *args, **kwargs)
            except EnvCallError as err:
                error = err
                if err.code not in STEP_RETRY_CODES:
                    raise self._failure(EpisodeFailed.from_error(err, pod.target)) from err
                if err.code == Code.UNAVAILABLE:
                    self._mark_down(pod)
                if attempt + 1 < self.retries.step_attempts:
                    await asyncio.sleep(min(self.retries.pause_s(attempt, self._rng),
                                            max(0.0, deadline - time.monotonic())))
        if error is None or time.monotonic() >= episode_deadline:
            raise self._failure(EpisodeFailed("episode_deadline", f"the episode ran past {self.deadlines.episode_s:g} s",
                                              retryable=False, pod=pod.target))
        raise self._failure(EpisodeFailed.from_error(error, pod.target))

    async def _call(self, pod: _Pod, method: str, timeout_s: float, *args: object, **kwargs: object) -> Any:
        started = time.perf_counter()
        try:
            return await pod.call(method, timeout_s, *args, **kwargs)
        finally:
            self.metrics.call(method, time.perf_counter() - started)

    async def _close(self, episode: PooledEpisode) -> None:
        try:
            await self._call(episode._pod, "close", min(self.deadlines.call_s, CLOSE_TIMEOUT_S), episode.session_id)
        except EnvCallError:
            pass  # best effort: the server frees a session it is not told about after its idle TTL
        finally:
            self._release(episode._pod)

    def _failure(self, failed: EpisodeFailed) -> EpisodeFailed:
        self.metrics.failure(failed.reason)
        return failed

    # --- pods ------------------------------------------------------------------------------------------

    @property
    def pods(self) -> dict[str, bool]:
        """Each pod's target and whether it is healthy (in placement)."""
        return {t: p.healthy and not p.retired for t, p in self._pods.items()}

    def in_flight(self) -> dict[str, int]:
        """Episodes open on each pod."""
        return {t: p.in_flight for t, p in self._pods.items()}

    def _place(self, exclude: set[str]) -> _Pod | None:
        """The healthy pod with the fewest open episodes; ties go round the pods in turn."""
        pods = list(self._pods.values())
        self._rotation += 1
        best: _Pod | None = None
        for i in range(len(pods)):
            pod = pods[(self._rotation + i) % len(pods)]
            placeable = pod.healthy and not pod.retired and pod.target not in exclude
            if placeable and (best is None or pod.in_flight < best.in_flight):
                best = pod
        return best

    def _release(self, pod: _Pod) -> None:
        pod.in_flight -= 1
        self._drop_if_idle(pod)

    def _drop_if_idle(self, pod: _Pod) -> None:
        """Close a pod gone from DNS once no episode is pinned to it."""
        if pod.retired and pod.in_flight == 0 and self._pods.get(pod.target) is pod:
            del self._pods[pod.target]
            task = asyncio.get_running_loop().create_task(pod.aclose())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    def _mark_down(self, pod: _Pod) -> None:
        if pod.healthy:
            pod.healthy = False
            log.warning("env pod down", extra={"env": self.env, "pod": pod.target})
            self._publish_pods()

    def _publish_pods(self) -> None:
        healthy = sum(self.pods.values())
        self.metrics.pods(healthy, len(self._pods) - healthy)

    async def _check(self, pod: _Pod) -> None:
        started = time.perf_counter()
        healthy = await pod.check(min(self.deadlines.call_s, max(1.0, self.health_interval_s)))
        self.metrics.call("health", time.perf_counter() - started)
        if healthy != pod.healthy:
            pod.healthy = healthy
            log.info("env pod %s", "healthy" if healthy else "down", extra={"env": self.env, "pod": pod.target})

    async def _check_all(self) -> None:
        await asyncio.gather(*(self._check(pod) for pod in list(self._pods.values()) if not pod.retired))
        self._publish_pods()

    async def _resolve(self) -> None:
        try:
            targets = await self.endpoints.resolve()
        except OSError as err:  # keep the pods we have: DNS trouble is no reason to stop
            log.warning("resolving env endpoints failed", extra={"env": self.env, "error": str(err)})
            return
        await self._update_pods(targets)

    async def _update_pods(self, targets: Sequence[str]) -> None:
        added = []
        for target in targets:
            if target in self._pods:
                self._pods[target].retired = False
            else:
                self._pods[target] = pod = _Pod(target, self.deadlines.call_s, self.security)
                added.append(pod)
        for target, pod in list(self._pods.items()):
            if target not in targets and not pod.retired:
                pod.retired = True
                self._drop_if_idle(pod)
        await asyncio.gather(*(self._check(pod) for pod in added))
        self._publish_pods()

    async def _follow_endpoints(self) -> None:
        """Re-resolve whenever the endpoints may have changed: periodically for DNS, on each change for a watched
        Service. Added pods are health-checked into placement; removed ones drain (see _update_pods)."""
        while True:
            await self.endpoints.changed()
            try:
                await self._resolve()
            except Exception:  # a background job must never die quietly
                log.exception("env pool background job failed", extra={"env": self.env})

    async def _every(self, interval_s: float, job: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await job()
            except Exception:  # a background check must never die quietly
                log.exception("env pool background job failed", extra={"env": self.env})


async def run_with_retries(
    pool: EnvPool,
    request: EpisodeRequest,
    play: Callable[[PooledEpisode], Awaitable[T]],
    *,
    attempts: int = 3,
    on_failure: Callable[[EpisodeFailed], None] | None = None,
) -> T:
    """Play an episode; when it fails retryably, play it again from Reset on whichever pod is healthy.

    Each failed attempt goes to `on_failure`; the last EpisodeFailed propagates, so the caller records the
    episode as failed with its reason. Re-runs get their own client_episode_id so no pod answers them with the
    abandoned session.
    """
    for attempt in range(attempts):
        try_request = request if attempt == 0 or not request.client_episode_id else replace(
            request, client_episode_id=f"{request.client_episode_id}/rerun{attempt}")
        try:
            async with pool.episode(try_request) as episode:
                return await play(episode)
        except EpisodeFailed as failed:
            if on_failure is not None:
                on_failure(failed)
            if not failed.retryable or attempt + 1 == attempts:
                raise
    raise AssertionError("unreachable")


class EnvFleet(Mapping[str, EnvPool]):
    """One EnvPool per environment, from {env: endpoints}, sharing one RolloutMetrics; started and closed together."""

    def __init__(
        self,
        endpoints: Mapping[str, Sequence[str] | str],
        *,
        deadlines: Deadlines = Deadlines(),
        retries: Retries = Retries(),
        max_episodes: int = 256,
        metrics: RolloutMetrics | None = None,
        health_interval_s: float = 2.0,
        resolve_interval_s: float = 30.0,
        security: channels.ChannelSecurity | None = None,
    ) -> None:
        self.metrics = metrics or RolloutMetrics()
        self._pools = {
            env: EnvPool(targets, env=env, deadlines=deadlines, retries=retries, max_episodes=max_episodes,
                         metrics=self.metrics, health_interval_s=health_interval_s,
                         resolve_interval_s=resolve_interval_s, security=security)
            for env, targets in endpoints.items()
        }

    def __getitem__(self, env: str) -> EnvPool:
        if env not in self._pools:
            raise KeyError(f"no pool for env {env!r} (known: {', '.join(sorted(self._pools))})")
        return self._pools[env]

    def __iter__(self) -> Iterator[str]:
        return iter(self._pools)

    def __len__(self) -> int:
        return len(self._pools)

    async def __aenter__(self) -> "EnvFleet":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        results = await asyncio.gather(*(pool.start() for pool in self._pools.values()), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            await self.aclose()
            raise errors[0]

    async def aclose(self) -> None:
        await asyncio.gather(*(pool.aclose() for pool in self._pools.values()))
