"""A trajectory as the results store keeps it: outcome, counts and the actions (for failure tags), no token ids."""

from __future__ import annotations

from typing import Any

from trainer.trajectory import Trajectory

MAX_ACTIONS = 64  # the last ones are kept: the failure rules read the end of an episode
MAX_ACTION_CHARS = 200


def record(trajectory: Trajectory, sample: int) -> dict[str, Any]:
    turns = trajectory.turns[-MAX_ACTIONS:]
    return {
        "task_id": trajectory.task_id,
        "sample": sample,
        "seed": trajectory.seed,
        "interface": trajectory.interface,
        "status": trajectory.status,
        "reason": trajectory.reason,
        "success": bool(trajectory.success),
        "score": float(trajectory.score),
        "reward": float(trajectory.reward),
        "turns": len(trajectory.turns),
        "invalid": trajectory.invalid_actions,
        "policy_tokens": sum(t.tokens for t in trajectory.turns),
        "trajectory_tokens": len(trajectory.token_ids),
        "cut_turns": sum(t.cut for t in trajectory.turns),
        "actions": [t.action[:MAX_ACTION_CHARS] for t in turns],
        "valid": [bool(t.valid) for t in turns],
    }
