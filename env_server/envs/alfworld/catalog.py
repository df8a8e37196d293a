"""What the `alfworld` package ships, read once per process: floor-plan layouts, receptacles, object classes, goals."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from alfworld.gen import constants, goal_library

# Our short task names -> ALFRED's task types (the `traj_data["task_type"]` values).
TASK_TYPES: dict[str, str] = {
    "pick_and_place": "pick_and_place_simple",
    "look_at_obj_in_light": "look_at_obj_in_light",
    "pick_clean_then_place": "pick_clean_then_place_in_recep",
    "pick_heat_then_place": "pick_heat_then_place_in_recep",
    "pick_cool_then_place": "pick_cool_then_place_in_recep",
    "pick_two_obj_and_place": "pick_two_obj_and_place",
}
SHORT_NAMES: dict[str, str] = {v: k for k, v in TASK_TYPES.items()}

# The receptacle class a state-change task needs in the room.
STATION: dict[str, str] = {
    "pick_clean_then_place": "SinkBasin",
    "pick_heat_then_place": "Microwave",
    "pick_cool_then_place": "Fridge",
}
# The property an object class must have for a state-change task.
ACTION_PROPERTY: dict[str, str] = {
    "pick_clean_then_place": "Cleanable",
    "pick_heat_then_place": "Heatable",
    "pick_cool_then_place": "Coolable",
}
LAMPS = ("DeskLamp", "FloorLamp")
OPENABLE = frozenset(constants.OPENABLE_CLASS_LIST)


@dataclass(frozen=True, slots=True)
class Receptacle:
    """A fixed receptacle of a floor plan: its AI2-THOR id, class and the pose the agent stands at to reach it."""

    thor_id: str  # e.g. "Cabinet|-00.49|+00.41|+02.06" or "Sink|-00.30|+00.80|+02.42|SinkBasin"
    cls: str
    x: float
    z: float
    rotation: int
    horizon: int

    @property
    def openable(self) -> bool:
        return self.cls in OPENABLE


@dataclass(frozen=True, slots=True)
class Scene:
    number: int
    room: str  # Kitchen, LivingRoom, Bedroom, Bathroom
    receptacles: tuple[Receptacle, ...]
    object_classes: tuple[str, ...]  # pickupable ALFRED classes present in the floor plan
    lamp: str | None
    floor: tuple[tuple[float, float], ...]  # reachable (x, z) grid points


def _room(number: int) -> str:
    return next(name for name, numbers in constants.SCENE_TYPE.items() if number in numbers)


def _receptacle_class(thor_id: str) -> str:
    parts = thor_id.split("|")
    return parts[4] if len(parts) > 4 else parts[0]  # "Sink|x|y|z|SinkBasin" is the basin


@functools.cache
def pickupable_classes() -> frozenset[str]:
    """Classes some receptacle can hold, sliced variants left out (ALFWorld skips sliced tasks)."""
    held = set().union(*constants.VAL_RECEPTACLE_OBJECTS.values())
    return frozenset(c for c in held if "Sliced" not in c and c in constants.OBJECTS_SET)


@functools.cache
def entity_words() -> tuple[str, ...]:
    """Every object and receptacle class, lowercase, as ALFWorld's text names them (`apple 1`, `put a clean apple in
    fridge`); no class name is a word of ALFWorld's grammar, so renaming them never touches the commands' verbs."""
    return tuple(sorted({c.lower() for c in (*constants.OBJECTS, *constants.RECEPTACLES)}))


def can_hold(receptacle_cls: str, object_cls: str) -> bool:
    return object_cls in constants.VAL_RECEPTACLE_OBJECTS.get(receptacle_cls, ())


def has_property(object_cls: str, prop: str) -> bool:
    return object_cls in constants.VAL_ACTION_OBJECTS[prop]


def _layouts() -> Path:
    return Path(str(resources.files("alfworld.gen") / "layouts"))


def _load_scene(number: int) -> Scene | None:
    root = _layouts()
    poses = json.loads((root / f"FloorPlan{number}-openable.json").read_text())
    classes = json.loads((root / f"FloorPlan{number}-objects.json").read_text())
    floor = np.load(root / f"FloorPlan{number}-layout.npy")
    receptacles = tuple(
        Receptacle(tid, _receptacle_class(tid), float(p[0]), float(p[1]), int(p[2]), int(p[3]))
        for tid, p in sorted(poses.items())
        if _receptacle_class(tid) in constants.RECEPTACLES
    )
    if not receptacles:
        return None
    lamp = next((c for c in LAMPS if c in classes), None)
    return Scene(
        number=number,
        room=_room(number),
        receptacles=receptacles,
        object_classes=tuple(sorted(c for c in set(classes) if c in pickupable_classes())),
        lamp=lamp,
        floor=tuple((float(x), float(z)) for x, z in floor),
    )


@functools.cache
def scenes(unseen: bool) -> tuple[Scene, ...]:
    """ALFRED's train floor plans (seen) or its test floor plans (unseen), in scene-number order."""
    numbers = constants.TEST_SCENE_NUMBERS if unseen else constants.TRAIN_SCENE_NUMBERS
    loaded = (_load_scene(n) for n in sorted(numbers) if (_layouts() / f"FloorPlan{n}-openable.json").exists())
    return tuple(s for s in loaded if s is not None)


@functools.cache
def domain_and_grammar() -> tuple[str, str]:
    """ALFWorld's PDDL domain and its TextWorld grammar (with the `UNKNOWN GOAL` placeholder)."""
    data = resources.files("alfworld") / "data"
    return (data / "alfred.pddl").read_text(), (data / "alfred.twl2").read_text()


def goal_pddl(task_type: str, obj: str, recep: str, toggle: str) -> str:
    """The `(:goal ...)` block (and the problem's closing parenthesis) from ALFRED's goal library."""
    template = goal_library.gdict[TASK_TYPES[task_type]]["pddl"]
    return template.format(obj=obj, recep=recep, toggle=toggle, mrecep="").replace("#", "-")


def goal_text(task_type: str, obj: str, recep: str, toggle: str, choice: int) -> str:
    templates = goal_library.gdict[TASK_TYPES[task_type]]["templates"]
    template = templates[choice % len(templates)]
    return template.format(obj=obj.lower(), recep=recep.lower(), toggle=toggle.lower(), mrecep="")
