"""TextWorld's PDDL engine with ALFWorld's demangling wrapper, and the Fast Downward planner behind it."""

from __future__ import annotations

import re
import threading
from ctypes import CDLL
from typing import Any, Mapping

import mementos.core
import textworld
from alfworld.agents.environment.alfred_tw_env import AlfredDemangler
from textworld.envs.pddl import PddlEnv

from env_server.envs.alfworld.downward import LIBRARIES


class _PddlEnvOn(PddlEnv):
    """TextWorld's PddlEnv on a library copy it is given: its own __init__ would load a new copy per game."""

    def __init__(self, infos: textworld.EnvInfos, library: CDLL) -> None:
        textworld.Environment.__init__(self, infos)
        self.downward_lib = library


class Engine:
    """One loaded game: TextWorld's `PddlEnv` under ALFWorld's `AlfredDemangler` (object names like `apple 1`).

    It borrows a Fast Downward library copy for its lifetime; close() gives it back (see downward.py)."""

    def __init__(self, game: Mapping[str, Any]) -> None:
        self._library: CDLL | None = LIBRARIES.borrow()
        # close() may come from the event loop while a step runs in the env thread: the copy must not go back to
        # the pool, and into another game, before that step is over.
        self._lock = threading.Lock()
        try:
            self._pddl = _PddlEnvOn(textworld.EnvInfos(won=True, admissible_commands=True), self._library)
            self._env = AlfredDemangler(self._pddl)
            self._env.load(dict(game))  # a mapping, not a path: PddlEnv.load accepts either
        except BaseException:
            self.close()
            raise
        # Static facts are compiled away by the planner's translator, so read receptacle places from the problem.
        pairs = re.findall(r"\(receptacleAtLocation (\S+) (\S+)\)", game["pddl_problem"])
        self._receptacle_at = [(r.lower(), loc.lower()) for r, loc in pairs]  # the translator lowercases names

    def reset(self) -> textworld.GameState:
        with self._lock:
            self._check_open()
            return self._env.reset()

    def step(self, command: str) -> textworld.GameState:
        with self._lock:
            self._check_open()
            state, _, _ = self._env.step(command)
            return state

    def plan(self) -> list[str] | None:
        """Fast Downward's optimal commands from the current state; None when the goal is unreachable."""
        with self._lock:
            self._check_open()
            try:
                commands = self._pddl._pddl_state.replan(self._pddl._entity_infos)
            except Exception:  # the planner signals "no plan" by raising from its C library wrapper
                return None
            return list(commands) if commands is not None else None

    def close(self) -> None:
        """Give the library copy back; the engine cannot be used after this. Closing twice is harmless."""
        with self._lock:
            if self._library is not None:
                LIBRARIES.give_back(self._library)
                self._library = None
                _forget_propositions()

    def _check_open(self) -> None:
        if self._library is None:
            raise RuntimeError("this ALFWorld game is closed")

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


def _forget_propositions() -> None:
    """Empty the `mementos` cache: TextWorld interns every Proposition and Variable a game creates in this
    process-wide dict, which nothing ever empties, so it grew with every game played. Propositions compare and hash
    by value, so a live game only loses the sharing of equal instances, never a meaning."""
    mementos.core._memento_cache.clear()


def plan(game: Mapping[str, Any]) -> list[str] | None:
    engine = Engine(game)
    try:
        engine.reset()
        return engine.plan()
    finally:
        engine.close()
