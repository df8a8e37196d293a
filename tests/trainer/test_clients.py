"""The sync, async, stream and Gymnasium clients against real servers on loopback."""

from __future__ import annotations

import asyncio
import threading

import grpc
import pytest
from gymnasium.utils.env_checker import check_env

from env_server.runtime import Limits
from tests.servers import ServerThread
from trainer.client.env_client import AsyncEnvClient, EnvClient
from trainer.client.errors import EnvCallError
from trainer.client.gym_env import RemoteTextEnv


@pytest.fixture(scope="module")
def null_server():
    with ServerThread("null", Limits(enable_oracle=True)) as server:
        yield server


async def test_one_stream_multiplexes_many_concurrent_episodes(null_server):
    async with AsyncEnvClient(null_server.target) as client, client.stream() as stream:

        async def episode(index: int) -> tuple[str, float]:
            opened = await stream.reset(split="train", difficulty="easy", index=index, seed=index)
            await stream.step(opened.session_id, "noop", step_index=0)
            result, turn = await stream.step(opened.session_id, f"word{index:04d}", step_index=1)
            await stream.close(opened.session_id)
            assert turn == 2
            return opened.task.task_id, result.reward

        results = await asyncio.gather(*(episode(i) for i in range(200)))
    assert results == [(f"null/train/easy/{i:05d}", 1.0) for i in range(200)]
    assert null_server.runtime.open_sessions == 0


async def test_an_error_on_the_stream_fails_that_call_only(null_server):
    async with AsyncEnvClient(null_server.target) as client, client.stream() as stream:
        with pytest.raises(EnvCallError) as err:
            await stream.step("no-such-session", "noop")
        assert err.value.code == grpc.StatusCode.NOT_FOUND
        opened = await stream.reset("null/test/easy/00001", seed=0)
        result, _ = await stream.step(opened.session_id, "word0001")
        assert result.done and result.outcome.success


async def test_calls_in_flight_fail_instead_of_hanging_when_the_server_goes_away():
    with ServerThread("null") as server:
        client = AsyncEnvClient(server.target, timeout_s=20)
        stream = await client.stream().__aenter__()
        opened = await stream.reset("null/test/easy/00002", seed=0)
        server.call(server.server.stop(grace_s=None))
        with pytest.raises(EnvCallError) as err:
            await stream.step(opened.session_id, "noop")
        assert err.value.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
        await stream.__aexit__(None, None, None)
        await client.aclose()
        server.server.stop = _already_stopped  # type: ignore[method-assign]


async def _already_stopped(grace_s=None):
    return None


def test_the_blocking_stream_is_safe_from_many_threads(null_server):
    with EnvClient(null_server.target) as client, client.stream() as stream:
        outcomes: list[bool] = []

        def play(index: int) -> None:
            opened = stream.reset(split="test", difficulty="easy", index=index, seed=1)
            result, _ = stream.step(opened.session_id, stream.oracle_action(opened.session_id))
            stream.close(opened.session_id)
            outcomes.append(result.outcome.success)

        threads = [threading.Thread(target=play, args=(i,)) for i in range(32)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert outcomes == [True] * 32


def test_the_unary_client_lists_and_plays(null_server):
    with EnvClient(null_server.target) as client:
        assert len(client.list_tasks("train", "easy", page_size=333)) == 1000
        opened = client.reset("null/train/easy/00007", seed=3)
        assert opened.result.observation.text == "Say word0007."
        result, turn = client.step(opened.session_id, client.oracle_action(opened.session_id), step_index=0)
        assert result.done and turn == 1


def test_the_gymnasium_adapter_passes_gymnasiums_own_checker(null_server):
    open_before = null_server.runtime.open_sessions
    env = RemoteTextEnv(null_server.target, split="test")
    try:
        check_env(env, skip_render_check=True)
        text, info = env.reset(seed=3, options={"task_id": "null/test/easy/00042"})
        assert text == "Say word0042." and "word0042" in info["valid_actions"]
        _, reward, terminated, truncated, info = env.step("word0042")
        assert (reward, terminated, truncated, info["success"]) == (1.0, True, False, True)
    finally:
        env.close()
    assert null_server.runtime.open_sessions == open_before
