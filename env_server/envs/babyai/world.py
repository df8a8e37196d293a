"""What the agent knows of a BabyAI grid: object labels, the cells it has seen, and a planner over them."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from minigrid.core.world_object import WorldObj
from minigrid.envs.babyai.core.roomgrid_level import RoomGridLevel

# minigrid's directions: 0 east, 1 south, 2 west, 3 north (x grows east, y grows south).
DIR_VECS = ((1, 0), (0, 1), (-1, 0), (0, -1))
DIR_NAMES = ("east", "south", "west", "north")

LEFT, RIGHT, FORWARD, PICKUP, DROP, TOGGLE = 0, 1, 2, 3, 4, 5
NAV = (LEFT, RIGHT, FORWARD)

Pose = tuple[int, int, int]  # x, y, direction


def label_objects(env: RoomGridLevel) -> dict[int, str]:
    """Name every non-wall object once per episode: `red ball`, or `red ball 1`, `red ball 2` in row-major order.

    Names are keyed by object identity, which minigrid keeps when objects are carried and dropped.
    """
    objs: list[WorldObj] = []
    for y in range(env.height):
        for x in range(env.width):
            obj = env.grid.get(x, y)
            if obj is not None and obj.type != "wall":
                objs.append(obj)
    if env.carrying is not None:
        objs.append(env.carrying)
    counts: dict[str, int] = {}
    for obj in objs:
        base = f"{obj.color} {obj.type}"
        counts[base] = counts.get(base, 0) + 1
    seen: dict[str, int] = {}
    labels = {}
    for obj in objs:
        base = f"{obj.color} {obj.type}"
        if counts[base] == 1:
            labels[id(obj)] = base
        else:
            seen[base] = seen.get(base, 0) + 1
            labels[id(obj)] = f"{base} {seen[base]}"
    return labels


def visible_cells(env: RoomGridLevel) -> list[tuple[int, int]]:
    """World coordinates of the cells in the agent's field of view, as minigrid computes it (walls occlude)."""
    _, vis = env.gen_obs_grid()
    size = env.agent_view_size
    x0, y0 = env.agent_pos
    fx, fy = DIR_VECS[env.agent_dir]
    rx, ry = -fy, fx
    cells = []
    for vj in range(size):
        ahead = size - 1 - vj
        for vi in range(size):
            if not vis[vi, vj]:
                continue
            right = vi - size // 2
            x, y = x0 + fx * ahead + rx * right, y0 + fy * ahead + ry * right
            if 0 <= x < env.width and 0 <= y < env.height:
                cells.append((x, y))
    return cells


def passable(obj: WorldObj | None) -> bool:
    return obj is None or (obj.type == "door" and obj.is_open) or obj.can_overlap()


@dataclass(slots=True)
class Plans:
    """Shortest primitive plans from one pose over the seen, passable cells (turns and moves cost 1 each)."""

    start: Pose
    parent: dict[Pose, tuple[Pose, int]]

    def to_face(self, target: tuple[int, int]) -> tuple[int, ...] | None:
        """The shortest plan that ends next to `target` and facing it, or None if no known path exists."""
        best: Pose | None = None
        best_len = -1
        for d, (dx, dy) in enumerate(DIR_VECS):
            pose = (target[0] - dx, target[1] - dy, d)
            if pose not in self.parent and pose != self.start:
                continue
            length = len(self._path(pose))
            if best is None or length < best_len:
                best, best_len = pose, length
        return None if best is None else self._path(best)

    def _path(self, pose: Pose) -> tuple[int, ...]:
        actions = []
        while pose != self.start:
            pose, action = self.parent[pose]
            actions.append(action)
        return tuple(reversed(actions))


def plan_from(env: RoomGridLevel, seen: np.ndarray) -> Plans:
    """Breadth-first search over poses; forward moves only into seen, passable cells."""
    x0, y0 = env.agent_pos
    start = (int(x0), int(y0), int(env.agent_dir))
    parent: dict[Pose, tuple[Pose, int]] = {}
    queue = deque([start])
    grid, width, height = env.grid, env.width, env.height
    while queue:
        pose = queue.popleft()
        x, y, d = pose
        dx, dy = DIR_VECS[d]
        nx, ny = x + dx, y + dy
        steps = [((x, y, (d - 1) % 4), LEFT), ((x, y, (d + 1) % 4), RIGHT)]
        if 0 <= nx < width and 0 <= ny < height and seen[nx, ny] and passable(grid.get(nx, ny)):
            steps.insert(0, ((nx, ny, d), FORWARD))
        for nxt, action in steps:
            if nxt != start and nxt not in parent:
                parent[nxt] = (pose, action)
                queue.append(nxt)
    return Plans(start, parent)


def turns_to_face(agent_dir: int, offset: tuple[int, int]) -> tuple[int, ...] | None:
    """Turns that make the agent face a neighbouring cell at `offset`, or None if it is not a neighbour."""
    if offset not in DIR_VECS:
        return None
    delta = (DIR_VECS.index(offset) - agent_dir) % 4
    return ((), (RIGHT,), (RIGHT, RIGHT), (LEFT,))[delta]
