"""One BabyAI episode: a minigrid level instance, what the agent has seen, and macro actions played on it."""

from __future__ import annotations

from typing import Any

import numpy as np
from minigrid.envs.babyai.core.roomgrid_level import RoomGridLevel

from env_server.envs.babyai.actions import CHECK, Macro, action_table, is_parseable
from env_server.envs.babyai.oracle import Oracle
from env_server.envs.babyai.render import render
from env_server.envs.babyai.world import label_objects, visible_cells
from env_server.errors import EpisodeFinished
from env_server.types import Observation, Outcome, StepResult, TaskInfo


class BabyAIEpisode:
    def __init__(self, task: TaskInfo, env: RoomGridLevel) -> None:
        self.task = task
        self._env = env
        self._labels = label_objects(env)
        self._seen = np.zeros((env.width, env.height), dtype=bool)
        self._visible = self._look()
        self._oracle: Oracle | None = None
        self._done = False
        self._table: dict[str, Macro] | None = None
        self._first: Observation | None = None

    def observe(self) -> Observation:
        if self._first is None:
            self._first = self._observation("")
        return self._first

    def step(self, action: str) -> StepResult:
        if self._done:
            raise EpisodeFinished("the episode is over; reset to start a new one")
        canonical = " ".join(action.lower().split()).rstrip(".")
        table = self._actions()
        macro = table.get(canonical)
        if macro is None:
            if is_parseable(canonical):
                message = "Nothing happens."
            else:
                message = f"Invalid action {action!r}. Say '{CHECK}' to list the actions you can take."
            return StepResult(self._observation(message), reward=0.0, done=False, truncated=False, action_valid=False)
        if canonical == CHECK:
            message = "Available actions: " + ", ".join(table) + "."
            return StepResult(self._observation(message), reward=0.0, done=False, truncated=False, action_valid=True)
        return self._play(canonical, macro)

    def oracle_action(self) -> str:
        if self._done:
            raise EpisodeFinished("the episode is over; the oracle has nothing to say")
        if self._oracle is None:
            self._oracle = Oracle(self._env)
        return self._oracle.next_action(self._actions(), self._labels, self._seen)

    def close(self) -> None:
        self._oracle = None
        self._table = None

    def _play(self, canonical: str, macro: Macro) -> StepResult:
        env = self._env
        front = env.grid.get(*env.front_pos)
        message = macro.message or _toggle_message(front, self._labels)
        won = out_of_time = False
        score = 0.0
        for primitive in macro.primitives:
            _, reward, terminated, truncated, _ = env.step(primitive)
            self._visible = self._look()
            if self._oracle is not None:
                self._oracle.observe_move(primitive)
            if terminated or truncated:
                won = terminated and reward > 0
                out_of_time = truncated and not won
                score = float(reward) if won else 0.0
                self._done = True
                break
        if macro.end is not None and not self._done and tuple(env.agent_pos) != macro.end:
            message = message[: -len(".")] + ", but something blocks the way beyond it."
        if won:
            message += " You have completed the mission!"
        elif self._done:
            message += " You ran out of time." if out_of_time else " The mission has failed."
        self._table = None
        outcome = Outcome(success=won, score=score) if self._done else None
        return StepResult(
            self._observation(message),
            reward=1.0 if won else 0.0,
            done=self._done,
            truncated=out_of_time,
            action_valid=True,
            outcome=outcome,
        )

    def _look(self) -> list[tuple[int, int]]:
        cells = visible_cells(self._env)
        for x, y in cells:
            self._seen[x, y] = True
        return cells

    def _actions(self) -> dict[str, Macro]:
        if self._table is None:
            self._table = action_table(self._env, self._seen, self._labels)
        return self._table

    def _observation(self, message: str) -> Observation:
        text, fields = render(self._env, self._seen, self._visible, self._labels)
        valid = () if self._done else tuple(self._actions())
        fields: dict[str, Any] = {**fields, "message": message}
        return Observation(text=f"{message}\n{text}" if message else text, valid_actions=valid, fields=fields)


def _toggle_message(front: Any, labels: dict[int, str]) -> str:
    if front is None:
        return "Nothing happens."
    if front.type == "box":
        return f"You open the {labels[id(front)]}; it is empty and falls apart."
    return f"You {'close' if front.is_open else 'open'} the {labels[id(front)]}."

