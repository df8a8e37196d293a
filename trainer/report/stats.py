"""Per-cell statistics from the trajectory records in the results store."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

from trainer.report.failures import Episode, primary
from trainer.report.metrics import Interval, avg_at_k, bootstrap_ci, mean, pass_at_k


@dataclass(frozen=True)
class CellStats:
    episodes: int
    tasks: int
    k: int  # samples per task (the smallest group, for pass@k)
    avg: Interval  # avg@k with its 95% CI
    pass_k: Interval
    score: float
    turns: float
    policy_tokens: float  # tokens the policy produced per trajectory (0 for scripted policies)
    invalid_rate: float  # invalid actions / actions
    truncation_rate: float
    failed_rate: float
    failure_modes: Counter = field(default_factory=Counter)  # primary tag -> count (unsuccessful trajectories)

    def as_dict(self) -> dict[str, Any]:
        return {"episodes": self.episodes, "tasks": self.tasks, "k": self.k,
                "avg": [self.avg.value, self.avg.low, self.avg.high],
                "pass_at_k": [self.pass_k.value, self.pass_k.low, self.pass_k.high], "score": self.score,
                "turns": self.turns, "policy_tokens": self.policy_tokens, "invalid_rate": self.invalid_rate,
                "truncation_rate": self.truncation_rate, "failed_rate": self.failed_rate,
                "failure_modes": dict(self.failure_modes)}


def groups_by_task(records: Sequence[dict[str, Any]], key: str = "success") -> list[list[float]]:
    groups: dict[str, list[float]] = {}
    for r in records:
        groups.setdefault(r["task_id"], []).append(float(r[key]))
    return [groups[t] for t in sorted(groups)]


def cell_stats(env: str, records: Sequence[dict[str, Any]]) -> CellStats:
    if not records:
        empty = Interval(0.0, 0.0, 0.0)
        return CellStats(0, 0, 0, empty, empty, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    groups = groups_by_task(records)
    k = min(len(g) for g in groups)
    actions = sum(r["turns"] for r in records)
    modes: Counter = Counter()
    for r in records:
        tag = primary(Episode(env, r["status"], r["success"], r["actions"], r["valid"]))
        if tag:
            modes[tag] += 1
    n = len(records)
    return CellStats(
        episodes=n, tasks=len(groups), k=k,
        avg=bootstrap_ci(groups, lambda gs: avg_at_k(gs)),
        pass_k=bootstrap_ci(groups, lambda gs: pass_at_k(gs, k)),
        score=mean([r["score"] for r in records]),
        turns=mean([r["turns"] for r in records]),
        policy_tokens=mean([r["policy_tokens"] for r in records]),
        invalid_rate=sum(r["invalid"] for r in records) / actions if actions else 0.0,
        truncation_rate=sum(r["status"] == "truncated" for r in records) / n,
        failed_rate=sum(r["status"] == "failed" for r in records) / n,
        failure_modes=modes,
    )
