"""An echo environment that does almost nothing, so benchmarks measure the transport alone.

Each task asks the agent to say the task's word; saying it wins, "noop" does nothing, anything else is
echoed back as an invalid action.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from env_server.errors import UnknownTask
from env_server.types import EnvSpec, Observation, Outcome, SplitSpec, StepResult, TaskInfo

_TASKS_PER_SPLIT = 1000
_SPLITS = ("train", "test")


def _word(index: int) -> str:
    return f"word{index:04d}"


@dataclass(slots=True)
class NullEpisode:
    task: TaskInfo
    word: str
    turns: int = field(default=0)

    def observe(self) -> Observation:
        return Observation(text=f"Say {self.word}.", valid_actions=(self.word, "noop"))

    def step(self, action: str) -> StepResult:
        self.turns += 1
        won = action == self.word
        obs = Observation(text=f"echo: {action}", valid_actions=(self.word, "noop"))
        outcome = Outcome(success=True, score=1.0) if won else None
        valid = won or action == "noop"
        return StepResult(obs, reward=1.0 if won else 0.0, done=won, truncated=False, action_valid=valid, outcome=outcome)

    def oracle_action(self) -> str:
        return self.word

    def close(self) -> None:
        pass


class NullEnv:
    spec = EnvSpec(
        name="null",
        version="1.0.0",
        difficulties=("easy",),
        splits=tuple(SplitSpec(s, {"easy": _TASKS_PER_SPLIT}) for s in _SPLITS),
        default_max_turns=1_000_000,
        max_turns_limit=1_000_000,
        success_definition="the agent said the task's word",
        score_definition="1 on success, else 0",
        difficulty_definition="one level: every task is the same",
    )

    def __init__(self) -> None:
        self._tasks = {
            split: tuple(TaskInfo(f"null/{split}/easy/{i:05d}", split, "easy") for i in range(_TASKS_PER_SPLIT))
            for split in _SPLITS
        }
        self._by_id = {t.task_id: (i, t) for split in _SPLITS for i, t in enumerate(self._tasks[split])}

    def tasks(self, split: str, difficulty: str) -> tuple[TaskInfo, ...]:
        if split not in self._tasks or difficulty != "easy":
            raise UnknownTask(f"no tasks for split {split!r} difficulty {difficulty!r} (known: train, test / easy)")
        return self._tasks[split]

    def reset(self, task_id: str, seed: int) -> NullEpisode:
        if task_id not in self._by_id:
            raise UnknownTask(f"unknown task id {task_id!r} (expected null/<split>/easy/<00000-00999>)")
        index, task = self._by_id[task_id]
        return NullEpisode(task=task, word=_word(index))
