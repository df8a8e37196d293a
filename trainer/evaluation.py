"""k samples per task through the episode runner: the raw material of avg@k and pass@k."""

from __future__ import annotations

import asyncio
import random
from typing import Sequence

from trainer.episodes import EpisodeRunner, EpisodeSpec
from trainer.policies.base import TextPolicy, TokenPolicy
from trainer.trajectory import Trajectory


async def sample_k(runner: EpisodeRunner, policy: TextPolicy | TokenPolicy, specs: Sequence[EpisodeSpec], k: int,
                   seed: int) -> list[Trajectory]:
    """k trajectories per spec, grouped by spec in order; sample seeds derive from `seed`, so reruns agree."""
    rng = random.Random(seed)
    seeds = [rng.getrandbits(63) for _ in range(len(specs) * k)]
    runs = [runner.run(spec, policy, sample_seed=seeds[i * k + j]) for i, spec in enumerate(specs) for j in range(k)]
    return list(await asyncio.gather(*runs))


def avg_success(trajectories: Sequence[Trajectory]) -> float:
    """avg@k over a grouped sample: the mean success of all trajectories."""
    return sum(t.success for t in trajectories) / len(trajectories) if trajectories else 0.0
