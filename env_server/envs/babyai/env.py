"""BabyAIEnv: the task ladder over minigrid's BabyAI levels, with splits drawn from disjoint level-seed ranges."""

from __future__ import annotations

import re

from minigrid.envs import babyai as levels

from env_server.envs.babyai.episode import BabyAIEpisode
from env_server.errors import UnknownTask
from env_server.types import EnvSpec, SplitSpec, TaskInfo

# difficulty -> levels. Harder rungs need more rooms, doors to open or unlock, objects to move, and longer
# compositional missions; see the package docstring for what each rung adds.
LADDER: dict[str, tuple[str, ...]] = {
    "easy": ("GoToRedBallGrey", "GoToRedBall", "GoToObj", "GoToLocal", "PickupLoc"),
    "medium": ("GoToDoor", "GoToObjDoor", "OpenDoor", "PickupDist", "ActionObjDoor"),
    "hard": ("OpenTwoDoors", "FindObjS5", "PutNextLocal", "UnlockLocal", "UnlockPickup"),
}
# level -> mean primitive moves of minigrid's BabyAI bot over 40 seeds (measured once; listed as task metadata).
BOT_STEPS: dict[str, int] = {
    "GoToRedBallGrey": 6, "GoToRedBall": 6, "GoToObj": 5, "GoToLocal": 5, "PickupLoc": 6,
    "GoToDoor": 6, "GoToObjDoor": 6, "OpenDoor": 8, "PickupDist": 5, "ActionObjDoor": 7,
    "OpenTwoDoors": 14, "FindObjS5": 31, "PutNextLocal": 12, "UnlockLocal": 14, "UnlockPickup": 20,
}  # fmt: skip
# split -> (first level seed, instances per level). A task's level seed is the first seed plus its index.
SPLIT_SEEDS: dict[str, tuple[int, int]] = {"train": (0, 200), "test": (1_000_000, 40)}
# Level instances the oracle cannot finish within the default turn limit; never listed, refused by reset.
# Found by running the oracle on every listed instance (a sweep outside the test suite).
EXCLUDED: frozenset[str] = frozenset({
    "babyai/test/medium/GoToObjDoor-00037",
    "babyai/train/medium/GoToObjDoor-00107",
})  # fmt: skip

_ID = re.compile(r"babyai/(?P<split>[a-z]+)/(?P<difficulty>[a-z]+)/(?P<level>[A-Za-z0-9]+)-(?P<index>\d{5})")


def task_id(split: str, difficulty: str, level: str, index: int) -> str:
    return f"babyai/{split}/{difficulty}/{level}-{index:05d}"


def _metadata(level: str, seed: int) -> dict[str, str]:
    return {"level": level, "level_seed": str(seed), "bot_steps_mean": str(BOT_STEPS[level])}


class BabyAIEnv:
    spec = EnvSpec(
        name="babyai",
        version="1.0.0",
        difficulties=tuple(LADDER),
        splits=tuple(
            SplitSpec(split, {d: sum(1 for lv in LADDER[d] for i in range(n) if task_id(split, d, lv, i) not in EXCLUDED) for d in LADDER})
            for split, (_, n) in SPLIT_SEEDS.items()
        ),
        default_max_turns=20,
        max_turns_limit=200,
        reward_range=(0.0, 1.0),
        success_definition="minigrid's BabyAI verifier reports the mission done (reward 1 on that step)",
        score_definition="minigrid's shaped reward on success, 1 - 0.9 * primitive_steps / max_steps; 0 otherwise",
        difficulty_definition=(
            "level ladder: easy = one room, go to or pick up an object described by colour, type or place; "
            "medium = doors to reach, open, or act beside, several rooms; hard = missions that need a key, "
            "moving an object next to another, two doors in order, or a search through several rooms"
        ),
    )

    def __init__(self) -> None:
        self._tasks: dict[tuple[str, str], tuple[TaskInfo, ...]] = {}
        for split, (first_seed, count) in SPLIT_SEEDS.items():
            for difficulty, names in LADDER.items():
                ids = (
                    (task_id(split, difficulty, level, i), level, first_seed + i)
                    for i in range(count)
                    for level in names  # interleaved, so any prefix of the list covers every level
                )
                self._tasks[split, difficulty] = tuple(
                    TaskInfo(tid, split, difficulty, _metadata(level, seed))
                    for tid, level, seed in ids
                    if tid not in EXCLUDED
                )

    def tasks(self, split: str, difficulty: str) -> tuple[TaskInfo, ...]:
        if (split, difficulty) not in self._tasks:
            raise UnknownTask(
                f"no tasks for split {split!r} difficulty {difficulty!r} "
                f"(splits: {', '.join(SPLIT_SEEDS)}; difficulties: {', '.join(LADDER)})"
            )
        return self._tasks[split, difficulty]

    def reset(self, task_id: str, seed: int) -> BabyAIEpisode:
        """Start the level instance the id names. `seed` is unused: the id fixes the grid and mission."""
        task = self._parse(task_id)
        env = getattr(levels, task.metadata["level"])()
        env.reset(seed=int(task.metadata["level_seed"]))
        return BabyAIEpisode(task, env)

    def _parse(self, tid: str) -> TaskInfo:
        match = _ID.fullmatch(tid)
        expected = "expected babyai/<train|test>/<easy|medium|hard>/<Level>-<NNNNN>, e.g. babyai/test/easy/GoToRedBall-00042"
        if match is None:
            raise UnknownTask(f"unknown task id {tid!r} ({expected})")
        split, difficulty, level, index = match["split"], match["difficulty"], match["level"], int(match["index"])
        if split not in SPLIT_SEEDS or difficulty not in LADDER:
            raise UnknownTask(f"unknown split or difficulty in task id {tid!r} ({expected})")
        if level not in LADDER[difficulty]:
            raise UnknownTask(f"level {level!r} is not in difficulty {difficulty!r} (levels: {', '.join(LADDER[difficulty])})")
        first_seed, count = SPLIT_SEEDS[split]
        if index >= count:
            raise UnknownTask(f"task id {tid!r} is out of range: {split} has {count} instances per level (00000-{count - 1:05d})")
        if tid in EXCLUDED:
            raise UnknownTask(f"task id {tid!r} is excluded: the oracle cannot finish it within the default turn limit")
        return TaskInfo(tid, split, difficulty, _metadata(level, first_seed + index))
