"""AlfWorldEnv: lists ALFWorld tasks and starts episodes, from generated games or a mounted json_2.1.1 directory."""

from __future__ import annotations

import json
import os
from pathlib import Path

from env_server.envs.alfworld import catalog, difficulty, games
from env_server.envs.alfworld.episode import AlfWorldEpisode
from env_server.errors import UnknownTask
from env_server.types import EnvSpec, SplitSpec, TaskInfo

DATA_ENV = "SHIFTGYM_ALFWORLD_DATA"
_SUCCESS = "ALFWorld's own win flag: the PDDL goal of the task holds (TextWorld's `won`)"
_SCORE = "1 when won, else 0; the reward is the same 0/1 on the winning step"


def _spec(counts: dict[str, dict[str, int]]) -> EnvSpec:
    return EnvSpec(
        name="alfworld",
        version="1.0.0",
        difficulties=difficulty.DIFFICULTIES,
        splits=tuple(SplitSpec(split, by_level) for split, by_level in counts.items()),
        default_max_turns=30,
        max_turns_limit=200,
        success_definition=_SUCCESS,
        score_definition=_SCORE,
        difficulty_definition=difficulty.DEFINITION,
        thread_safe=False,  # TextWorld's PDDL parser (tatsu) and Fast Downward (a C library) hold global state
    )


class AlfWorldEnv:
    """Generated games by default; real ALFWorld games when `data_dir` (or $SHIFTGYM_ALFWORLD_DATA) is set."""

    def __init__(self, data_dir: str | Path | None = None, cache_dir: str | Path | None = None) -> None:
        data = data_dir if data_dir is not None else os.environ.get(DATA_ENV) or None
        self._real: dict[str, games.RealGame] | None = None
        self._lists: dict[tuple[str, str], tuple[TaskInfo, ...]] = {}
        if data is not None:
            found = games.scan_real(Path(data))
            self._real = {g.task_id: g for g in found}
            for g in found:
                info = TaskInfo(g.task_id, g.split, g.difficulty, {"task_type": g.task_type, "source": "real"})
                self._lists.setdefault((g.split, g.difficulty), ())
                self._lists[(g.split, g.difficulty)] += (info,)
            splits = sorted({g.split for g in found}, key=games.REAL_SPLITS.index)
        else:
            self._generated = games.GeneratedGames(Path(cache_dir) if cache_dir else games.default_cache_dir())
            splits = list(games.GENERATED_SPLITS)
        counts = {s: {d: self._count(s, d) for d in difficulty.DIFFICULTIES} for s in splits}
        self.spec = _spec(counts)

    def lexicon_words(self) -> tuple[str, ...]:
        """Entity words for the `lexicon` adapter: ALFRED's object and receptacle classes as ALFWorld writes them,
        lowercase and in one word ("countertop", "sinkbasin", "desklamp"), in names, commands and task text."""
        return catalog.entity_words()

    def _count(self, split: str, level: str) -> int:
        if self._real is not None:
            return len(self._lists.get((split, level), ()))
        return games.PER_TYPE[split] * len(games.task_types(split, level))

    def tasks(self, split: str, difficulty_name: str) -> tuple[TaskInfo, ...]:
        if self.spec.split(split) is None or difficulty_name not in difficulty.DIFFICULTIES:
            known = ", ".join(s.name for s in self.spec.splits)
            raise UnknownTask(
                f"no alfworld tasks for split {split!r} difficulty {difficulty_name!r} "
                f"(splits: {known}; difficulties: {', '.join(difficulty.DIFFICULTIES)})"
            )
        key = (split, difficulty_name)
        if key not in self._lists and self._real is None:
            self._lists[key] = tuple(
                TaskInfo(games.generated_id(split, difficulty_name, t, i), split, difficulty_name,
                         {"task_type": t, "source": "generated"})
                for t in games.task_types(split, difficulty_name)
                for i in range(games.PER_TYPE[split])
            )
        return self._lists.get(key, ())

    def reset(self, task_id: str, seed: int) -> AlfWorldEpisode:
        # The seed does not change the game: a task id names one fixed ALFWorld game, as in ALFWorld itself.
        if self._real is not None:
            real = self._real.get(task_id)
            if real is None:
                raise UnknownTask(
                    f"unknown alfworld task id {task_id!r}: real games are named "
                    "alfworld/<split>/<task folder>/<trial folder>; list them with tasks(split, difficulty)"
                )
            game = json.loads(real.game_file.read_text())
            info = TaskInfo(task_id, real.split, real.difficulty, {"task_type": real.task_type, "source": "real"})
            return AlfWorldEpisode(info, game, games.task_text(game))
        parsed = games.parse_generated_id(task_id)
        if parsed is None:
            raise UnknownTask(
                f"unknown alfworld task id {task_id!r} (expected alfworld/<split>/<difficulty>/<task type>-<index>, "
                "e.g. alfworld/train/easy/pick_and_place-00042; list them with tasks(split, difficulty))"
            )
        split, level, task_type, index = parsed
        files = self._generated.load(split, level, task_type, index)
        info = TaskInfo(task_id, split, level, {"task_type": task_type, "source": "generated"})
        return AlfWorldEpisode(info, files.game, files.task_text)
