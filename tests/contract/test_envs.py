"""The conformance suite every environment must pass, run over every registered environment.

A new environment joins by adding its line to env_server/registry.py.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from env_server import registry
from env_server.runtime import Limits
from env_server.tasks import sample_tasks
from shiftgym.env.v1 import env_pb2 as pb
from tests.contract.episodes import play_oracle
from tests.servers import ServerProcess, ServerThread
from trainer.client.env_client import EnvClient
from trainer.client.errors import EnvCallError

ORACLE_TASKS_PER_DIFFICULTY = 20
ENVS = registry.names(include_bench_only=True)


@pytest.fixture(scope="module", params=ENVS)
def environment(request):
    return registry.load(request.param)


@pytest.fixture(scope="module")
def server(environment):
    with ServerThread(environment, Limits(enable_oracle=True)) as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    with EnvClient(server.target, timeout_s=60) as c:
        yield c


def _eval_split(environment) -> str:
    names = [s.name for s in environment.spec.splits]
    return "test" if "test" in names else names[-1]


def _some_task(environment) -> str:
    difficulty = environment.spec.difficulties[0]
    return environment.tasks(_eval_split(environment), difficulty)[0].task_id


def _code(call) -> grpc.StatusCode:
    with pytest.raises(EnvCallError) as err:
        call()
    return err.value.code


def test_describe_matches_the_environment_spec(client, environment):
    info = client.describe()
    spec = environment.spec
    assert info.spec.name == spec.name
    assert info.spec.difficulties == spec.difficulties
    assert {s.name: dict(s.task_counts) for s in info.spec.splits} == {s.name: dict(s.task_counts) for s in spec.splits}
    assert info.spec.success_definition and info.spec.score_definition
    assert info.oracle_enabled


def test_list_tasks_pages_through_every_task_of_a_split(client, environment):
    split, difficulty = _eval_split(environment), environment.spec.difficulties[-1]
    listed = client.list_tasks(split, difficulty, page_size=7)
    assert [t.task_id for t in listed] == [t.task_id for t in environment.tasks(split, difficulty)]
    assert len({t.task_id for t in listed}) == len(listed) == environment.spec.split(split).task_counts[difficulty]


def test_same_task_and_seed_give_the_same_transcript_on_two_servers(client, environment):
    task_id = _some_task(environment)
    with ServerProcess(environment.spec.name, "--enable-oracle") as other, EnvClient(other.target, 60) as other_client:
        for seed in (0, 7):
            here = play_oracle(client, task_id, seed)
            there = play_oracle(other_client, task_id, seed)
            assert here == there
            assert here.turns, "the oracle took no step"


def test_the_oracle_solves_every_sampled_task_of_every_difficulty(client, environment):
    split = _eval_split(environment)
    for difficulty in environment.spec.difficulties:
        tasks = sample_tasks(environment.tasks(split, difficulty), ORACLE_TASKS_PER_DIFFICULTY, seed=2024)
        assert len(tasks) >= min(ORACLE_TASKS_PER_DIFFICULTY, environment.spec.split(split).task_counts[difficulty])
        for task in tasks:
            transcript = play_oracle(client, task.task_id, seed=1)
            assert transcript.outcome is not None and transcript.outcome.success, (task.task_id, transcript.turns[-3:])


def test_the_oracle_solves_tasks_over_the_session_stream(client, environment):
    tasks = sample_tasks(environment.tasks(_eval_split(environment), environment.spec.difficulties[0]), 3, seed=5)
    with client.stream() as stream:
        for task in tasks:
            opened = stream.reset(task.task_id, seed=3)
            result = opened.result
            while not result.done:
                result, _ = stream.step(opened.session_id, stream.oracle_action(opened.session_id))
            assert result.outcome.success
            stream.close(opened.session_id)


async def test_concurrent_episodes_on_one_server_all_succeed(server, environment):
    from trainer.client.env_client import AsyncEnvClient

    split = _eval_split(environment)
    tasks = [t for d in environment.spec.difficulties for t in sample_tasks(environment.tasks(split, d), 2, seed=2024)]
    async with AsyncEnvClient(server.target, timeout_s=300) as client, client.stream() as stream:

        async def play(task_id: str) -> bool:
            opened = await stream.reset(task_id, seed=2)
            result = opened.result
            while not result.done:
                result, _ = await stream.step(opened.session_id, await stream.oracle_action(opened.session_id))
            await stream.close(opened.session_id)
            return result.outcome.success

        outcomes = await asyncio.gather(*(play(t.task_id) for t in tasks))
    assert outcomes == [True] * len(tasks)


def test_a_bad_action_is_an_invalid_action_not_an_error(client, environment):
    opened = client.reset(_some_task(environment), seed=0)
    for action in ("", "   ", "xyzzy plugh frobnicate 12345"):
        result, _ = client.step(opened.session_id, action)
        assert result.action_valid is False, action
        assert result.observation.text
    client.close(opened.session_id)


def test_a_repeated_step_index_returns_the_recorded_answer(client, environment):
    opened = client.reset(_some_task(environment), seed=0)
    action = client.oracle_action(opened.session_id)
    first = client.step(opened.session_id, action, step_index=0)
    again = client.step(opened.session_id, "anything else", step_index=0)
    assert first == again and first[1] == 1
    assert _code(lambda: client.step(opened.session_id, action, step_index=5)) == grpc.StatusCode.INVALID_ARGUMENT
    client.close(opened.session_id)


def test_turn_limit_truncates(client, environment):
    opened = client.reset(_some_task(environment), seed=0, max_turns=2)
    results = [client.step(opened.session_id, "xyzzy")[0] for _ in range(2)]
    assert not results[0].done
    assert results[1].done and results[1].truncated and results[1].outcome.success is False


@pytest.mark.parametrize(
    "case",
    ["unknown_session", "step_after_done", "huge_action", "unknown_task", "negative_seed", "unknown_adapter",
     "bad_task_ref", "closed_session"],
)
def test_bad_input_gets_its_documented_status_and_the_server_keeps_serving(client, environment, case):
    task_id = _some_task(environment)
    expected = {
        "unknown_session": grpc.StatusCode.NOT_FOUND,
        "closed_session": grpc.StatusCode.NOT_FOUND,
        "step_after_done": grpc.StatusCode.FAILED_PRECONDITION,
        "huge_action": grpc.StatusCode.INVALID_ARGUMENT,
        "unknown_task": grpc.StatusCode.INVALID_ARGUMENT,
        "negative_seed": grpc.StatusCode.INVALID_ARGUMENT,
        "unknown_adapter": grpc.StatusCode.INVALID_ARGUMENT,
        "bad_task_ref": grpc.StatusCode.INVALID_ARGUMENT,
    }[case]
    if case == "unknown_session":
        call = lambda: client.step("no-such-session", "look")  # noqa: E731
    elif case == "closed_session":
        opened = client.reset(task_id, seed=0)
        client.close(opened.session_id)
        call = lambda: client.step(opened.session_id, "look")  # noqa: E731
    elif case == "step_after_done":
        opened = client.reset(task_id, seed=0, max_turns=1)
        assert client.step(opened.session_id, "xyzzy")[0].done
        call = lambda: client.step(opened.session_id, "xyzzy")  # noqa: E731
    elif case == "huge_action":
        opened = client.reset(task_id, seed=0)
        call = lambda: client.step(opened.session_id, "a" * (1024 * 1024))  # noqa: E731
    elif case == "unknown_task":
        call = lambda: client.reset(f"{environment.spec.name}/test/easy/no-such-task", seed=0)  # noqa: E731
    elif case == "negative_seed":
        call = lambda: client.reset(task_id, seed=-1)  # noqa: E731
    elif case == "unknown_adapter":
        call = lambda: client.reset(task_id, seed=0, interface=[("jsn", {})])  # noqa: E731
    else:
        call = lambda: client.reset(split="test", difficulty=environment.spec.difficulties[0], index=10**9)  # noqa: E731
    with pytest.raises(EnvCallError) as err:
        call()
    assert err.value.code == expected
    assert len(err.value.message) > 10  # says what was wrong
    assert client.describe().spec.name == environment.spec.name


@pytest.mark.parametrize("field", ["session_id", "action"])
def test_invalid_utf8_is_invalid_argument(server, client, field):
    # Hand-made wire bytes: protobuf's own encoder refuses to produce invalid UTF-8.
    bad = b"\xff\xfe\xfd"
    number = {"session_id": 1, "action": 2}[field]
    raw = bytes([number << 3 | 2, len(bad)]) + bad
    with grpc.insecure_channel(server.target) as channel:
        step = channel.unary_unary("/shiftgym.env.v1.EnvironmentService/Step",
                                   response_deserializer=pb.StepResponse.FromString)
        with pytest.raises(grpc.RpcError) as err:
            step(raw, timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "UTF-8" in err.value.details() or "utf-8" in err.value.details()
    assert client.describe()


def test_idle_sessions_expire(environment):
    with ServerThread(environment, Limits(idle_ttl_s=0.3)) as server, EnvClient(server.target, 30) as client:
        opened = client.reset(_some_task(environment), seed=0)
        deadline = time.monotonic() + 10
        while server.runtime.open_sessions and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _code(lambda: client.step(opened.session_id, "xyzzy")) == grpc.StatusCode.NOT_FOUND


def test_the_session_limit_is_resource_exhausted_and_frees_on_close(environment):
    with ServerThread(environment, Limits(max_sessions=3)) as server, EnvClient(server.target, 30) as client:
        task_id = _some_task(environment)
        sessions = [client.reset(task_id, seed=s).session_id for s in range(3)]
        assert _code(lambda: client.reset(task_id, seed=9)) == grpc.StatusCode.RESOURCE_EXHAUSTED
        client.close(sessions[0])
        assert client.reset(task_id, seed=9).session_id


def test_a_repeated_client_episode_id_returns_the_same_session(client, environment):
    task_id = _some_task(environment)
    first = client.reset(task_id, seed=4, client_episode_id="episode-abc")
    again = client.reset(task_id, seed=4, client_episode_id="episode-abc")
    assert first == again
    client.close(first.session_id)


def test_sigterm_drains_lets_the_running_episode_finish_and_exits_zero(environment):
    name = environment.spec.name
    with ServerProcess(name, "--enable-oracle", "--drain-grace-s", "60") as proc, EnvClient(proc.target, 60) as client:
        opened = client.reset(_some_task(environment), seed=0)
        proc.terminate()
        _wait_until_not_serving(proc.target)
        assert _code(lambda: client.reset(_some_task(environment), seed=1)) == grpc.StatusCode.UNAVAILABLE
        result = opened.result
        while not result.done:
            result, _ = client.step(opened.session_id, client.oracle_action(opened.session_id))
        assert result.outcome.success
        assert proc.wait(60) == 0


def _wait_until_not_serving(target: str) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            status = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status
            if status == health_pb2.HealthCheckResponse.NOT_SERVING:
                return
            time.sleep(0.05)
    raise AssertionError("health never went NOT_SERVING after SIGTERM")


def test_metrics_over_http_count_what_was_done(environment):
    name = environment.spec.name
    with ServerProcess(name, "--enable-oracle") as proc, EnvClient(proc.target, 60) as client:
        task_id = _some_task(environment)
        transcript = play_oracle(client, task_id, seed=0)
        opened = client.reset(task_id, seed=1)
        client.step(opened.session_id, "xyzzy")
        _code(lambda: client.step("no-such-session", "x"))
        samples = _scrape(proc.metrics_port)
        client.close(opened.session_id)  # else the server's drain on exit waits for it
    steps = len(transcript.turns) + 1
    assert samples[("shiftgym_env_resets_total", (("env", name), ("interface", "original")))] == 2
    valid = sum(v for (n, labels), v in samples.items() if n == "shiftgym_env_steps_total")
    assert valid == steps
    assert samples[("shiftgym_env_steps_total", (("env", name), ("interface", "original"), ("valid", "false")))] >= 1
    assert samples[("shiftgym_env_step_duration_seconds_count", (("env", name), ("interface", "original")))] == steps
    assert samples[("shiftgym_env_episodes_total", (("env", name), ("interface", "original"), ("outcome", "success")))] == 1
    assert samples[("shiftgym_env_active_sessions", (("env", name),))] == 1
    assert samples[("shiftgym_env_errors_total", (("code", "NOT_FOUND"), ("env", name), ("method", "Step")))] == 1


def _scrape(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
