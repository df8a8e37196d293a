"""One ALFWorld episode on TextWorld's PDDL engine: ALFWorld's text, admissible commands and a planner oracle."""

from __future__ import annotations

from typing import Any, Mapping

from env_server.envs.alfworld.engine import Engine
from env_server.types import Observation, Outcome, StepResult, TaskInfo

_INVALID = "Nothing happens."


class AlfWorldEpisode:
    def __init__(self, task: TaskInfo, game: Mapping[str, Any], task_text: str) -> None:
        self.task = task
        self._engine = Engine(game)
        self._task_text = task_text
        try:
            state = self._engine.reset()
            self._won = bool(state["won"])
            self._obs = self._observation(state.feedback, state)
        except BaseException:
            self._engine.close()
            raise
        walkthrough = game.get("walkthrough")
        self._plan: list[str] | None = list(walkthrough) if walkthrough else None

    def observe(self) -> Observation:
        return self._obs

    def step(self, action: str) -> StepResult:
        command = action.strip()
        valid = command in self._obs.valid_actions
        if valid:
            state = self._engine.step(command)
            text = state.feedback
        else:
            # Unknown commands never reach the engine: its answer would be the same words, and skipping it
            # keeps the engine's move counter equal to the number of valid commands.
            state, text = None, _INVALID
        if self._plan and valid and self._plan[0] == command:
            self._plan.pop(0)
        elif valid and command not in ("look", "inventory", "help") and not command.startswith("examine"):
            self._plan = None  # off the planned path: replan on the next oracle call
        if state is not None:
            self._won = bool(state["won"])
            self._obs = self._observation(text, state)
        else:
            self._obs = Observation(text=text, valid_actions=self._obs.valid_actions,
                                    fields={**self._obs.fields, "message": text})
        outcome = Outcome(success=True, score=1.0) if self._won else None
        return StepResult(self._obs, reward=1.0 if self._won else 0.0, done=self._won, truncated=False,
                          action_valid=valid, outcome=outcome)

    def oracle_action(self) -> str:
        if not self._plan:
            self._plan = self._engine.plan() or []
        if not self._plan:
            return "look"  # unreachable goal: no winning path exists from here
        return self._plan[0]

    def close(self) -> None:
        self._engine.close()  # its Fast Downward library copy goes back to the pool for the next game

    def _observation(self, text: str, state: Any) -> Observation:
        commands = tuple(sorted(state["admissible_commands"]))
        location, inventory = self._engine.where()
        fields = {
            "task": self._task_text,
            "location": location,
            "inventory": inventory,
            "admissible_commands": list(commands),
            "won": self._won,
            "message": text,  # the engine's answer to the last command (the welcome and the room at reset)
        }
        return Observation(text=text, valid_actions=commands, fields=fields)
