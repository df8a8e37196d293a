"""Difficulty of an ALFWorld game from its task type, room, hidden target and planner plan length."""

from __future__ import annotations

from dataclasses import dataclass

DIFFICULTIES = ("easy", "medium", "hard")

_TYPE_POINTS = {
    "pick_and_place": 0,
    "look_at_obj_in_light": 0,
    "pick_clean_then_place": 1,
    "pick_heat_then_place": 1,
    "pick_cool_then_place": 1,
    "pick_two_obj_and_place": 2,
}
LARGE_ROOM_RECEPTACLES = 20  # a room with at least this many receptacles scores a point
MANY_CLOSED = 12  # ... and one with at least this many closed containers another
LONG_PLAN = 8  # a plan of at least this many commands scores a point

# Which task types can reach which level (pick_two always plans >= 8 commands; pick/look never reach 4 points).
TYPES_BY_DIFFICULTY: dict[str, tuple[str, ...]] = {
    "easy": ("pick_and_place", "look_at_obj_in_light", "pick_clean_then_place", "pick_heat_then_place",
             "pick_cool_then_place"),
    "medium": tuple(_TYPE_POINTS),
    "hard": ("pick_clean_then_place", "pick_heat_then_place", "pick_cool_then_place", "pick_two_obj_and_place"),
}


@dataclass(frozen=True, slots=True)
class Features:
    task_type: str  # short name, e.g. "pick_and_place"
    receptacles: int
    closed: int  # openable receptacles, all closed at the start
    hidden: bool  # every instance of the target class starts inside a closed receptacle
    plan_length: int  # commands in the planner's optimal plan from the start


def points(f: Features) -> int:
    return (
        _TYPE_POINTS[f.task_type]
        + int(f.hidden)
        + int(f.receptacles >= LARGE_ROOM_RECEPTACLES)
        + int(f.closed >= MANY_CLOSED)
        + int(f.plan_length >= LONG_PLAN)
    )


def classify(f: Features) -> str:
    p = points(f)
    return "easy" if p <= 1 else "medium" if p <= 3 else "hard"


DEFINITION = (
    "points = task type (pick_and_place, look_at_obj_in_light: 0; clean/heat/cool: 1; pick_two: 2)"
    f" + 1 if the target starts hidden in a closed container + 1 if the room has >= {LARGE_ROOM_RECEPTACLES}"
    f" receptacles + 1 if it has >= {MANY_CLOSED} closed containers + 1 if the planner's optimal plan has"
    f" >= {LONG_PLAN} commands; easy <= 1, medium 2-3, hard >= 4"
)
