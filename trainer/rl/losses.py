"""GRPO's pieces on CPU torch: group-normalised advantages, the clipped policy loss, the k3 KL estimate.

They follow OpenRLHF 0.11 (`group_norm` advantages, PolicyLoss with token-level aggregation) so a policy
trained here and one trained by `train_ppo_ray` optimise the same objective; tests/trainer/test_losses.py
checks equality against OpenRLHF's own PolicyLoss.
"""

from __future__ import annotations

from typing import Sequence

import torch


def group_advantages(rewards: Sequence[float], group_size: int) -> list[float]:
    """(r - mean) / (std + 1e-9) within each consecutive group of `group_size` samples of one task."""
    if group_size < 2 or len(rewards) % group_size:
        raise ValueError(f"{len(rewards)} rewards do not split into groups of {group_size} (need >= 2 per group)")
    grouped = torch.tensor(rewards, dtype=torch.float32).reshape(-1, group_size)
    normalised = (grouped - grouped.mean(-1, keepdim=True)) / (grouped.std(-1, keepdim=True) + 1e-9)
    return normalised.reshape(-1).tolist()


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (values * mask).sum() / mask.sum()


def policy_loss(log_probs: torch.Tensor, old_log_probs: torch.Tensor, advantages: torch.Tensor,
                action_mask: torch.Tensor, clip_low: float = 0.2, clip_high: float = 0.2) -> torch.Tensor:
    """PPO's clipped surrogate, averaged over every action token of the batch."""
    ratio = (log_probs - old_log_probs).clamp(-20.0, 20.0).exp()
    unclipped = ratio * advantages
    clipped = ratio.clamp(1 - clip_low, 1 + clip_high) * advantages
    return masked_mean(-torch.min(unclipped, clipped), action_mask)


def kl_k3(log_probs: torch.Tensor, ref_log_probs: torch.Tensor, action_mask: torch.Tensor) -> torch.Tensor:
    """Schulman's k3 estimate of KL(policy || reference), averaged over action tokens."""
    log_ratio = (ref_log_probs - log_probs).clamp(-10.0, 10.0)
    return masked_mean(log_ratio.exp() - 1 - log_ratio, action_mask)
