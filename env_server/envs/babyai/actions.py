"""The macro actions valid in a BabyAI state, each planned into minigrid's primitive moves.

Rules (one canonical action = one turn, however many primitive moves it takes):

- `turn left`, `turn right`: always valid. `move forward`: valid when the cell ahead can be entered.
- `go to <color> <type> [<n>]`: any object seen this episode (not carried, not already faced) with a known path to a
  cell next to it; the agent walks the shortest known path (closed doors and objects block) and ends facing it.
- `pick up <obj>`: hands empty and the object directly ahead or in one of the four neighbouring cells; the agent
  turns to face it first. `open <color> door [<n>]` follows the same rule for a closed door it can open (unlocked,
  or locked and the agent carries the key of its colour).
- `drop`: the agent carries something and the cell ahead is empty. `toggle`: a door or box is directly ahead.
- `go through <color> door [<n>]`: a seen door, open or openable, with a known path to it: go to it, open it if
  closed, and walk two cells on, to the far side.
- `check available actions`: lists the valid actions; the grid does not change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from minigrid.core.world_object import WorldObj
from minigrid.envs.babyai.core.roomgrid_level import RoomGridLevel

from env_server.envs.babyai.world import DIR_VECS, DROP, FORWARD, LEFT, PICKUP, RIGHT, TOGGLE, passable, plan_from, turns_to_face

CHECK = "check available actions"
VERBS = ("turn left", "turn right", "move forward", "go to ", "pick up ", "drop", "toggle", "open ", "go through ", CHECK)


@dataclass(frozen=True, slots=True)
class Macro:
    primitives: tuple[int, ...]
    message: str
    end: tuple[int, int] | None = None  # where a `go through` should leave the agent


def can_open(door: WorldObj, carrying: WorldObj | None) -> bool:
    if door.is_open:
        return False
    if not door.is_locked:
        return True
    return carrying is not None and carrying.type == "key" and carrying.color == door.color


def known_objects(env: RoomGridLevel, seen: np.ndarray, labels: dict[int, str]) -> list[tuple[str, WorldObj, tuple[int, int]]]:
    """Seen, non-wall objects on the grid, sorted by label."""
    found = []
    width = env.width
    for index, obj in enumerate(env.grid.grid):
        if obj is None or obj.type == "wall":
            continue
        x, y = index % width, index // width
        if seen[x, y]:
            found.append((labels[id(obj)], obj, (x, y)))
    found.sort(key=lambda item: item[0])
    return found


def action_table(env: RoomGridLevel, seen: np.ndarray, labels: dict[int, str]) -> dict[str, Macro]:
    """Every valid canonical action, in the order they are listed, with its primitive plan."""
    table = {"turn left": Macro((LEFT,), "You turn left."), "turn right": Macro((RIGHT,), "You turn right.")}
    fx, fy = env.front_pos
    front = env.grid.get(fx, fy)
    if passable(front):
        table["move forward"] = Macro((FORWARD,), "You move forward.")
    objects = known_objects(env, seen, labels)
    plans = plan_from(env, seen)
    carrying = env.carrying
    ax, ay = env.agent_pos
    goto, pickup, opens, through = {}, {}, {}, {}
    for label, obj, (x, y) in objects:
        facing = (x, y) == (fx, fy)
        plan = None if facing else plans.to_face((x, y))
        if plan is not None:
            goto[f"go to {label}"] = Macro(plan, f"You go to the {label}.")
        turns = turns_to_face(env.agent_dir, (x - ax, y - ay))
        if turns is not None and carrying is None and obj.can_pickup():
            pickup[f"pick up {label}"] = Macro(turns + (PICKUP,), f"You pick up the {label}.")
        if obj.type != "door":
            continue
        if turns is not None and can_open(obj, carrying):
            opens[f"open {label}"] = Macro(turns + (TOGGLE,), f"You open the {label}.")
        approach = () if facing else plan
        if approach is not None and (obj.is_open or can_open(obj, carrying)):
            d = _final_dir(env.agent_dir, approach)
            end = (x + DIR_VECS[d][0], y + DIR_VECS[d][1])
            opening = () if obj.is_open else (TOGGLE,)
            through[f"go through {label}"] = Macro(approach + opening + (FORWARD, FORWARD), f"You go through the {label}.", end)
    table.update(goto)
    table.update(pickup)
    if carrying is not None and front is None:
        table["drop"] = Macro((DROP,), f"You drop the {labels[id(carrying)]}.")
    if front is not None and (front.type == "box" or (front.type == "door" and (front.is_open or can_open(front, carrying)))):
        table["toggle"] = Macro((TOGGLE,), "")
    table.update(opens)
    table.update(through)
    table[CHECK] = Macro((), "")
    return table


def _final_dir(agent_dir: int, plan: tuple[int, ...]) -> int:
    for action in plan:
        if action == LEFT:
            agent_dir = (agent_dir - 1) % 4
        elif action == RIGHT:
            agent_dir = (agent_dir + 1) % 4
    return agent_dir


def is_parseable(action: str) -> bool:
    return any(action == verb or (verb.endswith(" ") and action.startswith(verb)) for verb in VERBS)
