"""The episode runner against a real BabyAI server: token assembly, budgets, text policies, failures as data."""

from __future__ import annotations

import pytest
import torch

from trainer.chat import ChatGlue
from trainer.client.env_client import EnvClient
from trainer.client.pool import EnvPool
from trainer.episodes import Budget, EpisodeRunner, EpisodeSpec
from trainer.policies.base import Sampling, Turn
from trainer.policies.lm import LMPolicy
from trainer.policies.scripted import OraclePolicy, RandomPolicy
from trainer.rl.grpo import token_log_probs
from trainer.shaping import Shaping
from trainer.trajectory import TurnRecord

TASK = "babyai/train/easy/GoToRedBall-00003"
CHOICE_INTERFACE = (("action_list", {"show": "every"}),)


@pytest.fixture(scope="module")
def server(babyai_server):
    return babyai_server


@pytest.fixture(scope="module")
def engine(tiny_engine):
    return tiny_engine


async def _run(server, policy, spec=EpisodeSpec("babyai", TASK, seed=0), budget=Budget(), sample_seed=0, **kw):
    async with EnvPool([server.target], env="babyai") as pool:
        return await EpisodeRunner(pool, budget=budget, **kw).run(spec, policy, sample_seed=sample_seed)


def _teacher_forced(engine, trajectory) -> list[float]:
    ids = torch.tensor([trajectory.token_ids])
    with torch.no_grad():
        shifted = token_log_probs(engine.model, ids, torch.ones_like(ids), temperature=1.0)[0].tolist()
    return [0.0] + shifted  # index t: log-prob of token t


@pytest.mark.parametrize("mode", ["free", "choice"])
async def test_rollout_log_probs_equal_teacher_forced_on_action_tokens(server, engine, mode):
    policy = LMPolicy(engine, mode=mode)
    spec = EpisodeSpec("babyai", TASK, seed=0, interface=CHOICE_INTERFACE, max_turns=4)
    trajectory = await _run(server, policy, spec, Budget(turn_tokens=12, trajectory_tokens=2048), sample_seed=7)
    assert trajectory.status in ("completed", "truncated"), trajectory.reason
    mask = trajectory.action_mask()
    assert sum(mask) == sum(t.tokens for t in trajectory.turns) > 0
    expected = _teacher_forced(engine, trajectory)
    for index, (bit, rollout, forced) in enumerate(zip(mask, trajectory.log_probs, expected)):
        if bit:
            assert rollout == pytest.approx(forced, abs=1e-4), index
        else:
            assert rollout == 0.0


async def test_only_sampled_tokens_are_masked_in_and_context_is_the_chat_template(server, engine):
    policy = LMPolicy(engine, mode="choice")
    spec = EpisodeSpec("babyai", TASK, seed=0, interface=CHOICE_INTERFACE, max_turns=3)
    trajectory = await _run(server, policy, spec, Budget(turn_tokens=32, trajectory_tokens=4096))
    assert trajectory.status in ("completed", "truncated") and trajectory.turns
    glue = ChatGlue(engine.tokenizer)
    # Every action span is a valid action's tokens plus the stop token, exactly as chosen.
    for (start, end), turn in zip(trajectory.action_ranges, trajectory.turns):
        span = list(trajectory.token_ids[start:end])
        assert span == glue.encode(turn.action) + [glue.stop_id]
    # Replaying the actions (same task, seed, interface) gives the observations; the whole trajectory is the
    # tokenizer's own chat template over them, up to the closing newline after the last action.
    with EnvClient(server.target) as client:
        opened = client.reset(TASK, seed=0, interface=CHOICE_INTERFACE, max_turns=3)
        messages = [{"role": "user", "content": opened.result.observation.text}]
        for index, turn in enumerate(trajectory.turns):
            result, _ = client.step(opened.session_id, turn.action, step_index=index)
            messages.append({"role": "assistant", "content": turn.action})
            if not result.done:
                messages.append({"role": "user", "content": result.observation.text})
    expected = engine.tokenizer.apply_chat_template(messages, tokenize=False)
    assert engine.tokenizer.decode(list(trajectory.token_ids), skip_special_tokens=False) + "\n" == expected


async def test_turn_cap_and_trajectory_budget_hold(server, engine):
    policy = LMPolicy(engine, mode="free", sampling=Sampling(temperature=1.0))
    budget = Budget(turn_tokens=5, trajectory_tokens=400)
    spec = EpisodeSpec("babyai", TASK, seed=0, max_turns=50)
    trajectory = await _run(server, policy, spec, budget, sample_seed=3)
    assert all(t.tokens <= 5 for t in trajectory.turns)
    assert len(trajectory.token_ids) <= 400
    assert trajectory.status == "truncated" and trajectory.reason in ("token budget", "turn limit")
    assert any(t.cut for t in trajectory.turns)  # a random model rarely stops within 5 tokens


async def test_oracle_completes_and_shaping_is_applied(server):
    shaping = Shaping(success_weight=1.0, step_cost=0.01)
    trajectory = await _run(server, OraclePolicy(), shaping=shaping)
    assert trajectory.status == "completed" and trajectory.success
    assert trajectory.reward == pytest.approx(1.0 - 0.01 * len(trajectory.turns))
    assert trajectory.token_ids == () and trajectory.interface == "original"


async def test_random_policy_plays_until_the_turn_limit_or_the_end(server):
    trajectory = await _run(server, RandomPolicy(), EpisodeSpec("babyai", TASK, seed=0, max_turns=3), sample_seed=1)
    assert trajectory.status in ("completed", "truncated") and 1 <= len(trajectory.turns) <= 3


class _Broken:
    name = "broken"

    async def act(self, turn: Turn) -> str:
        raise RuntimeError("model endpoint said no")


async def test_a_policy_error_fails_the_episode_with_its_reason(server):
    trajectory = await _run(server, _Broken())
    assert trajectory.status == "failed" and "model endpoint said no" in trajectory.reason
    assert trajectory.reward == 0.0


async def test_an_unknown_task_is_a_failed_episode_not_an_exception(server):
    trajectory = await _run(server, OraclePolicy(), EpisodeSpec("babyai", "babyai/train/easy/NoSuchLevel-1", 0))
    assert trajectory.status == "failed" and trajectory.reason.startswith("rejected") and "NoSuchLevel" in trajectory.reason


def test_shaping_is_a_pure_function_of_the_episode():
    turns = (TurnRecord("a", True, 0.0), TurnRecord("b", False, 0.0), TurnRecord("c", False, 0.0))
    shaping = Shaping(success_weight=2.0, score_weight=0.5, step_cost=0.1, invalid_penalty=0.2,
                      truncation_penalty=1.0)
    assert shaping.reward(success=True, score=0.8, turns=turns, truncated=False) == pytest.approx(2 + 0.4 - 0.3 - 0.4)
    assert shaping.reward(success=False, score=0.0, turns=turns, truncated=True) == pytest.approx(-0.3 - 0.4 - 1.0)
    assert Shaping.from_env({"SHIFTGYM_SHAPING_STEP_COST": "0.05"}).step_cost == 0.05
    with pytest.raises(ValueError, match="not a number"):
        Shaping.from_env({"SHIFTGYM_SHAPING_STEP_COST": "lots"})
    with pytest.raises(ValueError, match="must be >= 0"):
        Shaping(step_cost=-1)


def test_budget_needs_the_turn_inside_the_trajectory():
    with pytest.raises(ValueError):
        Budget(turn_tokens=100, trajectory_tokens=50)
