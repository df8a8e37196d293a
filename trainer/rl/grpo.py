"""GRPO on CPU: rollouts from env servers through the episode runner, group-normalised advantages, the
clipped policy loss (and an optional KL to the starting policy), on a transformers model.

The same objective OpenRLHF's `train_ppo_ray` optimises with `group_norm` on GPUs, small enough to learn on a
laptop: rollouts and updates alternate, so the rollout engine always samples from the current weights.
"""

from __future__ import annotations

import asyncio
import copy
import random
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from trainer.episodes import EpisodeRunner, EpisodeSpec
from trainer.policies.base import Sampling
from trainer.policies.hf import HFEngine
from trainer.policies.lm import LMPolicy, Mode
from trainer.rl.losses import group_advantages, kl_k3, policy_loss
from trainer.trajectory import Trajectory


@dataclass(frozen=True, slots=True)
class GRPOConfig:
    group_size: int = 8  # samples per task; advantages are normalised within each group
    lr: float = 1e-3
    clip_low: float = 0.2
    clip_high: float = 0.2
    kl_coef: float = 0.0  # > 0 keeps a frozen copy of the starting policy as the KL reference
    epochs: int = 1  # passes over each batch of rollouts
    micro_batch: int = 16  # trajectories per forward pass
    max_grad_norm: float = 1.0
    temperature: float = 1.0
    mode: Mode = "choice"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.group_size < 2:
            raise ValueError("group_size must be >= 2: a group of one has no advantage")
        if self.lr <= 0 or self.epochs < 1 or self.micro_batch < 1:
            raise ValueError(f"bad GRPO settings: {self}")


@dataclass(frozen=True, slots=True)
class StepStats:
    step: int
    success: float  # mean success of this step's rollouts
    reward: float
    loss: float
    kl: float
    trajectories: int
    failed: int
    action_tokens: int


class GRPOTrainer:
    def __init__(self, model: Any, tokenizer: Any, runner: EpisodeRunner, config: GRPOConfig = GRPOConfig()) -> None:
        torch.manual_seed(config.seed)
        self.model = model
        self.config = config
        self.runner = runner
        self.engine = HFEngine(model, tokenizer)
        self.policy = LMPolicy(self.engine, mode=config.mode, sampling=Sampling(temperature=config.temperature))
        self.reference = copy.deepcopy(model).eval() if config.kl_coef > 0 else None
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
        self.steps = 0
        self._rng = random.Random(config.seed)

    async def rollouts(self, specs: Sequence[EpisodeSpec]) -> list[Trajectory]:
        """`group_size` samples of every spec, grouped consecutively."""
        self.model.eval()
        seeds = [self._rng.getrandbits(63) for _ in range(len(specs) * self.config.group_size)]
        runs = [self.runner.run(spec, self.policy, sample_seed=seeds[i * self.config.group_size + j])
                for i, spec in enumerate(specs) for j in range(self.config.group_size)]
        return list(await asyncio.gather(*runs))

    async def step(self, specs: Sequence[EpisodeSpec]) -> StepStats:
        trajectories = await self.rollouts(specs)
        loss, kl, tokens = await asyncio.to_thread(self.update, trajectories)
        self.engine.weights_changed()
        self.steps += 1
        return StepStats(
            step=self.steps,
            success=sum(t.success for t in trajectories) / len(trajectories),
            reward=sum(t.reward for t in trajectories) / len(trajectories),
            loss=loss, kl=kl, trajectories=len(trajectories),
            failed=sum(t.status == "failed" for t in trajectories), action_tokens=tokens,
        )

    def update(self, trajectories: Sequence[Trajectory]) -> tuple[float, float, int]:
        """One GRPO update on a batch of grouped trajectories; returns (loss, kl, action tokens)."""
        advantages = group_advantages([t.reward for t in trajectories], self.config.group_size)
        batch = [(t, a) for t, a in zip(trajectories, advantages) if t.action_ranges and a != 0.0]
        if not batch:
            return 0.0, 0.0, 0  # every group agreed: nothing to learn from this batch
        total_tokens = sum(sum(t.action_mask()) for t, _ in batch)
        self.model.train()
        loss_sum = kl_sum = 0.0
        for _ in range(self.config.epochs):
            self.optimizer.zero_grad()
            for start in range(0, len(batch), self.config.micro_batch):
                loss, kl = self._micro_batch_loss(batch[start: start + self.config.micro_batch], total_tokens)
                loss.backward()
                loss_sum += float(loss.detach())
                kl_sum += kl
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.max_grad_norm)
            self.optimizer.step()
        self.model.eval()
        return loss_sum / self.config.epochs, kl_sum / self.config.epochs, total_tokens

    def _micro_batch_loss(self, batch: Sequence[tuple[Trajectory, float]], total_tokens: int) -> tuple[torch.Tensor, float]:
        ids, attention, action_mask, old, advantages = _pack(batch)
        log_probs = token_log_probs(self.model, ids, attention, self.config.temperature)
        # Token-level mean over the whole batch: weight each micro-batch by its share of action tokens.
        share = action_mask.sum() / total_tokens
        loss = policy_loss(log_probs, old, advantages, action_mask, self.config.clip_low, self.config.clip_high)
        kl_value = 0.0
        if self.reference is not None:
            with torch.no_grad():
                ref = token_log_probs(self.reference, ids, attention, self.config.temperature)
            kl = kl_k3(log_probs, ref, action_mask)
            loss = loss + self.config.kl_coef * kl
            kl_value = float(kl) * float(share)
        return loss * share, kl_value


def token_log_probs(model: Any, ids: torch.Tensor, attention: torch.Tensor, temperature: float) -> torch.Tensor:
    """log p(token_t | tokens_<t) for t >= 1, shape (batch, length - 1): position t-1 scores token t."""
    logits = model(input_ids=ids, attention_mask=attention).logits[:, :-1].float() / temperature
    return torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)


def _pack(batch: Sequence[tuple[Trajectory, float]]) -> tuple[torch.Tensor, ...]:
    """Right-padded tensors, shifted like OpenRLHF's: index t-1 of the masks and log-probs is token t."""
    width = max(len(t.token_ids) for t, _ in batch)
    ids = torch.zeros((len(batch), width), dtype=torch.long)
    attention = torch.zeros_like(ids)
    action_mask = torch.zeros((len(batch), width - 1))
    old = torch.zeros((len(batch), width - 1))
    advantages = torch.zeros((len(batch), 1))
    for row, (trajectory, advantage) in enumerate(batch):
        n = len(trajectory.token_ids)
        ids[row, :n] = torch.tensor(trajectory.token_ids)
        attention[row, :n] = 1
        action_mask[row, : n - 1] = torch.tensor(trajectory.action_mask()[1:], dtype=torch.float32)
        old[row, : n - 1] = torch.tensor(trajectory.log_probs[1:])
        advantages[row] = advantage
    return ids, attention, action_mask, old, advantages
