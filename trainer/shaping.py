"""Reward shaping: one scalar per trajectory, a pure function of the episode and a few weights."""

from __future__ import annotations

from dataclasses import dataclass

from trainer.trajectory import TurnRecord


@dataclass(frozen=True, slots=True)
class Shaping:
    """reward = success_weight*success + score_weight*score - step_cost*turns - invalid_penalty*invalid
    - truncation_penalty*[truncated]. The defaults reward success alone, as the study does."""

    success_weight: float = 1.0
    score_weight: float = 0.0
    step_cost: float = 0.0
    invalid_penalty: float = 0.0
    truncation_penalty: float = 0.0

    def __post_init__(self) -> None:
        for name in ("step_cost", "invalid_penalty", "truncation_penalty"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 (it is subtracted), got {getattr(self, name)}")

    def reward(self, *, success: bool, score: float, turns: tuple[TurnRecord, ...], truncated: bool) -> float:
        invalid = sum(not t.valid for t in turns)
        return (
            self.success_weight * float(success)
            + self.score_weight * score
            - self.step_cost * len(turns)
            - self.invalid_penalty * invalid
            - self.truncation_penalty * float(truncated)
        )

    @classmethod
    def from_env(cls, environ: dict[str, str], prefix: str = "SHIFTGYM_SHAPING_") -> "Shaping":
        """Weights from variables such as SHIFTGYM_SHAPING_STEP_COST=0.01 (unset ones keep their defaults)."""
        values = {}
        for name in cls.__dataclass_fields__:
            raw = environ.get(prefix + name.upper())
            if raw is not None:
                try:
                    values[name] = float(raw)
                except ValueError:
                    raise ValueError(f"{prefix + name.upper()}={raw!r} is not a number") from None
        return cls(**values)
