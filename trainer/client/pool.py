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
from dataclasses import replace
from typing import Any, AsyncIterator, Awaitable, Callable, Sequence, TypeVar

import grpc

from env_server.types import Opened, StepResult
from trainer.client import channels
from trainer.client.endpoints import Endpoints
from trainer.client.errors import EnvCallError
from trainer.client.pod import Pod
from trainer.client.pool_terms import (
    FAILURE_REASONS, RESET_RETRY_CODES, STEP_RETRY_CODES, Deadlines, EpisodeFailed, EpisodeRequest, Retries,
)
from trainer.client.requests import ServerInfo
from trainer.client.rollout_metrics import EnvMetrics, RolloutMetrics

__all__ = ["FAILURE_REASONS", "Deadlines", "EnvPool", "EpisodeFailed", "EpisodeRequest", "PooledEpisode", "Retries",
           "run_with_retries"]

log = logging.getLogger(__name__)
T = TypeVar("T")
Code = grpc.StatusCode

CLOSE_TIMEOUT_S = 5.0


class PooledEpisode:
    """An open episode pinned to one pod. `turns` is the number of steps taken, which is the next step index."""

    def __init__(self, pool: "EnvPool", pod: Pod, opened: Opened, deadline: float) -> None:
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
        self._pods: dict[str, Pod] = {}
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

    async def _open(self, request: EpisodeRequest) -> tuple[Pod, Opened]:
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

    async def _on_pod(self, pod: Pod, method: str, episode_deadline: float, *args: object,
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

    async def _call(self, pod: Pod, method: str, timeout_s: float, *args: object, **kwargs: object) -> Any:
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

    def _place(self, exclude: set[str]) -> Pod | None:
        """The healthy pod with the fewest open episodes; ties go round the pods in turn."""
        pods = list(self._pods.values())
        self._rotation += 1
        best: Pod | None = None
        for i in range(len(pods)):
            pod = pods[(self._rotation + i) % len(pods)]
            placeable = pod.healthy and not pod.retired and pod.target not in exclude
            if placeable and (best is None or pod.in_flight < best.in_flight):
                best = pod
        return best

    def _release(self, pod: Pod) -> None:
        pod.in_flight -= 1
        self._drop_if_idle(pod)

    def _drop_if_idle(self, pod: Pod) -> None:
        """Close a pod gone from DNS once no episode is pinned to it."""
        if pod.retired and pod.in_flight == 0 and self._pods.get(pod.target) is pod:
            del self._pods[pod.target]
            task = asyncio.get_running_loop().create_task(pod.aclose())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    def _mark_down(self, pod: Pod) -> None:
        if pod.healthy:
            pod.healthy = False
            log.warning("env pod down", extra={"env": self.env, "pod": pod.target})
            self._publish_pods()

    def _publish_pods(self) -> None:
        healthy = sum(self.pods.values())
        self.metrics.pods(healthy, len(self._pods) - healthy)

    async def _check(self, pod: Pod) -> None:
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
                self._pods[target] = pod = Pod(target, self.deadlines.call_s, self.security)
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
