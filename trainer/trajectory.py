"""One episode as the learner sees it: token ids, which of them the policy sampled, their log-probs, the outcome.

Token fields stay empty for text-only policies (scripted, a served chat model): those episodes are evaluated,
never trained on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Status = Literal["completed", "truncated", "failed"]


@dataclass(frozen=True, slots=True)
class TurnRecord:
    action: str  # the policy's text, as sent to the environment
    valid: bool
    reward: float
    tokens: int = 0  # tokens the policy produced this turn
    cut: bool = False  # the per-turn token cap ended this action before the policy stopped


@dataclass(frozen=True, slots=True)
class Trajectory:
    env: str
    task_id: str
    seed: int
    interface: str
    status: Status
    reason: str = ""  # why a failed episode failed, or what ended a truncated one
    retryable: bool = False  # a failed episode that may succeed when played again from Reset (a lost pod)
    success: bool = False
    score: float = 0.0
    reward: float = 0.0  # the shaped scalar the learner optimises
    turns: tuple[TurnRecord, ...] = ()
    # Token view (token policies only). `action_ranges` are [start, end) spans of sampled tokens; everything
    # else (observations, chat-template glue) is masked. `log_probs` has one entry per token, 0.0 off-action.
    token_ids: tuple[int, ...] = ()
    action_ranges: tuple[tuple[int, int], ...] = ()
    log_probs: tuple[float, ...] = ()
    pod: str = ""
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def truncated(self) -> bool:
        return self.status == "truncated"

    @property
    def invalid_actions(self) -> int:
        return sum(not t.valid for t in self.turns)

    def action_mask(self) -> list[int]:
        """1 for every token the policy sampled, 0 elsewhere; aligned with token_ids."""
        mask = [0] * len(self.token_ids)
        for start, end in self.action_ranges:
            mask[start:end] = [1] * (end - start)
        return mask
