"""Behaviour cloning against a real BabyAI server: the teacher's trajectories are assembled as the RL path assembles
them, the SFT loss is cross-entropy over the action tokens alone, and `warm_start` saves a checkpoint RL loads."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from transformers import AutoModelForCausalLM, AutoTokenizer

from env_server import registry
from env_server.runtime import Limits
from tests.servers import ServerThread
from trainer.bc_dataset import pick_tasks, read_task_ids
from trainer.chat import ChatGlue
from trainer.cli import main as cli
from trainer.client.pool import EnvPool
from trainer.policies.hf import HFEngine
from trainer.rl.grpo import _pack
from trainer.rl.sft import (SFTConfig, SFTTrainer, masked_cross_entropy, oracle_demonstrations, pack, sft_loss,
                            warm_start)

# GoToLocal-00002 takes two turns (a turn, then "go to ..."), so the mask has a masked observation between actions.
TASKS = ["babyai/train/easy/GoToLocal-00002", "babyai/train/easy/GoToLocal-00000"]


@pytest.fixture(scope="module")
def server():
    with ServerThread("babyai", Limits(enable_oracle=True)) as running:
        yield running


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return AutoTokenizer.from_pretrained(str(tiny_model_dir))


@pytest.fixture
def model(tiny_model_dir):
    return AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)


async def _demos(server, tokenizer, tasks=TASKS):
    listed = {t.task_id: t for t in registry.load("babyai").tasks("train", "easy")}
    async with EnvPool([server.target], env="babyai") as pool:
        demos, lost = await oracle_demonstrations(pool, "babyai", [(listed[t], 0) for t in tasks], tokenizer,
                                                  max_turns=10)
    assert not lost and [d.trajectory.task_id for d in demos] == list(tasks)
    return demos


async def test_teacher_trajectories_are_the_rl_assembly_with_only_actions_unmasked(server, tokenizer):
    demos = await _demos(server, tokenizer)
    glue = ChatGlue(tokenizer)
    for demo in demos:
        trajectory, messages = demo.trajectory, demo.demonstration.messages
        actions = [m.content for m in messages if m.role == "assistant"]
        observations = [m.content for m in messages if m.role == "user"]
        assert len(actions) == len(trajectory.turns) == len(trajectory.action_ranges) >= 1
        # The token sequence is ChatGlue's: first prompt, then per turn the action's tokens and the stop token,
        # then the glue and the next observation, exactly what choice mode samples and GRPO trains on.
        expected: list[int] = glue.first_prompt(observations[0])
        for i, action in enumerate(actions):
            action_ids = [*glue.encode(action), glue.stop_id]
            assert trajectory.action_ranges[i] == (len(expected), len(expected) + len(action_ids))
            expected += action_ids
            if i + 1 < len(actions):
                expected += glue.next_prompt(action_ids, observations[i + 1])
        assert list(trajectory.token_ids) == expected
        mask = trajectory.action_mask()
        unmasked = tokenizer.decode([t for t, m in zip(trajectory.token_ids, mask) if m])
        assert unmasked == "".join(a + "<|im_end|>" for a in actions)
        masked = tokenizer.decode([t for t, m in zip(trajectory.token_ids, mask) if not m])
        assert all(o in masked for o in observations) and not any(a in unmasked for a in observations)
        # The SFT mask is GRPO's, shifted the same way (index t-1 marks token t).
        _, _, rl_mask, _, _ = _pack([(trajectory, 1.0)])
        assert torch.equal(pack([trajectory])[2], rl_mask)
        assert rl_mask[0].tolist() == [float(m) for m in mask[1:]]


async def test_sft_loss_is_cross_entropy_over_the_action_tokens_alone(server, tokenizer, model):
    demos = await _demos(server, tokenizer)
    trajectories = [d.trajectory for d in demos]
    assert len({len(t.token_ids) for t in trajectories}) == 2  # so one row is padded
    with torch.no_grad():
        loss = sft_loss(model, trajectories)
        # By hand, one trajectory at a time, no padding: token t scored from position t-1 wherever t is an action.
        logits, targets = [], []
        for trajectory in trajectories:
            ids = torch.tensor([trajectory.token_ids])
            out = model(input_ids=ids).logits[0]
            positions = [t for start, end in trajectory.action_ranges for t in range(start, end)]
            logits.append(out[[t - 1 for t in positions]])
            targets.append(ids[0, positions])
        manual = F.cross_entropy(torch.cat(logits), torch.cat(targets))
    assert torch.allclose(loss, manual, atol=1e-5), (float(loss), float(manual))


def test_labels_outside_the_action_mask_change_neither_loss_nor_gradient():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 12, 50, generator=generator, requires_grad=True)
    labels = torch.randint(0, 50, (2, 12), generator=generator)
    mask = torch.zeros(2, 12)
    mask[0, 3:6] = 1
    mask[1, 8:11] = 1
    loss = masked_cross_entropy(logits, labels, mask)
    (grad,) = torch.autograd.grad(loss, logits)
    relabelled = torch.where(mask.bool(), labels, (labels + 7) % 50)  # every observation label changed
    loss2 = masked_cross_entropy(logits, relabelled, mask)
    (grad2,) = torch.autograd.grad(loss2, logits)
    assert torch.equal(loss, loss2) and torch.equal(grad, grad2)
    assert grad[mask == 0].abs().sum() == 0  # masked positions' logits get no gradient at all
    action_changed = labels.clone()
    action_changed[0, 4] = (labels[0, 4] + 1) % 50
    assert not torch.equal(masked_cross_entropy(logits, action_changed, mask), loss)
    manual = F.cross_entropy(logits[mask.bool()], labels[mask.bool()])
    assert torch.allclose(loss, manual)


async def test_an_sft_epoch_lowers_the_loss_on_the_demonstrations(server, tokenizer, model):
    trajectories = [d.trajectory for d in await _demos(server, tokenizer)]
    with torch.no_grad():
        before = float(sft_loss(model, trajectories))
    trainer = SFTTrainer(model, SFTConfig(lr=1e-2, epochs=1, batch_size=1))
    for _ in range(3):
        trainer.epoch(trajectories)
    with torch.no_grad():
        assert float(sft_loss(model, trajectories)) < before


def test_the_cosine_schedule_warms_up_peaks_and_decays_to_zero_while_constant_stays_flat():
    cosine = SFTConfig(lr=1e-3, epochs=4, schedule="cosine", warmup_frac=0.1)
    factors = [cosine.lr_factor(step, 100) for step in range(100)]
    warmup, decay = factors[:10], factors[10:]
    assert all(a < b for a, b in zip(warmup, warmup[1:])) and warmup[-1] < 1.0
    assert decay[0] == 1.0 and all(a > b for a, b in zip(decay, decay[1:])) and decay[-1] < 0.001
    assert {SFTConfig().lr_factor(step, 100) for step in range(100)} == {1.0}  # the old behaviour, by default


@pytest.mark.parametrize("settings", [{"schedule": "linear"}, {"warmup_frac": 1.0}, {"warmup_frac": -0.1}])
def test_a_bad_sft_schedule_is_refused(settings):
    with pytest.raises(ValueError, match="schedule"):
        SFTConfig(**settings)


async def test_the_trainer_follows_the_schedule_over_its_epochs(server, tokenizer, model):
    trajectories = [d.trajectory for d in await _demos(server, tokenizer)]
    config = SFTConfig(lr=1e-2, epochs=2, batch_size=1, schedule="cosine", warmup_frac=0.25)
    trainer = SFTTrainer(model, config)
    applied = []
    for _ in range(2):
        trainer.epoch(trajectories)  # two batches of one: steps 0-1, then 2-3
        applied.append(trainer.optimizer.param_groups[0]["lr"])
    assert trainer.steps == 4
    assert applied == [pytest.approx(1e-2 * config.lr_factor(step, 4)) for step in (1, 3)]
    assert applied[1] < applied[0]


def test_warm_start_saves_a_checkpoint_rl_loads_and_keeps_held_out_tasks_out(server, tiny_model_dir, tmp_path):
    train = registry.load("babyai").tasks("train", "easy")
    held_out = {t.task_id for t in pick_tasks(train, 3, seed=0, match="GoToLocal")}  # same split: must be skipped
    out = warm_start(tiny_model_dir, tmp_path / "warm", {"babyai": server.target}, ["babyai"], episodes=4, seed=0,
                     match="GoToLocal", exclude=held_out, max_turns=10, config=SFTConfig(epochs=2, batch_size=2))
    summary = json.loads((out / "shiftgym_warm_start.json").read_text())
    assert summary["demonstrations"] == 4 and len(summary["losses"]) == 2 and summary["action_tokens"] > 0
    used = read_task_ids(out / "bc_data.tasks.json")
    assert len(used) == 4 and not used & held_out and all("/train/easy/GoToLocal-" in t for t in used)
    lines = (out / "bc_data.jsonl").read_text().splitlines()
    assert {json.loads(line)["task_id"] for line in lines} == used
    engine = HFEngine.from_pretrained(str(out))  # the RL stages' loader
    before = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    assert not torch.equal(engine.model.model.embed_tokens.weight, before.model.embed_tokens.weight)
    engine.close()


def test_warm_start_from_a_server_without_the_oracle_says_so_in_one_line(tiny_model_dir, tmp_path):
    with ServerThread("babyai", Limits(enable_oracle=False)) as plain:
        result = CliRunner().invoke(cli, ["warm-start", "--model", str(tiny_model_dir), "--out", str(tmp_path / "w"),
                                          "--endpoint", f"babyai={plain.target}", "--episodes", "2",
                                          "--match", "GoToLocal"])
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "--enable-oracle" in result.stderr


@pytest.mark.parametrize("args, says", [
    (["--endpoint", "babyai"], "ENV=host:port"),
    (["--endpoint", "babyai=127.0.0.1:1", "--episodes", "0"], "--episodes >= 1"),
    (["--endpoint", "babyai=127.0.0.1:1", "--epochs", "0"], "bad SFT settings"),
    (["--endpoint", "babyai=127.0.0.1:1", "--warmup", "1.5"], "bad SFT schedule"),
])
def test_bad_warm_start_arguments_are_one_line_errors(tiny_model_dir, tmp_path, args, says):
    result = CliRunner().invoke(cli, ["warm-start", "--model", str(tiny_model_dir), "--out", str(tmp_path / "w"),
                                      *args])
    assert result.exit_code == 1 and says in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
