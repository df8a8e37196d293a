"""The OpenRLHF bridge against OpenRLHF 0.11's own code: its agent loader, its sample-to-Experience conversion,
its micro-batching, its group_norm advantages and its PolicyLoss, with real env servers and a real (tiny) model.

vLLM cannot run here, so `FakeVLLMEngine` (tests/fakes) stands in for the engine OpenRLHF hands the executor; its
tokens and log-probs are the tiny model's own. OpenRLHF functions whose modules import vllm, ray or flash_attn at
the top are compiled from the installed files by tests/trainer/openrlhf_code.py, never re-implemented.
"""

from __future__ import annotations

import ast
import asyncio
import copy
import itertools
import json
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import List, Tuple

import pytest
import torch

from openrlhf.datasets import PromptDataset
from openrlhf.datasets.utils import blending_datasets
from openrlhf.trainer.ppo_utils import Experience, FixedKLController
from openrlhf.trainer.ppo_utils.length_penalty import apply_length_penalties
from openrlhf.utils.agent import AgentExecutorBase
from openrlhf.utils.logging_utils import init_logger
from openrlhf.utils.seqlen_balancing import (
    get_minimum_num_micro_batch_size,
    get_seqlen_balanced_partitions,
)

from tests.fakes.vllm_engine import FakeSamplingParams, FakeVLLMEngine
from tests.servers import ServerProcess
from tests.trainer import openrlhf_code
from trainer.datasets import EpisodeLabel, PromptCell, server_task_lister, write_prompts
from trainer.launch import AGENT_FILE, AgentConfig, LaunchConfig
from trainer.rl.losses import group_advantages, policy_loss

TASK = "babyai/train/easy/GoToRedBall-00003"
LISTED = [{"name": "action_list", "params": {"show": "every"}}]
MAX_LEN = 1024
REPO = Path(__file__).resolve().parents[2]

_models = openrlhf_code.load_module_without_package_init("openrlhf.models.utils")
log_probs_from_logits = _models.log_probs_from_logits
PolicyLoss = openrlhf_code.load_module_without_package_init("openrlhf.models.loss").PolicyLoss
load_agent_executor = openrlhf_code.load_function(
    "trainer/ray/vllm_engine.py", "_load_agent_executor", {"AgentExecutorBase": AgentExecutorBase})
process_response = openrlhf_code.load_function(
    "trainer/ppo_utils/samples_generator.py", "SamplesGenerator._process_response_into_experience",
    {"torch": torch, "Experience": Experience})
split_rollout_samples = openrlhf_code.load_function(
    "trainer/ppo_utils/experience_maker.py", "RemoteExperienceMaker.split_rollout_samples",
    {"Experience": Experience, "get_minimum_num_micro_batch_size": get_minimum_num_micro_batch_size,
     "get_seqlen_balanced_partitions": get_seqlen_balanced_partitions})
compute_advantages = openrlhf_code.load_function(
    "trainer/ppo_utils/experience_maker.py", "RemoteExperienceMaker.compute_advantages_and_returns",
    {"torch": torch, "itertools": itertools, "apply_length_penalties": apply_length_penalties, "List": List,
     "Experience": Experience, "compute_reward": _models.compute_reward, "logger": init_logger("openrlhf_code")})
cumulative_returns = openrlhf_code.load_function(
    "trainer/ppo_utils/experience_maker.py", "RemoteExperienceMaker.get_cumulative_returns",
    {"torch": torch, "Tuple": Tuple})


def stock_response_keys() -> set[str]:
    """The keys of the dict OpenRLHF's own MultiTurnAgentExecutor returns (read from its source)."""
    tree = ast.parse(openrlhf_code.source_path("utils/agent.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "final_response":
            return {key.value for key in node.value.keys}  # type: ignore[attr-defined]
    raise LookupError("final_response not found in openrlhf/utils/agent.py")


def openrlhf_args(**overrides):
    """train_ppo_ray's own parsed and checked args for a ShiftGym launch config (on one GPU)."""
    values = dict(prompt_dataset="prompts.jsonl", agent=AgentConfig(endpoints={"babyai": "127.0.0.1:1"}),
                  gpus_per_node=1, vllm_num_engines=1)
    config = LaunchConfig(**{**values, **overrides})
    code, out, args = openrlhf_code.run_train_ppo_ray_cli(config.argv())
    assert code == 0 and args is not None, out
    return args


def dispatch_params(**overrides) -> FakeSamplingParams:
    """The SamplingParams samples_generator._dispatch_prompts_to_vllm builds (max_new_tokens unset, IS off)."""
    values = dict(temperature=1.0, top_p=1.0, top_k=-1, max_tokens=None, min_tokens=1, skip_special_tokens=False,
                  logprobs=None)
    values.update(overrides)
    return FakeSamplingParams(**values)


def label(max_turns: int = 2, interface=LISTED) -> str:
    body = {"env": "babyai", "task_id": TASK, "seed": 0, "difficulty": "easy", "max_turns": max_turns}
    if interface is not None:
        body["interface"] = interface
    return json.dumps(body)


@pytest.fixture(scope="module")
def server(babyai_server):
    return babyai_server


@pytest.fixture(scope="module")
def engine(tiny_engine):
    return tiny_engine


@pytest.fixture
def agent_env(monkeypatch, server):
    for name in [n for n in os.environ if n.startswith("SHIFTGYM_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SHIFTGYM_ENDPOINTS_BABYAI", server.target)
    monkeypatch.setenv("SHIFTGYM_TURN_TOKENS", "6")
    return monkeypatch


async def play(executor, engine, fake, n: int, episode_label: str, **params) -> list[dict]:
    """n samples of one prompt, as RolloutRayActor.generate_responses asks for them."""
    return list(await asyncio.gather(*(
        executor.execute(prompt="[cell] prompt", label=episode_label, sampling_params=dispatch_params(**params),
                         max_length=MAX_LEN, hf_tokenizer=engine.tokenizer, llm_engine=fake)
        for _ in range(n))))


def teacher_forced(model, sequences: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Per-token log-probs (B, T-1) as OpenRLHF's Actor computes them on unpacked, left-padded batches
    (position ids from the attention mask; models/actor.py), with its own log_probs_from_logits."""
    position_ids = attention_mask.long().cumsum(-1) - 1
    position_ids.masked_fill_(attention_mask == 0, 1)
    logits = model(sequences, attention_mask=attention_mask, position_ids=position_ids).logits
    return log_probs_from_logits(logits[:, :-1, :].float(), sequences[:, 1:])


def test_openrlhf_loads_our_agent_file_like_any_agent_file(agent_env):
    executor = load_agent_executor(str(AGENT_FILE))
    assert isinstance(executor, AgentExecutorBase)
    assert type(executor).__module__ == "agent_module"  # loaded from the file, as OpenRLHF does
    assert executor.settings.endpoints == {"babyai": os.environ["SHIFTGYM_ENDPOINTS_BABYAI"]}
    assert executor.settings.turn_tokens == 6


async def test_samples_go_through_openrlhf_experience_advantages_and_one_policy_loss_step(agent_env, engine):
    executor = load_agent_executor(str(AGENT_FILE))
    fake = FakeVLLMEngine(engine)
    try:
        responses = await play(executor, engine, fake, 4, label(max_turns=2))
    finally:
        await executor.aclose()

    # The exact dict OpenRLHF's own executor returns; every turn sampled at most the per-turn cap.
    for response in responses:
        assert set(response) == stock_response_keys()
        assert response["extra_logs"]["env_failed"] == 0.0 and response["extra_logs"]["env_turns"] == 2.0
        assert len(response["action_ranges"]) == 2
        assert all(0 < end - start <= 6 for start, end in response["action_ranges"])
        assert len(response["rollout_log_probs"]) == len(response["observation_tokens"])
    assert fake.requests and all(params.max_tokens <= 6 and params.logprobs == 1 for _, params in fake.requests)
    assert len({tuple(r["observation_tokens"]) for r in responses}) > 1  # distinct samples of one prompt

    # OpenRLHF's conversion, then its micro-batching (left padding) and its group_norm advantages.
    experiences = [process_response(None, r, max_len=MAX_LEN) for r in responses]
    for experience, response in zip(experiences, responses):
        mask = torch.zeros(len(response["observation_tokens"]), dtype=torch.long)
        for start, end in response["action_ranges"]:
            mask[start:end] = 1
        assert torch.equal(experience.action_mask[0], mask[1:])
    rewards = [1.0, 0.0, 0.5, 0.0]  # the env's rewards are all 0 for an untrained model; these exercise the math
    for experience, reward in zip(experiences, rewards):
        experience.rewards = torch.tensor([reward])
    args = openrlhf_args(n_samples_per_prompt=4, rollout_batch_size=2, train_batch_size=8)
    maker = SimpleNamespace(args=args, strategy=SimpleNamespace(args=args), tokenizer=engine.tokenizer,
                            kl_ctl=FixedKLController(0.0), advantage_estimator=args.algo.advantage.estimator)
    maker.get_cumulative_returns = lambda *a: cumulative_returns(maker, *a)
    batches = split_rollout_samples(maker, experiences)
    assert [len(b.sequences) for b in batches] == [2, 2]
    for batch in batches:
        batch.kl = torch.zeros_like(batch.action_mask, dtype=torch.float)
    batches = compute_advantages(maker, batches)
    expected = group_advantages(rewards, 4)
    for i, (batch, row) in enumerate([(b, r) for b in batches for r in range(len(b.sequences))]):
        actions = batch.action_mask[row].bool()
        assert torch.allclose(batch.advantages[row][actions], torch.tensor(expected[i]), atol=1e-6)

    # One PolicyLoss step on the tiny model: the recomputed log-probs are the rollout ones, and the step raises
    # the surrogate (log-probs of positive-advantage actions up, negative ones down).
    model = copy.deepcopy(engine.model).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    loss_fn = PolicyLoss(clip_eps_low=0.2, clip_eps_high=0.2)
    before = []
    for batch in batches:
        log_probs = teacher_forced(model, batch.sequences, batch.attention_mask)
        mask = batch.action_mask.bool()
        assert torch.allclose(log_probs[mask], batch.rollout_log_probs[mask].float(), atol=1e-4)
        loss, *_ = loss_fn(log_probs, batch.rollout_log_probs.float(), batch.advantages, action_mask=batch.action_mask)
        assert torch.isfinite(loss)
        (loss / len(batches)).backward()
        before.append(log_probs.detach())
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads) and any(g.abs().sum() > 0 for g in grads)
    optimizer.step()
    with torch.no_grad():
        gain = sum(((teacher_forced(model, b.sequences, b.attention_mask) - old) * b.advantages * b.action_mask).sum()
                   for b, old in zip(batches, before))
    assert gain > 0


async def test_choice_mode_scores_valid_actions_through_prompt_logprobs(agent_env, engine):
    agent_env.setenv("SHIFTGYM_POLICY_MODE", "choice")
    agent_env.setenv("SHIFTGYM_TURN_TOKENS", "24")
    executor = load_agent_executor(str(AGENT_FILE))
    fake = FakeVLLMEngine(engine)
    try:
        (response,) = await play(executor, engine, fake, 1, label(max_turns=2))
    finally:
        await executor.aclose()
    assert response["extra_logs"]["env_invalid_actions"] == 0.0 and len(response["action_ranges"]) == 2
    assert all(params.prompt_logprobs == 1 for _, params in fake.requests)  # scored, never sampled
    experience = process_response(None, response, max_len=MAX_LEN)
    with torch.no_grad():
        forced = teacher_forced(engine.model, experience.sequences, experience.attention_mask)
    mask = experience.action_mask.bool()
    assert torch.allclose(forced[mask], experience.rollout_log_probs[mask].float(), atol=1e-4)


async def test_a_dead_env_server_gives_failed_samples_not_exceptions(agent_env, engine, caplog):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        target = f"127.0.0.1:{sock.getsockname()[1]}"
    agent_env.setenv("SHIFTGYM_ENDPOINTS_BABYAI", target)
    for name, value in (("CALL", "0.3"), ("TURN", "1.0"), ("EPISODE", "20")):
        agent_env.setenv(f"SHIFTGYM_{name}_TIMEOUT_S", value)
    executor = load_agent_executor(str(AGENT_FILE))
    fake = FakeVLLMEngine(engine)
    with caplog.at_level(logging.WARNING, logger="shiftgym.openrlhf_agent"):
        try:
            responses = await play(executor, engine, fake, 2, label())
            bad = await executor.execute("p", "not json", dispatch_params(), MAX_LEN, engine.tokenizer, fake)
            unknown = await executor.execute("p", json.dumps({"env": "webshop", "task_id": "x", "seed": 0}),
                                             dispatch_params(), MAX_LEN, engine.tokenizer, fake)
        finally:
            await executor.aclose()
    for response in [*responses, bad, unknown]:
        assert response["reward"] == 0.0 and response["scores"] == 0.0 and response["action_ranges"] == []
        assert response["extra_logs"]["env_failed"] == 1.0 and response["observation_tokens"]
        experience = process_response(None, response, max_len=MAX_LEN)
        assert experience.action_mask.sum() == 0 and experience.rewards.item() == 0.0
    assert responses[0]["extra_logs"]["env_attempts"] == 2.0  # no_pods is retryable: tried twice, then given up
    reasons = [r.reason for r in caplog.records if r.getMessage() == "episode failed"]
    assert any(r.startswith("no_pods") for r in reasons) and any(r.startswith("bad label") for r in reasons)
    assert any("SHIFTGYM_ENDPOINTS_WEBSHOP" in r for r in reasons)


async def test_a_server_killed_mid_episode_gives_a_failed_sample(agent_env, engine):
    with ServerProcess("babyai", "--log-level", "warning") as victim:
        agent_env.setenv("SHIFTGYM_ENDPOINTS_BABYAI", victim.target)
        for name, value in (("CALL", "0.5"), ("TURN", "1.5"), ("EPISODE", "30")):
            agent_env.setenv(f"SHIFTGYM_{name}_TIMEOUT_S", value)
        executor = load_agent_executor(str(AGENT_FILE))
        fake = FakeVLLMEngine(engine)

        class KillingEngine:  # SIGKILLs the env server once the policy has acted twice
            async def generate(self, prompt_token_ids, sampling_params, multi_modal_data=None):
                output = await fake.generate(prompt_token_ids, sampling_params, multi_modal_data)
                if len(fake.requests) == 2:
                    os.kill(victim.pid, signal.SIGKILL)
                    victim.wait()
                return output

        try:
            response = await executor.execute("p", label(max_turns=5), dispatch_params(), MAX_LEN, engine.tokenizer,
                                              KillingEngine())
        finally:
            await executor.aclose()
    assert response["extra_logs"]["env_failed"] == 1.0 and response["reward"] == 0.0
    assert response["extra_logs"]["env_attempts"] == 2.0  # pod_lost is retryable: played again, no pod left
    assert response["action_ranges"] == [] and response["observation_tokens"]
    assert len(fake.requests) == 2


def test_policy_loss_equals_openrlhf_policy_loss():
    generator = torch.Generator().manual_seed(0)
    for clip_low, clip_high in ((0.2, 0.2), (0.1, 0.3)):
        shape = (6, 40)
        old = -torch.rand(shape, generator=generator) * 3
        new = (old + torch.randn(shape, generator=generator) * 0.3).requires_grad_()
        advantages = torch.randn(shape, generator=generator)
        mask = (torch.rand(shape, generator=generator) > 0.3).float()
        ours = policy_loss(new, old, advantages, mask, clip_low=clip_low, clip_high=clip_high)
        (ours_grad,) = torch.autograd.grad(ours, new)
        theirs, *_ = PolicyLoss(clip_eps_low=clip_low, clip_eps_high=clip_high)(new, old, advantages, action_mask=mask)
        (theirs_grad,) = torch.autograd.grad(theirs, new)
        assert torch.allclose(ours, theirs, atol=1e-7) and torch.allclose(ours_grad, theirs_grad, atol=1e-9)


def test_group_advantages_equal_openrlhf_group_norm():
    rewards = [1.0, 0.0, 0.0, 1.0, 0.5, 0.5, 0.5, 0.5, -0.2, 1.0, 0.3, 0.0]
    args = openrlhf_args(n_samples_per_prompt=4, rollout_batch_size=3, train_batch_size=12)
    experiences = []
    for i, reward in enumerate(rewards):
        experiences.append(Experience(action_mask=torch.ones(1, 3, dtype=torch.long), rewards=torch.tensor([reward]),
                                      kl=torch.zeros(1, 3), index=[i], info={}))
    maker = SimpleNamespace(strategy=SimpleNamespace(args=args), kl_ctl=FixedKLController(0.0),
                            advantage_estimator="group_norm")
    maker.get_cumulative_returns = lambda *a: cumulative_returns(maker, *a)
    theirs = [e.advantages[0, 0].item() for e in compute_advantages(maker, experiences)]
    assert theirs == pytest.approx(group_advantages(rewards, 4), abs=1e-6)


def test_prompt_jsonl_loads_in_openrlhf_prompt_dataset(server, engine, tmp_path):
    cells = [PromptCell("babyai/easy/listed", "babyai", "train", "easy", (("action_list", {"show": "every"}),),
                        tasks=3, seeds=(0, 1)),
             PromptCell("babyai/easy/original", "babyai", "train", "easy", tasks=2)]
    path = tmp_path / "prompts.jsonl"
    count = write_prompts(path, cells, server_task_lister({"babyai": server.target}))
    assert count == 8
    args = openrlhf_args(prompt_dataset=str(path), max_samples=100)
    deepspeed_file = "utils/deepspeed/deepspeed.py"  # the strategy's own print and is_rank_0, on one process

    class Strategy:
        print = openrlhf_code.load_function(deepspeed_file, "DeepspeedStrategy.print", {})
        is_rank_0 = openrlhf_code.load_function(deepspeed_file, "DeepspeedStrategy.is_rank_0",
                                                {"dist": torch.distributed})

    strategy = Strategy()
    strategy.args = args
    data = blending_datasets(args.data.prompt_dataset, args.data.prompt_probs, strategy, args.train.seed,
                             max_count=args.data.max_samples, dataset_split=args.data.prompt_split)
    dataset = PromptDataset(data, engine.tokenizer, strategy, input_template=args.data.input_template)
    assert len(dataset) == 8
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    for i, line in enumerate(lines):
        assert dataset[i] == (line["datasource"], line["prompt"], line["label"], None)
    datasources, prompts, labels, _ = dataset.collate_fn([dataset[i] for i in range(len(dataset))])
    assert datasources.count("babyai/easy/listed") == 6 and len(set(prompts)) == 8
    first = EpisodeLabel.from_json(labels[0])
    assert first.env == "babyai" and first.difficulty == "easy" and first.interface == (("action_list",
                                                                                          {"show": "every"}),)
    assert EpisodeLabel.from_json(labels[-1]).interface == ()


def test_openrlhfs_top_level_tests_package_does_not_shadow_ours():
    """The openrlhf wheel installs a top-level `tests` package; the repository's must be the one imported."""
    import tests

    assert Path(tests.__file__).resolve().parent == REPO / "tests"
    paths = [Path(p or ".").resolve() for p in sys.path]
    installed = [i for i, p in enumerate(paths) if (p / "tests" / "__init__.py").exists() and p != REPO]
    if installed:
        assert paths.index(REPO) < min(installed), f"{paths[min(installed)]}/tests would shadow ours"


def test_the_dataset_command_writes_one_cell_from_a_server(server, tmp_path):
    from click.testing import CliRunner

    from trainer.datasets import main

    out = tmp_path / "cell.jsonl"
    result = CliRunner().invoke(main, [str(out), "--env", "babyai", "--endpoint", server.target, "--tasks", "2",
                                       "--seeds", "0,1", "--interface", "listed_actions"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 4 and {line["datasource"] for line in lines} == {"babyai/train/easy/listed_actions"}
    bad = CliRunner().invoke(main, [str(out), "--env", "babyai", "--endpoint", server.target, "--split", "nope"])
    assert bad.exit_code == 2 and "error:" in bad.output
