"""Deterministic ALFWorld games from ALFRED floor plans: PDDL problem, grammar with the task text, trajectory data.

A game is a function of (split, difficulty, task type, index): every random draw comes from an RNG seeded by a
hash of those four values and an attempt counter. Drafts whose difficulty misses the requested level are
redrawn; the planner's optimal plan is both the solvability check and the walkthrough.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, replace

from env_server.envs.alfworld import catalog, engine
from env_server.envs.alfworld.catalog import Receptacle, Scene
from env_server.envs.alfworld.difficulty import Features, classify

GENERATOR_VERSION = "1"
_MAX_ATTEMPTS = 400
_P_HIDDEN = {"easy": 0.1, "medium": 0.5, "hard": 0.9}
_BASE_PLAN = {
    "pick_and_place": 4,
    "look_at_obj_in_light": 4,
    "pick_clean_then_place": 6,
    "pick_heat_then_place": 6,
    "pick_cool_then_place": 6,
    "pick_two_obj_and_place": 8,
}


@dataclass(frozen=True, slots=True)
class Placed:
    thor_id: str
    cls: str
    receptacle: Receptacle


@dataclass(frozen=True, slots=True)
class Draft:
    scene: Scene
    task_type: str
    target: str
    dest: str  # receptacle class, "" for look_at
    toggle: str  # lamp class, "" unless look_at
    objects: tuple[Placed, ...]
    start: str  # the agent's start location, unmangled
    task_text: str
    features: Features  # plan_length estimated until the planner has run


@dataclass(frozen=True, slots=True)
class GeneratedGame:
    game_json: str  # the game.tw-pddl file, byte for byte
    traj_json: str  # the traj_data.json file
    task_dir: str  # json_2.1.1 folder name, e.g. "pick_and_place_simple-Apple-None-Fridge-7"
    features: Features


def mangle(thor_id: str) -> str:
    for old, new in (("|", "_bar_"), ("-", "_minus_"), ("+", "_plus_"), (".", "_dot_"), (",", "_comma_")):
        thor_id = thor_id.replace(old, new)
    return thor_id


def _location(x: float, z: float, rotation: int, horizon: int) -> str:
    return f"loc|{round(x / 0.25)}|{round(z / 0.25)}|{rotation // 90 % 4}|{horizon}"


def _recep_location(r: Receptacle) -> str:
    return _location(r.x, r.z, r.rotation, r.horizon)


def _seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:8], "big")


def _targets(scene: Scene, task_type: str) -> list[tuple[str, str]]:
    """(target class, destination class) pairs this scene supports for the task type."""
    station = catalog.STATION.get(task_type, "")
    present = {r.cls for r in scene.receptacles}
    if station and station not in present:
        return []
    pairs = []
    for obj in scene.object_classes:
        if obj in catalog.LAMPS:
            continue
        prop = catalog.ACTION_PROPERTY.get(task_type)
        if prop and not catalog.has_property(obj, prop):
            continue
        if task_type == "look_at_obj_in_light":
            dests = [""]
        else:
            dests = sorted(c for c in present if c != station and catalog.can_hold(c, obj))
        for dest in dests:
            if any(catalog.can_hold(r.cls, obj) and r.cls != dest for r in scene.receptacles):
                pairs.append((obj, dest))
    return pairs


def _eligible(scene: Scene, task_type: str) -> bool:
    if scene.room not in catalog.constants.GOALS_VALID[catalog.TASK_TYPES[task_type]]:
        return False
    if task_type == "look_at_obj_in_light":
        if scene.lamp is None or not any(not r.openable for r in scene.receptacles):
            return False
    return bool(_targets(scene, task_type))


def _object_id(rng: random.Random, cls: str, r: Receptacle, taken: set[str]) -> str:
    _, x, y, z = r.thor_id.split("|")[:4]
    while True:
        dx, dy, dz = (rng.randint(-40, 40) / 100 for _ in range(3))
        thor_id = f"{cls}|{float(x) + dx:+06.2f}|{float(y) + abs(dy) / 4:+06.2f}|{float(z) + dz:+06.2f}"
        if thor_id not in taken:
            taken.add(thor_id)
            return thor_id


def _draft(rng: random.Random, task_type: str, difficulty: str, pool: tuple[Scene, ...]) -> Draft | None:
    scene = rng.choice(pool)
    target, dest = rng.choice(_targets(scene, task_type))
    hidden = rng.random() < _P_HIDDEN[difficulty]
    station = catalog.STATION.get(task_type, "")
    homes = [r for r in scene.receptacles if catalog.can_hold(r.cls, target) and r.cls not in (dest, station)]
    if not homes:
        return None
    if not any(r.openable == hidden for r in homes):
        hidden = not hidden
    homes = [r for r in homes if r.openable == hidden]
    taken: set[str] = set()
    placed: list[Placed] = []
    low = 2 if task_type == "pick_two_obj_and_place" else 1
    for _ in range(rng.randint(low, low + 1)):
        r = rng.choice(homes)
        placed.append(Placed(_object_id(rng, target, r, taken), target, r))
    toggle = ""
    if task_type == "look_at_obj_in_light":
        toggle = scene.lamp or ""
        r = rng.choice([r for r in scene.receptacles if not r.openable])
        placed.append(Placed(_object_id(rng, toggle, r, taken), toggle, r))
    for cls in scene.object_classes:
        if cls == target or cls in catalog.LAMPS or rng.random() < 0.3:
            continue
        holders = [r for r in scene.receptacles if catalog.can_hold(r.cls, cls) and r.cls != dest]
        for _ in range(rng.randint(1, 2) if holders else 0):
            r = rng.choice(holders)
            placed.append(Placed(_object_id(rng, cls, r, taken), cls, r))
    occupied = {(r.x, r.z) for r in scene.receptacles}
    x, z = rng.choice([p for p in scene.floor if p not in occupied])
    start = _location(x, z, rng.choice((0, 90, 180, 270)), 30)
    dest_closed = any(r.cls == dest and r.openable for r in scene.receptacles)
    plan = _BASE_PLAN[task_type] + int(hidden) * (2 if low == 2 else 1) + int(dest_closed)
    features = Features(
        task_type=task_type,
        receptacles=len(scene.receptacles),
        closed=sum(r.openable for r in scene.receptacles),
        hidden=hidden,
        plan_length=plan,
    )
    text = catalog.goal_text(task_type, target, dest, toggle, rng.randrange(2))
    return Draft(scene, task_type, target, dest, toggle, tuple(placed), start, text, features)


def problem_pddl(d: Draft, name: str) -> str:
    """The `pddl_problem` text: objects, then the initial facts, then ALFRED's goal for the task type."""
    receps = d.scene.receptacles
    rtypes = sorted({r.cls for r in receps})
    otypes = sorted({o.cls for o in d.objects})
    locations = sorted({_recep_location(r) for r in receps} | {d.start})
    objects = ["agent1 - agent"]
    static = catalog.constants.RECEPTACLES - catalog.constants.MOVABLE_RECEPTACLES_SET
    all_otypes = (set(catalog.constants.OBJECTS) | catalog.constants.MOVABLE_RECEPTACLES_SET) - static
    objects += [f"{t}Type - otype" for t in sorted(all_otypes | set(otypes))]
    objects += [f"{t}Type - rtype" for t in sorted(static | set(rtypes))]
    objects += [f"{mangle(o.thor_id)} - object" for o in d.objects]
    objects += [f"{mangle(r.thor_id)} - receptacle" for r in receps]
    objects += [f"{mangle(loc)} - location" for loc in locations]
    init = [f"(atLocation agent1 {mangle(d.start)})"]
    for r in receps:
        rid = mangle(r.thor_id)
        init.append(f"(receptacleType {rid} {r.cls}Type)")
        init.append(f"(receptacleAtLocation {rid} {mangle(_recep_location(r))})")
        if r.openable:
            init.append(f"(openable {rid})")
    init += [f"(canContain {rt}Type {ot}Type)" for rt in rtypes for ot in otypes if catalog.can_hold(rt, ot)]
    for o in d.objects:
        oid = mangle(o.thor_id)
        init.append(f"(objectType {oid} {o.cls}Type)")
        init.append(f"(inReceptacle {oid} {mangle(o.receptacle.thor_id)})")
        init.append(f"(objectAtLocation {oid} {mangle(_recep_location(o.receptacle))})")
        if o.cls in catalog.LAMPS:
            init.append(f"(toggleable {oid})")
            continue
        init.append(f"(pickupable {oid})")
        for prop, fact in (("Cleanable", "cleanable"), ("Heatable", "heatable"), ("Coolable", "coolable")):
            if catalog.has_property(o.cls, prop):
                init.append(f"({fact} {oid})")
    goal = catalog.goal_pddl(d.task_type, d.target, d.dest, d.toggle)
    body = "\n        ".join(objects)
    facts = "\n        ".join(init)
    return f"\n(define (problem plan_{name})\n(:domain alfred)\n(:objects\n{body}\n)\n(:init\n{facts}\n)\n{goal}"


def _game(d: Draft, name: str, walkthrough: list[str] | None) -> dict[str, object]:
    domain, grammar = catalog.domain_and_grammar()
    return {
        "pddl_domain": domain,
        "grammar": grammar.replace("UNKNOWN GOAL", d.task_text),
        "pddl_problem": problem_pddl(d, name),
        "solvable": walkthrough is not None,
        "walkthrough": walkthrough,
    }


def _traj(d: Draft, name: str, seed: int, features: Features) -> dict[str, object]:
    return {
        "task_id": name,
        "task_type": catalog.TASK_TYPES[d.task_type],
        "pddl_params": {
            "object_target": d.target,
            "parent_target": d.dest,
            "mrecep_target": "",
            "toggle_target": d.toggle,
            "object_sliced": False,
        },
        "scene": {"floor_plan": f"FloorPlan{d.scene.number}", "scene_num": d.scene.number, "random_seed": seed},
        "turk_annotations": {"anns": []},
        "shiftgym": {
            "generator_version": GENERATOR_VERSION,
            "receptacles": features.receptacles,
            "closed": features.closed,
            "hidden": features.hidden,
            "plan_length": features.plan_length,
            "difficulty": classify(features),
        },
    }


def generate(split: str, difficulty: str, task_type: str, index: int) -> GeneratedGame:
    pool = tuple(s for s in catalog.scenes(unseen=split == "valid_unseen") if _eligible(s, task_type))
    for attempt in range(_MAX_ATTEMPTS):
        seed = _seed(GENERATOR_VERSION, split, difficulty, task_type, index, attempt)
        draft = _draft(random.Random(seed), task_type, difficulty, pool)
        if draft is None or classify(draft.features) != difficulty:
            continue
        name = f"trial_G{seed % 10**12:012d}"
        walkthrough = engine.plan(_game(draft, name, []))
        if walkthrough is None:
            continue
        features = replace(draft.features, plan_length=len(walkthrough))
        if classify(features) != difficulty:
            continue
        game = _game(draft, name, walkthrough)
        parent = draft.dest if draft.dest else draft.toggle
        return GeneratedGame(
            game_json=json.dumps(game),
            traj_json=json.dumps(_traj(draft, name, seed, features), indent=4),
            task_dir=f"{catalog.TASK_TYPES[task_type]}-{draft.target}-None-{parent}-{draft.scene.number}",
            features=features,
        )
    raise RuntimeError(f"no {difficulty} {task_type} game found for {split} index {index}")
