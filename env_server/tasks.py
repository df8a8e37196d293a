"""Seeded sampling over an environment's task list, so environments only list and never draw."""

from __future__ import annotations

import random
from typing import Sequence

from env_server.types import TaskInfo


def sample_tasks(tasks: Sequence[TaskInfo], count: int, seed: int) -> list[TaskInfo]:
    """`count` distinct tasks drawn with an RNG built from `seed` (all of them when there are fewer)."""
    if count >= len(tasks):
        return list(tasks)
    return random.Random(seed).sample(list(tasks), count)
