"""The oracle: minigrid's own BabyAI bot, its primitive moves grouped into this environment's macro actions.

The bot is created lazily, on the first oracle call, and then told every primitive move the episode makes (it is
built to advise an agent that may not follow it). To choose a macro, a deep copy of the game and bot is played
forward until the bot's next interaction (pick up, drop, toggle) or the end of the game. If that walk ends facing
the object the bot then acts on (or wins the game there), the macro is `go to` that object, or `go through` a door
it is about to open; else `go through` the first door the walk crosses; else the walk's first primitive.
"""

from __future__ import annotations

import copy

import numpy as np
from minigrid.envs.babyai.core.roomgrid_level import RoomGridLevel
from minigrid.utils.baby_ai_bot import BabyAIBot

from env_server.envs.babyai.actions import CHECK, Macro
from env_server.envs.babyai.world import DROP, FORWARD, LEFT, NAV, PICKUP, RIGHT, TOGGLE

_PRIMITIVE_NAMES = {LEFT: "turn left", RIGHT: "turn right", FORWARD: "move forward"}
_MAX_LOOKAHEAD = 300  # primitive moves simulated per oracle call; more than any level's walk
_MAX_WAYPOINTS = 3  # waypoint macros checked per oracle call, latest on the walk first


class Oracle:
    def __init__(self, env: RoomGridLevel) -> None:
        self._env = env
        self._bot = BabyAIBot(env)
        self._suggestion = int(self._bot.replan())

    def observe_move(self, action: int) -> None:
        """Tell the bot the primitive move the episode just made."""
        try:
            self._suggestion = int(self._bot.replan(action))
        except Exception:  # noqa: BLE001 - the bot asserts on states it cannot advise from (an opened box)
            self._bot = BabyAIBot(self._env)
            self._suggestion = int(self._bot.replan())

    def next_action(self, table: dict[str, Macro], labels: dict[int, str], seen: np.ndarray) -> str:
        env = self._env
        sim_env, sim_bot = copy.deepcopy((env, self._bot))
        suggestion, walk, won = self._suggestion, [], False
        waypoints: list[str] = []  # `go through` the doors the walk crosses
        while suggestion in NAV and len(walk) < _MAX_LOOKAHEAD:
            before = sim_env.grid.get(*sim_env.front_pos)
            _, reward, terminated, truncated, _ = sim_env.step(suggestion)
            walk.append(suggestion)
            if suggestion == FORWARD and before is not None and before.type == "door":
                waypoints.append(f"go through {labels[id(env.grid.get(*sim_env.agent_pos))]}")
            if terminated or truncated:
                won = terminated and reward > 0
                break
            suggestion = int(sim_bot.replan(suggestion))

        target = env.grid.get(*sim_env.front_pos)  # the real object there: walks move no objects
        if not walk:
            return self._interaction(suggestion, table, labels)
        candidates: list[tuple[str, bool]] = []  # (action, whether the bot must want to interact afterwards)
        if target is not None and target.type != "wall" and (won or suggestion in (PICKUP, TOGGLE)):
            label = labels[id(target)]
            if suggestion == TOGGLE and target.type == "door":
                candidates.append((f"go through {label}", False))
            candidates.append((f"go to {label}", not won))
        tried = 0
        for action in dict.fromkeys(reversed(waypoints)):
            if action in table and tried < _MAX_WAYPOINTS:
                candidates.append((action, False))
                tried += 1
        for action, must_interact in candidates:
            if action in table and self._agrees(table[action].primitives, must_interact):
                return action
        return _PRIMITIVE_NAMES[walk[0]]

    def _agrees(self, primitives: tuple[int, ...], must_interact: bool) -> bool:
        """Whether the bot, told each of these moves, never wanted to interact when moving or vice versa.

        A move the bot did not expect at an interaction makes it plan to undo it, so such macros are avoided.
        """
        sim_env, sim_bot = copy.deepcopy((self._env, self._bot))
        suggestion = self._suggestion
        for primitive in primitives:
            if (primitive in NAV) != (suggestion in NAV) or (primitive not in NAV and primitive != suggestion):
                return False
            _, reward, terminated, truncated, _ = sim_env.step(primitive)
            if terminated or truncated:
                return terminated and reward > 0
            suggestion = int(sim_bot.replan(primitive))
        return not must_interact or suggestion in (PICKUP, DROP, TOGGLE)

    def _interaction(self, suggestion: int, table: dict[str, Macro], labels: dict[int, str]) -> str:
        front = self._env.grid.get(*self._env.front_pos)
        if suggestion == PICKUP and front is not None:
            return f"pick up {labels[id(front)]}"
        if suggestion == DROP:
            return "drop"
        if suggestion == TOGGLE and front is not None:
            if front.type == "door" and f"open {labels[id(front)]}" in table:
                return f"open {labels[id(front)]}"
            return "toggle"
        return CHECK

