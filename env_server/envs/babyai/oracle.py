"""The oracle: minigrid's own BabyAI bot, told the map, its primitive moves grouped into this environment's macros.

The bot knows every cell it can reach without opening a door (`reveal_reachable`, refreshed whenever a door is
toggled), so it walks straight to what it can reach and explores only by opening doors, instead of cell by cell.
It is created lazily, on the first oracle call, and then told every primitive move the episode makes (it is built
to advise an agent that may not follow it). To choose a macro, a deep copy of the game and bot is played forward
until the bot's next interaction (pick up, drop, toggle) or the end of the game. If that walk ends facing the
object the bot then acts on (or wins the game there), the macro is `go to` that object, or `go through` a door it
is about to open; else the walking macro (`go to`, `go through` an open door) that ends furthest along the walk;
else the walk's first primitive. A macro is never chosen twice from the same state, so macros cannot undo each other in a loop.
"""

from __future__ import annotations

import copy

import numpy as np
from minigrid.envs.babyai.core.roomgrid_level import RoomGridLevel
from minigrid.utils.baby_ai_bot import BabyAIBot

from env_server.envs.babyai.actions import CHECK, Macro
from env_server.envs.babyai.world import DIR_VECS, DROP, FORWARD, LEFT, NAV, PICKUP, RIGHT, TOGGLE

_PRIMITIVE_NAMES = {LEFT: "turn left", RIGHT: "turn right", FORWARD: "move forward"}
_MAX_LOOKAHEAD = 300  # primitive moves simulated per oracle call; more than any level's walk
_MAX_WAYPOINTS = 3  # waypoint macros checked per oracle call, latest on the walk first


class Oracle:
    def __init__(self, env: RoomGridLevel) -> None:
        self._env = env
        self._bot = _omniscient_bot(env)
        self._suggestion = int(self._bot.replan())
        self._interactions = 0  # primitive interactions so far: with the pose, tells a repeated state apart
        self._chosen: set[tuple[tuple[object, ...], str]] = set()  # (state, macro) chosen before: never again

    def observe_move(self, action: int) -> None:
        """Tell the bot the primitive move the episode just made."""
        if action not in NAV:
            self._interactions += 1
        if action == TOGGLE:
            reveal_reachable(self._bot)
        try:
            self._suggestion = int(self._bot.replan(action))
        except Exception:  # noqa: BLE001 - the bot asserts on states it cannot advise from (an opened box)
            self._bot = _omniscient_bot(self._env)
            self._suggestion = int(self._bot.replan())

    def next_action(self, table: dict[str, Macro], labels: dict[int, str], seen: np.ndarray) -> str:
        env = self._env
        sim_env, sim_bot = copy.deepcopy((env, self._bot))
        suggestion, walk, won = self._suggestion, [], False
        positions: list[tuple[int, int]] = []  # where the agent stands after each move of the walk
        while suggestion in NAV and len(walk) < _MAX_LOOKAHEAD:
            _, reward, terminated, truncated, _ = sim_env.step(suggestion)
            walk.append(suggestion)
            positions.append(_pos(sim_env.agent_pos))
            if terminated or truncated:
                won = terminated and reward > 0
                break
            suggestion = int(sim_bot.replan(suggestion))

        if not walk:
            return self._interaction(suggestion, table, labels)
        target = env.grid.get(*sim_env.front_pos)  # the real object there: walks move no objects
        candidates: list[tuple[str, bool]] = []  # (action, whether the bot must want to interact afterwards)
        if target is not None and target.type != "wall" and (won or suggestion in (PICKUP, TOGGLE)):
            label = labels[id(target)]
            if suggestion == TOGGLE and target.type == "door":
                candidates.append((f"go through {label}", False))
            candidates.append((f"go to {label}", not won))
        candidates += [(action, False) for action in self._shortcuts(table, positions)]
        state = (_pos(env.agent_pos), int(env.agent_dir), id(env.carrying), self._interactions)
        for action, must_interact in candidates:
            if action in table and (state, action) not in self._chosen and self._agrees(table[action].primitives, must_interact):
                self._chosen.add((state, action))
                return action
        return _PRIMITIVE_NAMES[walk[0]]

    def _shortcuts(self, table: dict[str, Macro], positions: list[tuple[int, int]]) -> list[str]:
        """Walking macros that end where the bot's walk passes, the furthest along the walk first.

        A macro is taken only if it saves at least one turn over the walk's first move.
        """
        env = self._env
        reach = {pos: i for i, pos in enumerate(positions)}  # the last time the walk stands on each cell
        ranked = []
        for action, macro in table.items():
            if not action.startswith(("go to ", "go through ")) or TOGGLE in macro.primitives:
                continue
            end = macro.end if macro.end is not None else _walk_end(_pos(env.agent_pos), int(env.agent_dir), macro.primitives)
            index = reach.get(end, 0)
            if index >= 1:
                ranked.append((-index, len(macro.primitives), action))
        ranked.sort()
        return [action for _, _, action in ranked[:_MAX_WAYPOINTS]]

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
            if primitive == TOGGLE:
                reveal_reachable(sim_bot)
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


def _omniscient_bot(env: RoomGridLevel) -> BabyAIBot:
    """The BabyAI bot, told every cell it can reach now (it would otherwise explore them one move at a time)."""
    bot = BabyAIBot(env)
    reveal_reachable(bot)
    return bot


def reveal_reachable(bot: BabyAIBot) -> None:
    """Mark as seen every cell reachable from the agent without opening a door, and the cells bounding them."""
    env = bot.mission
    grid, w, h = env.grid, env.width, env.height
    mask = bot.vis_mask
    start = tuple(int(v) for v in env.agent_pos)
    stack, done = [start], {start}
    while stack:
        x, y = stack.pop()
        mask[x, y] = True
        cell = grid.get(x, y)
        if cell is not None and (cell.type == "wall" or (cell.type == "door" and not cell.is_open)):
            continue
        for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            n = (x + dx, y + dy)
            if 0 <= n[0] < w and 0 <= n[1] < h and n not in done:
                done.add(n)
                stack.append(n)


def _pos(pos: object) -> tuple[int, int]:
    x, y = pos  # type: ignore[misc]
    return int(x), int(y)


def _walk_end(pos: tuple[int, int], direction: int, primitives: tuple[int, ...]) -> tuple[int, int]:
    """Where a planned walk (turns and forward moves over free cells) leaves the agent."""
    x, y = pos
    for action in primitives:
        if action == LEFT:
            direction = (direction - 1) % 4
        elif action == RIGHT:
            direction = (direction + 1) % 4
        elif action == FORWARD:
            x, y = x + DIR_VECS[direction][0], y + DIR_VECS[direction][1]
    return x, y
