"""Faults not covered elsewhere: a server restarted on the same address, a step slower than every deadline, and a
peer that stops reading its Session stream. (SIGKILL under 200 episodes and a slow first step retried with its
index are in tests/trainer/test_pool.py; SIGTERM drain is in tests/contract/test_envs.py.)"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from dataclasses import dataclass, field

import grpc
import pytest

from env_server.envs.null import NullEnv, NullEpisode
from env_server.runtime import Limits
from shiftgym.env.v1 import env_pb2 as pb
from shiftgym.env.v1 import env_pb2_grpc
from tests.servers import ServerProcess, ServerThread
from trainer.client.env_client import AsyncEnvClient, EnvClient
from trainer.client.errors import EnvCallError
from trainer.client.pool import Deadlines, EnvPool, EpisodeFailed, EpisodeRequest, PooledEpisode, run_with_retries
from tests.servers import free_port

Code = grpc.StatusCode


def task(index: int) -> str:
    return f"null/test/easy/{index:05d}"


def eventually(call, timeout_s: float = 20.0):
    """call() once it stops failing with UNAVAILABLE (a channel reconnecting after its server restarted)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return call()
        except EnvCallError as err:
            if err.code != Code.UNAVAILABLE or time.monotonic() > deadline:
                raise
        time.sleep(0.1)


@dataclass(slots=True)
class RecordingEpisode(NullEpisode):
    """The null episode, recording every action it really applies, each step taking `delay_s` of blocking work."""

    delay_s: float = 0.0
    applied: list[str] = field(default_factory=list)

    def step(self, action: str):
        self.applied.append(action)
        time.sleep(self.delay_s)  # blocking env code: the server runs it off its loop
        return NullEpisode.step(self, action)


class RecordingEnv(NullEnv):
    def __init__(self, delay_s: float = 0.0) -> None:
        super().__init__()
        self.delay_s = delay_s
        self.episodes: list[RecordingEpisode] = []
        self.lock = threading.Lock()

    def reset(self, task_id: str, seed: int) -> RecordingEpisode:
        plain = super().reset(task_id, seed)
        episode = RecordingEpisode(plain.task, plain.word, delay_s=self.delay_s)
        with self.lock:
            self.episodes.append(episode)
        return episode

    @property
    def steps_applied(self) -> int:
        with self.lock:
            return sum(len(e.applied) for e in self.episodes)


# --- a server restarted on the same address ------------------------------------------------------------------


async def test_clients_and_a_one_pod_pool_recover_when_the_server_restarts_on_the_same_address():
    port = free_port()
    args = ("--port", str(port), "--log-level", "warning", "--enable-oracle")
    deadlines = Deadlines(call_s=2.0, turn_s=15.0, episode_s=60.0)
    first = ServerProcess("null", *args).__enter__()
    restarted: list[ServerProcess] = []
    try:
        with EnvClient(first.target, 5) as client:
            async with EnvPool([first.target], deadlines=deadlines, health_interval_s=0.2) as pool, \
                    AsyncEnvClient(first.target, 5) as async_client:
                stale = client.reset(task(1), seed=0)
                attempts: list[EpisodeFailed] = []

                async def play(episode: PooledEpisode) -> bool:
                    await episode.step("noop")
                    if not restarted:  # mid-episode: kill the only server and start a new one on its port
                        os.kill(first.pid, signal.SIGKILL)
                        first.wait()
                        restarted.append(ServerProcess("null", *args).__enter__())
                    return (await episode.step(await episode.oracle_action())).outcome.success

                async with async_client.stream() as old_stream:
                    await old_stream.close((await old_stream.reset(task(2), seed=0)).session_id)
                    assert await run_with_retries(pool, EpisodeRequest(task(3), seed=0, client_episode_id="e3"), play,
                                                  on_failure=attempts.append)
                    # The stream opened before the restart is broken for good, and says so at once.
                    with pytest.raises(EnvCallError) as broken:
                        await old_stream.reset(task(2), seed=0)
                    assert broken.value.code == Code.UNAVAILABLE
                assert restarted[0].target == first.target
                assert [(f.reason, f.retryable) for f in attempts] in ([("pod_lost", True)], [("session_lost", True)])
                assert pool.pods == {first.target: True}
                # The same channels reconnect: the old session is gone (NOT_FOUND), new episodes play.
                assert eventually(client.describe).spec.name == "null"
                with pytest.raises(EnvCallError) as lost:
                    client.step(stale.session_id, "noop")
                assert lost.value.code == Code.NOT_FOUND
                async with async_client.stream() as new_stream:
                    opened = await new_stream.reset(task(4), seed=0)
                    assert (await new_stream.step(opened.session_id, "word0004"))[0].outcome.success
                    await new_stream.close(opened.session_id)
    finally:
        for server in (first, *restarted):
            server.__exit__(None, None, None)


# --- a step slower than its deadline -------------------------------------------------------------------------


def test_a_slow_step_is_deadline_exceeded_for_its_caller_only_and_its_answer_is_kept_for_the_retry():
    env = RecordingEnv(delay_s=1.0)
    with ServerThread(env, Limits(enable_oracle=True)) as server, EnvClient(server.target, 10) as client, \
            EnvClient(server.target, 10) as other:
        slow = client.reset(task(1), seed=0)
        started = time.monotonic()
        with pytest.raises(EnvCallError) as err:
            client.step(slow.session_id, "noop", step_index=0, timeout_s=0.2)
        assert err.value.code == Code.DEADLINE_EXCEEDED and time.monotonic() - started < 0.9
        # Meanwhile the server answers others: the slow step runs in the env thread pool, not on the event loop.
        started = time.monotonic()
        assert other.describe().spec.name == "null" and time.monotonic() - started < 0.5
        result, turn = client.step(slow.session_id, "noop", step_index=0)  # the retry waits for the first answer
        assert turn == 1 and result.action_valid and env.episodes[0].applied == ["noop"]


async def test_a_step_slower_than_every_retry_fails_the_episode_with_deadline_and_acts_once():
    env = RecordingEnv(delay_s=1.5)
    with ServerThread(env, Limits(enable_oracle=True)) as server:
        deadlines = Deadlines(call_s=0.2, turn_s=0.8, episode_s=10.0)
        async with EnvPool([server.target], deadlines=deadlines) as pool:
            with pytest.raises(EpisodeFailed) as failed:
                async with pool.episode(EpisodeRequest(task(5), seed=0)) as episode:
                    await episode.step("noop")
            assert (failed.value.reason, failed.value.retryable) == ("deadline", True)
            assert pool.pods == {server.target: True}  # slow is not down
        await asyncio.sleep(1.6)  # the one real step finishes
        assert env.episodes[0].applied == ["noop"]  # three attempts with one step index: applied once
        assert server.runtime.open_sessions == 0  # the pool closed the session it gave up on


# --- a peer that stops reading -----------------------------------------------------------------------------


async def test_a_peer_that_stops_reading_its_stream_holds_bounded_server_memory_and_blocks_no_one_else():
    env = RecordingEnv()
    in_flight = 64
    with ServerThread(env, Limits(stream_in_flight=in_flight)) as server:
        channel = grpc.aio.insecure_channel(server.target)
        stub = env_pb2_grpc.EnvironmentServiceStub(channel)
        outbox: asyncio.Queue[pb.SessionRequest] = asyncio.Queue()

        async def requests():
            while True:
                yield await outbox.get()

        stalled = stub.Session(requests())
        outbox.put_nowait(pb.SessionRequest(correlation_id="open", reset=pb.ResetRequest(task_id=task(1))))
        session_id = (await stalled.read()).reset.session_id
        # 3,000 steps of 16 KB echoed back (48 MB of answers); the client never reads another response.
        sent = 3000
        for i in range(sent):
            outbox.put_nowait(pb.SessionRequest(correlation_id=str(i),
                                                step=pb.StepRequest(session_id=session_id, text="x" * 16_000)))
        plateau = []
        for _ in range(6):
            await asyncio.sleep(0.5)
            plateau.append(env.steps_applied)
        # The server stopped reading once `in_flight` answers waited to be written, beyond what HTTP/2 windows and
        # socket buffers hold (a few MB), and holds steady: memory does not grow with what the client sends.
        assert plateau[-1] == plateau[-3], plateau
        assert plateau[-1] < in_flight + 600 < sent, plateau
        assert outbox.qsize() > 0  # the client's own sends are held back by flow control

        # Others are served as usual meanwhile, unary and over their own streams.
        async with AsyncEnvClient(server.target, 5) as other, other.stream() as stream:
            started = time.monotonic()
            opened = await stream.reset(task(2), seed=0)
            assert (await stream.step(opened.session_id, "word0002"))[0].outcome.success
            assert (await other.describe()).spec.name == "null"
            assert time.monotonic() - started < 2.0
            await stream.close(opened.session_id)

        stalled.cancel()  # the peer goes away: its answers and tasks are dropped, its session expires by TTL
        await channel.close()
        await asyncio.sleep(0.3)
        applied = env.steps_applied
        await asyncio.sleep(0.5)
        assert env.steps_applied == applied
        async with AsyncEnvClient(server.target, 5) as other:
            await other.close(session_id)
        assert server.runtime.open_sessions == 0
