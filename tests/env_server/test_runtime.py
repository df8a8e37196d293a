"""Server behaviour beyond the conformance suite: lifetimes, ordering, paging, drain, unexpected failures."""

from __future__ import annotations

import time

import grpc
import pytest

from env_server.envs.null import NullEnv, NullEpisode
from env_server.runtime import Limits
from env_server.types import StepResult
from tests.servers import ServerThread
from trainer.client.env_client import EnvClient
from trainer.client.errors import EnvCallError


class ExplodingEpisode(NullEpisode):
    def step(self, action: str) -> StepResult:
        if action == "boom":
            raise ZeroDivisionError("an environment bug")
        return NullEpisode.step(self, action)


class ExplodingEnv(NullEnv):
    """A real environment with a bug on one action, to see what the server makes of environment failures."""

    def reset(self, task_id: str, seed: int) -> NullEpisode:
        episode = super().reset(task_id, seed)
        return ExplodingEpisode(episode.task, episode.word)


def _status(call) -> EnvCallError:
    with pytest.raises(EnvCallError) as err:
        call()
    return err.value


def test_finished_episodes_are_freed_after_their_ttl():
    with ServerThread("null", Limits(finished_ttl_s=0.2, idle_ttl_s=600)) as server, EnvClient(server.target) as client:
        finished = client.reset("null/test/easy/00001", seed=0)
        client.step(finished.session_id, "word0001")
        running = client.reset("null/test/easy/00002", seed=0)
        deadline = time.monotonic() + 10
        while server.runtime.open_sessions > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.runtime.open_sessions == 1
        assert client.step(running.session_id, "noop")[1] == 1


def test_an_environment_bug_is_internal_with_an_error_id_and_the_server_goes_on():
    with ServerThread(ExplodingEnv()) as server, EnvClient(server.target) as client:
        opened = client.reset("null/test/easy/00003", seed=0)
        err = _status(lambda: client.step(opened.session_id, "boom"))
        assert err.code == grpc.StatusCode.INTERNAL
        assert "internal error" in err.message and "an environment bug" not in err.message
        assert client.step(opened.session_id, "word0003")[0].done


def test_reset_by_split_difficulty_and_index_matches_list_tasks():
    with ServerThread("null") as server, EnvClient(server.target) as client:
        listed = client.list_tasks("train", "easy")
        opened = client.reset(split="train", difficulty="easy", index=17, seed=0)
        assert opened.task == listed[17]


def test_list_tasks_rejects_unknown_filters_and_foreign_page_tokens():
    with ServerThread("null") as server, EnvClient(server.target) as client:
        assert _status(lambda: client.list_tasks("validation")).code == grpc.StatusCode.INVALID_ARGUMENT
        assert _status(lambda: client.list_tasks("test", "hard")).code == grpc.StatusCode.INVALID_ARGUMENT
        from shiftgym.env.v1 import env_pb2 as pb
        from shiftgym.env.v1 import env_pb2_grpc

        with grpc.insecure_channel(server.target) as channel:
            stub = env_pb2_grpc.EnvironmentServiceStub(channel)
            page = stub.ListTasks(pb.ListTasksRequest(split="train", page_size=10), timeout=10)
            assert len(page.tasks) == 10 and page.total_count == 1000
            with pytest.raises(grpc.RpcError) as err:
                stub.ListTasks(pb.ListTasksRequest(split="test", page_token=page.next_page_token), timeout=10)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_max_turns_beyond_the_limit_is_invalid_argument():
    with ServerThread("null") as server, EnvClient(server.target) as client:
        limit = client.describe().spec.max_turns_limit
        err = _status(lambda: client.reset("null/test/easy/00001", seed=0, max_turns=limit + 1))
        assert err.code == grpc.StatusCode.INVALID_ARGUMENT and str(limit) in err.message


def test_the_oracle_is_off_unless_enabled():
    with ServerThread("null", Limits(enable_oracle=False)) as server, EnvClient(server.target) as client:
        opened = client.reset("null/test/easy/00001", seed=0)
        assert _status(lambda: client.oracle_action(opened.session_id)).code == grpc.StatusCode.FAILED_PRECONDITION
        assert client.describe().oracle_enabled is False


def test_draining_refuses_new_episodes_with_unavailable_but_serves_running_ones():
    with ServerThread("null") as server, EnvClient(server.target) as client:
        opened = client.reset("null/test/easy/00004", seed=0)
        server.runtime.draining = True
        assert _status(lambda: client.reset("null/test/easy/00005", seed=0)).code == grpc.StatusCode.UNAVAILABLE
        assert client.step(opened.session_id, "word0004")[0].outcome.success
