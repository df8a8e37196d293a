"""Egocentric text and structured fields for a BabyAI state: mission, what is in view, what is remembered, carried."""

from __future__ import annotations

from typing import Any

import numpy as np
from minigrid.core.world_object import WorldObj
from minigrid.envs.babyai.core.roomgrid_level import RoomGridLevel

from env_server.envs.babyai.world import DIR_NAMES, DIR_VECS


def _steps(n: int) -> str:
    return f"{n} step" if n == 1 else f"{n} steps"


def where(dx: int, dy: int) -> str:
    """`2 steps ahead and 1 step to the left` for dy=2 (ahead), dx=-1 (right is positive)."""
    parts = []
    if dy > 0:
        parts.append(f"{_steps(dy)} ahead")
    elif dy < 0:
        parts.append(f"{_steps(-dy)} behind")
    if dx > 0:
        parts.append(f"{_steps(dx)} to the right")
    elif dx < 0:
        parts.append(f"{_steps(-dx)} to the left")
    return " and ".join(parts) or "here"


def state_of(obj: WorldObj) -> str:
    if obj.type != "door":
        return ""
    return "open" if obj.is_open else "locked" if obj.is_locked else "closed"


def describe(obj: WorldObj, label: str) -> str:
    state = state_of(obj)
    words = f"{state} {label}" if state else label
    return f"{'an' if words[0] in 'aeiou' else 'a'} {words}"


def relative(env: RoomGridLevel, x: int, y: int) -> tuple[int, int]:
    """(dx, dy): steps to the right and steps ahead of the agent."""
    ax, ay = env.agent_pos
    fx, fy = DIR_VECS[env.agent_dir]
    ox, oy = int(x - ax), int(y - ay)
    return ox * -fy + oy * fx, ox * fx + oy * fy


def _walls(env: RoomGridLevel, visible: set[tuple[int, int]]) -> list[tuple[str, int, int]]:
    """The nearest wall straight ahead, to the left and to the right, where it is in view."""
    ax, ay = env.agent_pos
    fx, fy = DIR_VECS[env.agent_dir]
    found = []
    for name, (vx, vy) in (("ahead", (fx, fy)), ("left", (fy, -fx)), ("right", (-fy, fx))):
        for n in range(1, env.agent_view_size):
            cell = (ax + vx * n, ay + vy * n)
            if cell not in visible:
                break
            obj = env.grid.get(*cell)
            if obj is not None and obj.type == "wall":
                found.append((name, *relative(env, *cell)))
                break
            if obj is not None and obj.type != "door":
                break
    return found


def render(env: RoomGridLevel, seen: np.ndarray, visible: list[tuple[int, int]], labels: dict[int, str]) -> tuple[str, dict[str, Any]]:
    in_view, remembered = [], []
    visible_set = set(visible)
    width = env.width
    for index, obj in enumerate(env.grid.grid):
        if obj is None or obj.type == "wall":
            continue
        x, y = index % width, index // width
        if not seen[x, y]:
            continue
        dx, dy = relative(env, x, y)
        item = {"label": labels[id(obj)], "color": obj.color, "type": obj.type, "state": state_of(obj), "dx": dx, "dy": dy}
        (in_view if (x, y) in visible_set else remembered).append((obj, item))
    order = lambda pair: (abs(pair[1]["dx"]) + abs(pair[1]["dy"]), -pair[1]["dy"], pair[1]["dx"], pair[1]["label"])  # noqa: E731
    in_view.sort(key=order)
    remembered.sort(key=order)
    walls = _walls(env, visible_set)
    carrying = labels[id(env.carrying)] if env.carrying is not None else None

    lines = [f"Your mission: {env.mission}.", f"You are carrying {'a ' + carrying if carrying else 'nothing'}."]
    seen_lines = [f"- {describe(obj, item['label'])} {where(item['dx'], item['dy'])}" for obj, item in in_view]
    seen_lines += [f"- a wall {where(dx, dy)}" for _, dx, dy in walls]
    lines.append("You see:" if seen_lines else "You see nothing around you.")
    lines.extend(seen_lines)
    if remembered:
        lines.append("You remember, out of view:")
        lines.extend(f"- {describe(obj, item['label'])} {where(item['dx'], item['dy'])}" for obj, item in remembered)
    fields = {
        "mission": env.mission,
        "carrying": carrying,
        "direction": DIR_NAMES[env.agent_dir],
        "visible": [item for _, item in in_view],
        "remembered": [item for _, item in remembered],
        "walls": [{"side": side, "dx": dx, "dy": dy} for side, dx, dy in walls],
    }
    return "\n".join(lines), fields
