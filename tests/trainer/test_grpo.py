"""The CPU GRPO driver against a real BabyAI server: a step updates the weights from grouped rollouts, a batch
whose groups all agree changes nothing, and `shiftgym train` saves a checkpoint that loads back."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from env_server.runtime import Limits
from tests.servers import ServerThread
from trainer.cli import main as cli
from trainer.client.pool import EnvPool
from trainer.episodes import Budget, EpisodeRunner, EpisodeSpec
from trainer.policies.hf import HFEngine
from trainer.rl.grpo import GRPOConfig, GRPOTrainer
from trainer.trajectory import Trajectory

TASKS = [f"babyai/train/easy/GoToRedBall-0000{i}" for i in range(2)]


@pytest.fixture(scope="module")
def server():
    with ServerThread("babyai", Limits(enable_oracle=True)) as running:
        yield running


def _weights(model) -> torch.Tensor:
    return torch.cat([p.detach().flatten().clone() for p in model.parameters()])


async def test_a_step_learns_from_grouped_rollouts(server, tiny_model_dir):
    engine = HFEngine.from_pretrained(str(tiny_model_dir))
    async with EnvPool([server.target], env="babyai") as pool:
        runner = EpisodeRunner(pool, budget=Budget(turn_tokens=32, trajectory_tokens=2048))
        trainer = GRPOTrainer(engine.model, engine.tokenizer, runner, GRPOConfig(group_size=4, seed=1))
        specs = [EpisodeSpec("babyai", t, seed=0, max_turns=6) for t in TASKS]
        before = _weights(trainer.model)
        trajectories = await trainer.rollouts(specs)
        assert len(trajectories) == 8 and all(t.status != "failed" for t in trajectories)
        assert [t.task_id for t in trajectories] == [TASKS[0]] * 4 + [TASKS[1]] * 4
        # Rewards of a random tiny model may all agree; give one group a spread so there is something to learn.
        rewards = [1.0, 0.0, 0.0, 0.0, *[t.reward for t in trajectories[4:]]]
        graded = [_with_reward(t, r) for t, r in zip(trajectories, rewards)]
        loss, _, tokens = trainer.update(graded)
        assert tokens > 0  # the loss value itself may be 0 on-policy (advantages sum to 0); its gradient is not
        assert not torch.equal(before, _weights(trainer.model))
        stats = await trainer.step(specs)
        assert stats.step == 1 and stats.trajectories == 8 and stats.failed == 0
    engine.close()


async def test_groups_that_agree_change_nothing(server, tiny_model_dir):
    engine = HFEngine.from_pretrained(str(tiny_model_dir))
    async with EnvPool([server.target], env="babyai") as pool:
        trainer = GRPOTrainer(engine.model, engine.tokenizer, EpisodeRunner(pool), GRPOConfig(group_size=2))
        trajectories = await trainer.rollouts([EpisodeSpec("babyai", TASKS[0], seed=0, max_turns=3)])
        before = _weights(trainer.model)
        assert trainer.update([_with_reward(t, 0.5) for t in trajectories]) == (0.0, 0.0, 0)
        assert torch.equal(before, _weights(trainer.model))
    engine.close()


def test_grpo_config_rejects_a_group_of_one():
    with pytest.raises(ValueError, match="group_size"):
        GRPOConfig(group_size=1)


def test_train_command_saves_a_checkpoint_that_loads(server, tiny_model_dir, tmp_path):
    out = tmp_path / "trained"
    result = CliRunner().invoke(cli, [
        "train", "--model", str(tiny_model_dir), "--out", str(out), "--env", "babyai", "--endpoints", server.target,
        "--steps", "1", "--tasks-per-step", "2", "--group-size", "2", "--max-turns", "3",
    ])
    assert result.exit_code == 0, result.output
    assert "step    1" in result.output
    reloaded = HFEngine.from_pretrained(str(out))
    assert reloaded.model.config.model_type == "qwen2"
    reloaded.close()


def test_train_command_reports_bad_settings_in_one_line(tiny_model_dir, tmp_path):
    result = CliRunner().invoke(cli, [
        "train", "--model", str(tiny_model_dir), "--out", str(tmp_path / "x"), "--env", "babyai",
        "--endpoints", "127.0.0.1:1", "--group-size", "1",
    ])
    assert result.exit_code != 0 and "group_size must be >= 2" in result.output
    assert "Traceback" not in result.output


def _with_reward(trajectory: Trajectory, reward: float) -> Trajectory:
    from dataclasses import replace

    return replace(trajectory, reward=reward)
