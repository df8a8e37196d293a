"""The environment contract: an Environment lists tasks and starts Episodes; an Episode steps on canonical text."""

from __future__ import annotations

from typing import Protocol, Sequence

from env_server.types import EnvSpec, Observation, StepResult, TaskInfo


class Episode(Protocol):
    task: TaskInfo

    def observe(self) -> Observation: ...

    def step(self, action: str) -> StepResult:
        """Act with canonical action text. An invalid action is an observation with action_valid=False."""
        ...

    def oracle_action(self) -> str:
        """The next action on a winning path from the current state."""
        ...

    def close(self) -> None: ...


class Environment(Protocol):
    spec: EnvSpec

    def tasks(self, split: str, difficulty: str) -> Sequence[TaskInfo]:
        """Every task of a split and difficulty, in a fixed order. Unknown names raise UnknownTask."""
        ...

    def reset(self, task_id: str, seed: int) -> Episode:
        """Start an episode. The same task_id and seed give the same episode, byte for byte.

        Raises UnknownTask for an id this environment does not serve.
        """
        ...
