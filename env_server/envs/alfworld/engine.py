"""TextWorld's PDDL engine with ALFWorld's demangling wrapper, and the Fast Downward planner behind it."""

from __future__ import annotations

import re
from typing import Any, Mapping

import textworld
from alfworld.agents.environment.alfred_tw_env import AlfredDemangler
from textworld.envs.pddl import PddlEnv


class Engine:
    """One loaded game: TextWorld's `PddlEnv` under ALFWorld's `AlfredDemangler` (object names like `apple 1`)."""

    def __init__(self, game: Mapping[str, Any]) -> None:
        self._pddl = PddlEnv(textworld.EnvInfos(won=True, admissible_commands=True))
        self._env = AlfredDemangler(self._pddl)
        self._env.load(dict(game))  # a mapping, not a path: PddlEnv.load accepts either
        # Static facts are compiled away by the planner's translator, so read receptacle places from the problem.
        pairs = re.findall(r"\(receptacleAtLocation (\S+) (\S+)\)", game["pddl_problem"])
        self._receptacle_at = [(r.lower(), loc.lower()) for r, loc in pairs]  # the translator lowercases names

    def reset(self) -> textworld.GameState:
        return self._env.reset()

    def step(self, command: str) -> textworld.GameState:
        state, _, _ = self._env.step(command)
        return state

    def plan(self) -> list[str] | None:
        """Fast Downward's optimal commands from the current state; None when the goal is unreachable."""
        try:
            commands = self._pddl._pddl_state.replan(self._pddl._entity_infos)
        except Exception:  # the planner signals "no plan" by raising from its C library wrapper
            return None
        return list(commands) if commands is not None else None

    def where(self) -> tuple[str | None, list[str]]:
        """The receptacle the agent stands at (None in the middle of the room) and what it holds, by display name."""
        infos = self._pddl._entity_infos
        name = lambda v: (infos[v].name if v in infos else v).strip()  # noqa: E731
        at, held = None, []
        for f in self._pddl._pddl_state.facts:
            if f.name == "atlocation":  # the translator lowercases every name
                at = f.arguments[1].name.lower()
            elif f.name == "holds":  # (already lowercase)
                held.append(name(f.arguments[1].name))
        receps = sorted(name(r) for r, loc in self._receptacle_at if loc == at)
        return (receps[0] if receps else None), sorted(held)


def plan(game: Mapping[str, Any]) -> list[str] | None:
    engine = Engine(game)
    engine.reset()
    return engine.plan()
