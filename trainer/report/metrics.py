"""The report's numbers: avg@k, unbiased pass@k, bootstrap confidence intervals, transfer, forgetting.

Pure functions over plain numbers, so every one of them can be checked against a hand-computed case
(tests/trainer/test_metrics.py). Definitions:

- avg@k: the mean success over every sampled trajectory (n tasks x k samples each).
- pass@k: the unbiased estimator of Chen et al. (2021), per task 1 - C(n - c, k) / C(n, k) with n samples of
  which c succeeded, averaged over tasks. With exactly k samples per task it is the share of tasks solved at least
  once.
- 95% confidence intervals: a percentile bootstrap that resamples *tasks* (a task's k samples stay together, as
  they are not independent), 1000 resamples from a fixed seed, so a rebuilt report prints the same intervals.
- Transfer matrix delta: success after training on env A, tested on env B, minus the base policy's on B.
- Sequential runs (R[j][i]: success on the i-th env of the order after the j-th stage, base[i] before any):
  backward transfer BWT = mean over i < T of (R[T][i] - R[i][i]) (negative = forgetting);
  forgetting of env i = max over j in [i, T) of R[j][i], minus R[T][i] (>= 0; Chaudhry et al. 2018);
  forward transfer FWT = mean over i > 1 of (R[i-1][i] - base[i]): zero-shot gain on the next env from what was
  trained before it (Lopez-Paz & Ranzato 2017).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0


def avg_at_k(groups: Sequence[Sequence[bool]]) -> float:
    """Mean success over all samples of all tasks (groups: one list of sample outcomes per task)."""
    samples = [s for g in groups for s in g]
    return sum(samples) / len(samples) if samples else 0.0


def pass_at_k_task(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one task with n samples, c of them successful: 1 - C(n-c, k) / C(n, k)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def pass_at_k(groups: Sequence[Sequence[bool]], k: int) -> float:
    """pass@k averaged over tasks; every task needs at least k samples."""
    if not groups:
        return 0.0
    return sum(pass_at_k_task(len(g), sum(1 for s in g if s), k) for g in groups) / len(groups)


@dataclass(frozen=True, slots=True)
class Interval:
    value: float
    low: float
    high: float

    def fmt(self, percent: bool = True) -> str:
        if percent:
            return f"{100 * self.value:.1f} [{100 * self.low:.1f}, {100 * self.high:.1f}]"
        return f"{self.value:.2f} [{self.low:.2f}, {self.high:.2f}]"


def bootstrap_ci(groups: Sequence[Sequence[float]], statistic: Callable[[Sequence[Sequence[float]]], float], *,
                 resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED, level: float = 0.95) -> Interval:
    """The statistic on the groups and its percentile bootstrap interval, resampling groups (tasks)."""
    value = statistic(groups)
    if len(groups) < 2:
        return Interval(value, value, value)
    rng = random.Random(seed)
    n = len(groups)
    stats = sorted(statistic([groups[rng.randrange(n)] for _ in range(n)]) for _ in range(resamples))
    tail = (1 - level) / 2
    low = stats[int(math.floor(tail * (resamples - 1)))]
    high = stats[int(math.ceil((1 - tail) * (resamples - 1)))]
    return Interval(value, low, high)


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def transfer_deltas(matrix: Mapping[str, Mapping[str, float]],
                    base: Mapping[str, float]) -> dict[str, dict[str, float]]:
    """matrix[train][test] - base[test], for every cell whose test env has a base value."""
    return {train: {test: value - base[test] for test, value in row.items() if test in base}
            for train, row in matrix.items()}


def unseen_mean_gain(deltas: Mapping[str, Mapping[str, float]]) -> float:
    """Mean delta over off-diagonal cells (train env != test env): the gain on unseen environments."""
    values = [d for train, row in deltas.items() for test, d in row.items() if test != train]
    return mean(values)


@dataclass(frozen=True, slots=True)
class SequenceSummary:
    backward_transfer: float  # mean (R[T][i] - R[i][i]) over i < T; negative means forgetting
    forward_transfer: float  # mean (R[i-1][i] - base[i]) over i > 1
    forgetting: tuple[float, ...]  # per env of the order, max_{j in [i, T)} R[j][i] - R[T][i]; the last env's is 0


def sequence_summary(results: Sequence[Sequence[float]], base: Sequence[float]) -> SequenceSummary:
    """results[j][i]: success on env i of the order after stage j (0-based, T stages for T envs); base[i]: before
    any training. Definitions in the module docstring."""
    t = len(base)
    if t < 2 or len(results) != t or any(len(row) != t for row in results):
        raise ValueError(f"need a T x T results matrix and T base values with T >= 2; got {len(results)} rows, "
                         f"{len(base)} base values")
    last = t - 1
    bwt = mean([results[last][i] - results[i][i] for i in range(last)])
    fwt = mean([results[i - 1][i] - base[i] for i in range(1, t)])
    forgetting = tuple(max(results[j][i] for j in range(i, last)) - results[last][i] if i < last else 0.0
                       for i in range(t))
    return SequenceSummary(bwt, fwt, forgetting)
