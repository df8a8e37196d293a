"""OpenAIChatPolicy against a fake chat-completions endpoint on loopback, and one BabyAI episode through a real
env server with the fake answering the oracle's actions."""

from __future__ import annotations

import random
import socket
import time

import pytest

from env_server.runtime import Limits
from env_server.types import Observation
from tests.fakes.openai_server import FakeOpenAIServer, constant
from tests.servers import ServerThread
from trainer.client.pool import EnvPool
from trainer.episodes import EpisodeRunner, EpisodeSpec
from trainer.policies.base import Message, TextPolicy, Turn
from trainer.policies.openai_api import CHOICE_INSTRUCTION, ChatEndpointError, OpenAIChatPolicy

ACTIONS = ("turn left", "turn right", "go forward", "pick up the red ball")
MESSAGES = (Message("system", "You are in a grid world."), Message("user", "You see a red ball ahead."))


async def _no_oracle() -> str:
    raise AssertionError("these tests never ask the oracle")


def _turn(seed: int = 5, actions: tuple[str, ...] = ACTIONS) -> Turn:
    return Turn(MESSAGES, Observation("You see a red ball ahead.", actions), random.Random(seed), _no_oracle)


def _policy(fake: FakeOpenAIServer, **kwargs: object) -> OpenAIChatPolicy:
    settings: dict[str, object] = {"api_key": "", "backoff_s": 0.01, "timeout_s": 10.0}
    return OpenAIChatPolicy(fake.base_url, "fake-model", **{**settings, **kwargs})  # type: ignore[arg-type]


async def test_request_carries_model_messages_sampling_and_a_seed_from_the_turn_rng():
    with FakeOpenAIServer(constant("  go forward\n")) as fake:
        async with _policy(fake, api_key="sk-test", temperature=0.7, max_tokens=16) as policy:
            assert isinstance(policy, TextPolicy)
            action = await policy.act(_turn(seed=5))
    assert action == "go forward"
    [request] = fake.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.body["model"] == "fake-model"
    assert request.body["messages"] == [{"role": "system", "content": "You are in a grid world."},
                                        {"role": "user", "content": "You see a red ball ahead."}]
    assert request.body["temperature"] == 0.7 and request.body["max_tokens"] == 16
    assert request.body["seed"] == random.Random(5).getrandbits(31)


async def test_api_key_comes_from_the_environment_and_none_sends_no_authorization(monkeypatch):
    with FakeOpenAIServer(constant("look")) as fake:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
        async with OpenAIChatPolicy(fake.base_url, "m") as policy:
            await policy.act(_turn())
        monkeypatch.delenv("OPENAI_API_KEY")
        async with OpenAIChatPolicy(fake.base_url, "m") as policy:
            await policy.act(_turn())
    assert fake.requests[0].headers["authorization"] == "Bearer sk-env"
    assert "authorization" not in fake.requests[1].headers


async def test_choice_mode_numbers_the_actions_under_the_last_user_message():
    with FakeOpenAIServer(constant("1")) as fake:
        async with _policy(fake, mode="choice") as policy:
            await policy.act(_turn())
    messages = fake.requests[0].body["messages"]
    assert messages[0] == {"role": "system", "content": "You are in a grid world."}
    assert messages[1]["role"] == "user" and len(messages) == 2
    assert messages[1]["content"] == (
        "You see a red ball ahead.\n\nValid actions:\n1. turn left\n2. turn right\n3. go forward\n"
        f"4. pick up the red ball\n{CHOICE_INSTRUCTION}")


@pytest.mark.parametrize(("reply", "expected"), [
    ("go forward", "go forward"),  # exact
    (' "Turn Left." ', "turn left"),  # exact after strip, quotes, trailing period, case-fold
    ("2", "turn right"),  # a number in 1..n
    ("4.", "pick up the red ball"),
    ("turn lft", "turn left"),  # fuzzy
    ("pick up red ball", "pick up the red ball"),
    ("3. go forward", "go forward"),
    ("9", "9"),  # a number out of range matches nothing: the raw reply goes to the env as an invalid action
    ("  dance wildly ", "dance wildly"),
])
async def test_choice_mode_maps_the_reply_onto_a_valid_action(reply, expected):
    with FakeOpenAIServer(constant(reply)) as fake:
        async with _policy(fake, mode="choice") as policy:
            assert await policy.act(_turn()) == expected


async def test_choice_mode_without_listed_actions_is_a_clear_error():
    with FakeOpenAIServer() as fake:
        async with _policy(fake, mode="choice") as policy:
            with pytest.raises(ValueError, match="valid actions"):
                await policy.act(_turn(actions=()))
    assert fake.requests == []


async def test_429_and_5xx_are_retried_with_the_same_seed_then_succeed():
    with FakeOpenAIServer(constant("go forward"), failures=[429, 500, 503]) as fake:
        async with _policy(fake, max_retries=3) as policy:
            assert await policy.act(_turn()) == "go forward"
    assert len(fake.requests) == 4
    assert len({r.body["seed"] for r in fake.requests}) == 1


async def test_retries_give_up_after_max_retries_with_the_last_failure():
    with FakeOpenAIServer(constant("go forward"), failures=[500, 502, 500]) as fake:
        async with _policy(fake, max_retries=1) as policy:
            with pytest.raises(ChatEndpointError, match=r"failed 2 attempts; last: HTTP 502: scripted failure 502"):
                await policy.act(_turn())
    assert len(fake.requests) == 2


async def test_connection_errors_are_retried_then_reported():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with OpenAIChatPolicy(f"http://127.0.0.1:{port}/v1", "m", max_retries=2, backoff_s=0.01) as policy:
        with pytest.raises(ChatEndpointError, match="failed 3 attempts; last: ConnectError"):
            await policy.act(_turn())


async def test_a_400_raises_at_once_with_the_endpoint_message():
    with FakeOpenAIServer(constant("go forward"), failures=[400]) as fake:
        async with _policy(fake, max_retries=3) as policy:
            with pytest.raises(ChatEndpointError, match="rejected the request with HTTP 400: scripted failure 400") \
                    as err:
                await policy.act(_turn())
    assert err.value.status == 400
    assert len(fake.requests) == 1


async def test_a_slow_endpoint_fails_within_timeout_s():
    with FakeOpenAIServer(constant("go forward"), delay_s=30.0) as fake:
        async with _policy(fake, timeout_s=0.3) as policy:
            started = time.monotonic()
            with pytest.raises(ChatEndpointError, match=r"no reply from .* within 0.3 s"):
                await policy.act(_turn())
            assert time.monotonic() - started < 15.0  # gave up long before the fake would have answered


class _OracleFed:
    """Looks up the oracle's action before each turn, for the fake endpoint to answer with."""

    def __init__(self, policy: OpenAIChatPolicy) -> None:
        self.policy = policy
        self.name = policy.name
        self.next_action = ""

    async def act(self, turn: Turn) -> str:
        self.next_action = await turn.oracle()
        return await self.policy.act(turn)


@pytest.fixture(scope="module")
def babyai():
    with ServerThread("babyai", Limits(enable_oracle=True)) as running:
        yield running


@pytest.mark.parametrize(("mode", "interface"), [
    ("free", ()),
    ("choice", (("action_list", {"show": "every"}),)),
])
async def test_a_babyai_episode_played_through_the_endpoint_succeeds(babyai, mode, interface):
    fed: _OracleFed | None = None

    def oracle_reply(body: object) -> str:  # choice mode: the model's usual noise, which the mapping absorbs
        assert fed is not None
        return fed.next_action if mode == "free" else f"{fed.next_action.capitalize()}."

    spec = EpisodeSpec("babyai", "babyai/train/easy/GoToRedBall-00003", seed=0, interface=interface)
    with FakeOpenAIServer(oracle_reply) as fake:
        async with _policy(fake, mode=mode) as policy, EnvPool([babyai.target], env="babyai") as pool:
            fed = _OracleFed(policy)
            trajectory = await EpisodeRunner(pool).run(spec, fed, sample_seed=3)
    assert trajectory.status == "completed", trajectory.reason
    assert trajectory.success
    assert trajectory.turns and all(t.valid for t in trajectory.turns)
    assert len(fake.requests) == len(trajectory.turns)
    seeds = [r.body["seed"] for r in fake.requests]
    rng = random.Random(3)
    assert seeds == [rng.getrandbits(31) for _ in seeds]
