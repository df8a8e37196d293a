"""The env client pool against real servers: placement, pinning, retries, health checks, DNS, and a pod killed
with SIGKILL under 200 concurrent episodes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import urllib.request
from dataclasses import dataclass, field

import grpc
import pytest

from env_server.envs.null import NullEnv, NullEpisode
from env_server.runtime import Limits
from tests.servers import ServerProcess, ServerThread
from trainer.client.endpoints import Endpoints
from trainer.client.env_client import AsyncEnvClient
from trainer.client.fleet import EnvFleet
from trainer.client.pool import (
    Deadlines,
    EnvPool,
    EpisodeFailed,
    EpisodeRequest,
    PooledEpisode,
    run_with_retries,
)
from trainer.client.rollout_metrics import RolloutMetrics
from tests.servers import free_port

QUICK = Deadlines(call_s=2.0, turn_s=6.0, episode_s=60.0)


def task(index: int) -> str:
    return f"null/test/easy/{index:05d}"


def sample(pool: EnvPool, name: str, **labels: str) -> float:
    return pool.rollout_metrics.registry.get_sample_value(name, {"env": pool.env, **labels}) or 0.0


async def until(condition, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


@pytest.fixture(scope="module")
def servers():
    with ServerThread("null") as a, ServerThread("null") as b, ServerThread("null") as c:
        yield a, b, c


# --- configuration ---------------------------------------------------------------------------------


def test_deadlines_must_nest_call_inside_turn_inside_episode():
    Deadlines(call_s=1, turn_s=2, episode_s=3)
    for call_s, turn_s, episode_s in ((2, 2, 3), (1, 3, 3), (0, 1, 2), (3, 2, 10)):
        with pytest.raises(ValueError, match="call_s < turn_s < episode_s"):
            Deadlines(call_s=call_s, turn_s=turn_s, episode_s=episode_s)


async def test_endpoints_take_a_list_or_a_dns_name():
    assert await Endpoints(["10.0.0.1:50051", "10.0.0.2:50051"]).resolve() == ("10.0.0.1:50051", "10.0.0.2:50051")
    assert await Endpoints("10.0.0.1:1,10.0.0.2:2").resolve() == ("10.0.0.1:1", "10.0.0.2:2")
    assert not Endpoints("10.0.0.1:50051").dynamic
    assert await Endpoints("dns:///[::1]:7").resolve() == ("[::1]:7",)
    name = Endpoints("dns:///localhost:50051")
    assert name.dynamic
    assert "127.0.0.1:50051" in await name.resolve()
    assert "127.0.0.1:9" in await Endpoints("localhost:9").resolve()
    for bad in ("localhost", "dns:///localhost", "host:port", []):
        with pytest.raises(ValueError):
            Endpoints(bad)


async def test_a_dns_name_resolves_to_the_pod_behind_it(servers):
    port = servers[0].server.port
    async with EnvPool(f"dns:///localhost:{port}", deadlines=QUICK, resolve_interval_s=0.1) as pool:
        assert pool.env == "null" and pool.info is not None
        assert pool.pods.get(f"127.0.0.1:{port}") is True
        async with pool.episode(EpisodeRequest(task(3), seed=0)) as episode:
            assert episode.pod == f"127.0.0.1:{port}"
            assert (await episode.step(await episode.oracle_action())).outcome.success
        await asyncio.sleep(0.3)  # re-resolved a few times: the same pod, kept
        assert pool.pods.get(f"127.0.0.1:{port}") is True


async def test_a_pool_refuses_pods_serving_another_environment(servers):
    with pytest.raises(ValueError, match="serves 'null', not 'babyai'"):
        await EnvPool([servers[0].target], env="babyai", deadlines=QUICK).start()


# --- placement and pinning ----------------------------------------------------------------------------


async def test_placement_spreads_episodes_by_in_flight_count_and_pins_them(servers):
    targets = [s.target for s in servers]
    async with EnvPool(targets, deadlines=QUICK) as pool:
        held = [pool.episode(EpisodeRequest(task(i), seed=i)) for i in range(6)]
        episodes = [await cm.__aenter__() for cm in held]
        assert pool.in_flight() == {t: 2 for t in targets}
        assert [s.runtime.open_sessions for s in servers] == [2, 2, 2]
        # Pinned: a session lives on one pod only, so every step answering proves it went to the right one.
        for episode in episodes:
            assert not (await episode.step("noop")).done and episode.turns == 1
        await held[4].__aexit__(None, None, None)
        async with pool.episode(EpisodeRequest(task(7), seed=0)) as extra:
            assert extra.pod == episodes[4].pod  # the only pod with one episode open
            assert (await extra.step("word0007")).outcome.success
        for cm in held[:4] + held[5:]:
            await cm.__aexit__(None, None, None)
        assert pool.in_flight() == {t: 0 for t in targets}
    assert [s.runtime.open_sessions for s in servers] == [0, 0, 0]


async def test_the_least_loaded_pod_gets_the_next_episode(servers):
    targets = [s.target for s in servers[:2]]
    async with EnvPool(targets, deadlines=QUICK) as pool, pool.episode(EpisodeRequest(task(1), seed=0)) as first:
        for i in range(4):  # the other pod is emptier every time
            async with pool.episode(EpisodeRequest(task(2 + i), seed=0)) as other:
                assert other.pod != first.pod


async def test_a_pod_gone_from_dns_takes_no_new_episodes_and_closes_after_its_last(servers):
    targets = [s.target for s in servers[:2]]
    async with EnvPool(targets, deadlines=QUICK) as pool:
        held = pool.episode(EpisodeRequest(task(1), seed=0))
        episode = await held.__aenter__()
        await pool._update_pods([t for t in targets if t != episode.pod])  # what re-resolving does when DNS drops it
        assert pool.pods[episode.pod] is False
        for i in range(3):
            async with pool.episode(EpisodeRequest(task(2 + i), seed=0)) as other:
                assert other.pod != episode.pod
        assert (await episode.step("word0001")).outcome.success  # the pinned episode still finishes there
        await held.__aexit__(None, None, None)
        assert episode.pod not in pool.pods


# --- retries -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["draining", "stopped"])
async def test_reset_is_retried_on_another_pod_when_the_chosen_one_fails(fault):
    with ServerThread("null") as good, ServerThread("null") as bad:
        # Health checks far apart, so the pool still believes in the bad pod when it places the episode.
        async with EnvPool([good.target, bad.target], deadlines=QUICK, health_interval_s=60) as pool:
            async with pool.episode(EpisodeRequest(task(1), seed=0)) as first:
                assert first.pod == good.target or first.pod == bad.target
            async with contextlib.AsyncExitStack() as held:
                # One episode on the good pod makes the bad one the least loaded.
                while (await held.enter_async_context(pool.episode(EpisodeRequest(task(2), seed=0)))).pod != good.target:
                    pass
                if fault == "draining":
                    bad.runtime.draining = True  # what SIGTERM does: new Resets get UNAVAILABLE
                else:
                    bad.call(bad.server.stop(grace_s=None))
                async with pool.episode(EpisodeRequest(task(3), seed=0)) as episode:
                    assert episode.pod == good.target
                    assert (await episode.step("word0003")).outcome.success
            assert sample(pool, "shiftgym_rollout_retries_total", method="reset") == 1
            assert pool.pods == {good.target: True, bad.target: False}  # marked down at once, not at the next check
            if fault == "stopped":
                bad.server.stop = _already_stopped  # type: ignore[method-assign]


async def _already_stopped(grace_s=None):
    return None


async def test_a_full_pod_sends_the_reset_elsewhere_and_stays_in_placement():
    with ServerThread("null", Limits(max_sessions=1)) as small, ServerThread("null") as big:
        async with EnvPool([small.target, big.target], deadlines=QUICK) as pool, contextlib.AsyncExitStack() as held:
            pods = [(await held.enter_async_context(pool.episode(EpisodeRequest(task(i), seed=0)))).pod
                    for i in range(4)]
            assert pods.count(small.target) == 1 and pods.count(big.target) == 3
            assert sample(pool, "shiftgym_rollout_retries_total", method="reset") >= 1
            assert pool.pods == {small.target: True, big.target: True}


async def test_a_rejected_reset_fails_at_once_and_is_not_retried(servers):
    async with EnvPool([s.target for s in servers], deadlines=QUICK) as pool:
        with pytest.raises(EpisodeFailed) as failed:
            async with pool.episode(EpisodeRequest("null/test/easy/99999", seed=0)):
                pass
        assert (failed.value.reason, failed.value.retryable, failed.value.code) == (
            "rejected", False, grpc.StatusCode.INVALID_ARGUMENT)
        assert sample(pool, "shiftgym_rollout_retries_total", method="reset") == 0
        assert sample(pool, "shiftgym_rollout_failures_total", reason="rejected") == 1
        assert all(pool.pods.values())


@dataclass(slots=True)
class SlowFirstStepEpisode(NullEpisode):
    """The null episode, recording each action it really applies; its first step outlasts the client's deadline."""

    applied: list[str] = field(default_factory=list)

    def step(self, action: str):
        self.applied.append(action)
        if len(self.applied) == 1:
            time.sleep(0.5)  # blocking env code: the server runs it off its loop
        return NullEpisode.step(self, action)


class SlowFirstStepEnv(NullEnv):
    def __init__(self) -> None:
        super().__init__()
        self.episodes: list[SlowFirstStepEpisode] = []

    def reset(self, task_id: str, seed: int) -> SlowFirstStepEpisode:
        plain = super().reset(task_id, seed)
        self.episodes.append(SlowFirstStepEpisode(plain.task, plain.word))
        return self.episodes[-1]


async def test_a_step_retried_with_its_index_does_not_act_twice():
    env = SlowFirstStepEnv()
    with ServerThread(env, Limits(enable_oracle=True)) as server:
        deadlines = Deadlines(call_s=0.3, turn_s=5.0, episode_s=30.0)
        async with EnvPool([server.target], deadlines=deadlines) as pool:
            async with pool.episode(EpisodeRequest(task(5), seed=0)) as episode:
                result = await episode.step("noop")  # times out once, then gets the recorded answer
                assert episode.turns == 1 and not result.done and result.action_valid
                assert env.episodes[0].applied == ["noop"]
                result = await episode.step("word0005")
                assert result.outcome.success and episode.turns == 2
            assert env.episodes[0].applied == ["noop", "word0005"]
            assert sample(pool, "shiftgym_rollout_retries_total", method="step") >= 1
            assert sample(pool, "shiftgym_rollout_steps_total") == 2
            assert pool.pods == {server.target: True}  # slow is not down


async def test_an_episode_past_its_deadline_fails_and_is_not_retryable(servers):
    async with EnvPool([servers[0].target], deadlines=Deadlines(call_s=0.5, turn_s=1.0, episode_s=1.5)) as pool:
        async with pool.episode(EpisodeRequest(task(6), seed=0)) as episode:
            await episode.step("noop")
            await asyncio.sleep(1.6)
            with pytest.raises(EpisodeFailed) as failed:
                await episode.step("noop")
        assert (failed.value.reason, failed.value.retryable) == ("episode_deadline", False)
        assert servers[0].runtime.open_sessions == 0


# --- health and lost pods ----------------------------------------------------------------------------


async def test_health_checks_take_a_killed_pod_out_and_put_it_back_when_it_restarts():
    port = free_port()
    with ServerProcess("null", "--port", str(port), "--log-level", "warning") as first, ServerProcess("null") as other:
        target = first.target
        async with EnvPool([target, other.target], deadlines=QUICK, health_interval_s=0.2) as pool:
            await until(lambda: pool.pods == {target: True, other.target: True})  # a loaded machine may be slow
            async with contextlib.AsyncExitStack() as held:
                while (episode := await held.enter_async_context(pool.episode(EpisodeRequest(task(1), seed=0)))).pod != target:
                    pass
                os.kill(first.pid, signal.SIGKILL)
                first.wait()
                with pytest.raises(EpisodeFailed) as failed:
                    await episode.step("noop")
                assert failed.value.reason == "pod_lost" and failed.value.retryable and failed.value.pod == target
                with pytest.raises(EpisodeFailed):  # a failed episode stays failed
                    await episode.step("noop")
            await until(lambda: pool.pods == {target: False, other.target: True})
            for i in range(4):  # meanwhile every episode goes to the survivor
                async with pool.episode(EpisodeRequest(task(i), seed=0)) as episode:
                    assert episode.pod == other.target
            with ServerProcess("null", "--port", str(port), "--log-level", "warning") as restarted:
                assert restarted.target == target
                await until(lambda: pool.pods == {target: True, other.target: True})
                async with contextlib.AsyncExitStack() as held:
                    pods = {(await held.enter_async_context(pool.episode(EpisodeRequest(task(i), seed=0)))).pod
                            for i in range(4)}
                assert pods == {target, other.target}
            assert sample(pool, "shiftgym_rollout_failures_total", reason="pod_lost") == 1


async def test_a_session_lost_to_a_restart_fails_retryably_and_the_rerun_completes(servers):
    async with EnvPool([servers[0].target], deadlines=QUICK) as pool:
        attempts: list[EpisodeFailed] = []

        async def play(episode: PooledEpisode) -> bool:
            if not attempts:  # the first attempt's session vanishes, as when its pod restarts
                servers[0].runtime.close(episode.session_id)
            result = await episode.step(await episode.oracle_action())
            return result.outcome.success

        assert await run_with_retries(pool, EpisodeRequest(task(4), seed=0, client_episode_id="e4"), play,
                                      on_failure=attempts.append)
        assert [(f.reason, f.retryable) for f in attempts] == [("session_lost", True)]


async def test_the_fleet_starts_and_closes_one_pool_per_env_and_exports_metrics(servers):
    metrics = RolloutMetrics()
    async with EnvFleet({"null": [s.target for s in servers]}, deadlines=QUICK, metrics=metrics) as fleet:
        assert list(fleet) == ["null"] and len(fleet) == 1
        async with fleet["null"].episode(EpisodeRequest(task(1), seed=0)) as episode:
            await episode.step("word0001")
        metrics.episode_over("null", episode.opened.interface, "completed")
        port = metrics.serve(0, "127.0.0.1")
        try:
            url = f"http://127.0.0.1:{port}/metrics"
            text = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=10).read().decode())
        finally:
            metrics.stop_serving()
        assert 'shiftgym_rollout_pods{env="null",state="healthy"} 3.0' in text
        assert 'shiftgym_rollout_steps_total{env="null"} 1.0' in text
        assert 'shiftgym_rollout_episodes_total{env="null",interface="' in text
        with pytest.raises(KeyError, match="known: null"):
            fleet["babyai"]
        with pytest.raises(ValueError, match="unknown episode status"):
            metrics.episode_over("null", "", "lost")
    with pytest.raises(RuntimeError, match="closed"):
        async with fleet["null"].episode(EpisodeRequest(task(1), seed=0)):
            pass


# --- the fault test ----------------------------------------------------------------------------------


async def test_a_pod_killed_under_200_concurrent_episodes_loses_none_and_reruns_finish_on_the_survivors():
    args = ("--enable-oracle", "--log-level", "warning")
    with ServerProcess("babyai", *args) as a, ServerProcess("babyai", *args) as b, ServerProcess("babyai", *args) as c:
        async with AsyncEnvClient(a.target) as client:
            tasks = [t.task_id for t in await client.list_tasks("test", "hard")]
        requests = [EpisodeRequest(tasks[i % len(tasks)], seed=i, client_episode_id=f"ep{i}") for i in range(200)]
        deadlines = Deadlines(call_s=5.0, turn_s=15.0, episode_s=60.0)
        async with EnvPool([a.target, b.target, c.target], deadlines=deadlines, health_interval_s=0.5) as pool:
            killed = asyncio.Event()

            async def play(episode: PooledEpisode) -> str:
                result = episode.result
                while not result.done:
                    result = await episode.step(await episode.oracle_action())
                    if not killed.is_set() and sample(pool, "shiftgym_rollout_steps_total") >= 400:
                        killed.set()
                        os.kill(b.pid, signal.SIGKILL)
                return "truncated" if result.truncated else "completed"

            async def first_try(request: EpisodeRequest) -> str | EpisodeFailed:
                try:
                    async with pool.episode(request) as episode:
                        return await play(episode)
                except EpisodeFailed as failed:
                    return failed

            outcomes = await asyncio.wait_for(asyncio.gather(*(first_try(r) for r in requests)), timeout=40)
            assert killed.is_set()
            failed = {r.client_episode_id: o for r, o in zip(requests, outcomes) if isinstance(o, EpisodeFailed)}
            finished = [o for o in outcomes if isinstance(o, str)]
            assert len(failed) + len(finished) == 200  # every episode accounted for exactly once
            assert failed, "the kill should have caught episodes in flight"
            assert {f.reason for f in failed.values()} <= {"pod_lost", "deadline", "session_lost"}
            assert all(f.retryable and f.pod == b.target for f in failed.values())
            assert pool.pods[b.target] is False

            reruns = [r for r in requests if r.client_episode_id in failed]
            rerun = await asyncio.wait_for(
                asyncio.gather(*(run_with_retries(pool, r, play) for r in reruns)), timeout=30)
            assert set(finished + rerun) == {"completed"}
            assert len(finished) + len(rerun) == 200
            assert sample(pool, "shiftgym_rollout_failures_total", reason="pod_lost") >= len(failed)
            assert sample(pool, "shiftgym_rollout_in_flight_episodes") == 0
