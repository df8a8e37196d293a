"""Where games come from: the generator (cached on disk) or a mounted directory of real json_2.1.1 game files."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from env_server.envs.alfworld import catalog, generator
from env_server.envs.alfworld.difficulty import DIFFICULTIES, TYPES_BY_DIFFICULTY, Features, classify

GENERATED_SPLITS = ("train", "valid_seen", "valid_unseen")
REAL_SPLITS = ("train", "valid_seen", "valid_unseen", "valid_train")
# Generated tasks per (split, difficulty, task type).
PER_TYPE = {"train": 1000, "valid_seen": 40, "valid_unseen": 40}
# ALFRED's unseen living rooms and bedrooms are all small and mostly open, so no look_at game there reaches medium.
_UNREACHABLE = {("valid_unseen", "medium", "look_at_obj_in_light")}
_TASK_RE = re.compile(r'"Your task is to: (.*?)"')
_GEN_ID = re.compile(r"^alfworld/(?P<split>[a-z_]+)/(?P<difficulty>[a-z]+)/(?P<type>[a-z_]+)-(?P<index>\d{5})$")


@dataclass(frozen=True, slots=True)
class GameFiles:
    game: dict[str, Any]  # the parsed game.tw-pddl
    task_text: str


def task_text(game: dict[str, Any]) -> str:
    match = _TASK_RE.search(game["grammar"])
    return match.group(1) if match else ""


def task_types(split: str, difficulty: str) -> tuple[str, ...]:
    """The task types the generator can produce for a split and difficulty, in listing order."""
    return tuple(t for t in TYPES_BY_DIFFICULTY[difficulty] if (split, difficulty, t) not in _UNREACHABLE)


def generated_id(split: str, difficulty: str, task_type: str, index: int) -> str:
    return f"alfworld/{split}/{difficulty}/{task_type}-{index:05d}"


def parse_generated_id(task_id: str) -> tuple[str, str, str, int] | None:
    m = _GEN_ID.match(task_id)
    if not m or m["split"] not in PER_TYPE or m["difficulty"] not in DIFFICULTIES:
        return None
    if m["type"] not in task_types(m["split"], m["difficulty"]) or int(m["index"]) >= PER_TYPE[m["split"]]:
        return None
    return m["split"], m["difficulty"], m["type"], int(m["index"])


def default_cache_dir() -> Path:
    env = os.environ.get("SHIFTGYM_ALFWORLD_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "shiftgym" / "alfworld"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


class GeneratedGames:
    """Games from the generator; the cache only saves time, since generation is deterministic."""

    def __init__(self, cache_dir: Path) -> None:
        self._root = cache_dir / f"generated-v{generator.GENERATOR_VERSION}"

    def path(self, split: str, difficulty: str, task_type: str, index: int) -> Path:
        return self._root / split / difficulty / f"{task_type}-{index:05d}"

    def load(self, split: str, difficulty: str, task_type: str, index: int) -> GameFiles:
        folder = self.path(split, difficulty, task_type, index)
        game_file = folder / "game.tw-pddl"
        if not game_file.exists():
            made = generator.generate(split, difficulty, task_type, index)
            folder.mkdir(parents=True, exist_ok=True)
            _write_atomic(folder / "traj_data.json", made.traj_json)
            _write_atomic(game_file, made.game_json)
        game = json.loads(game_file.read_text())
        return GameFiles(game, task_text(game))


def write_json_211(root: Path, split: str, difficulty: str, task_type: str, index: int) -> Path:
    """Write one generated game into ALFWorld's `json_2.1.1/<split>/<task dir>/<trial>/` layout; returns the trial dir."""
    made = generator.generate(split, difficulty, task_type, index)
    trial = json.loads(made.traj_json)["task_id"]
    folder = root / "json_2.1.1" / split / made.task_dir / trial
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "traj_data.json").write_text(made.traj_json)
    (folder / "game.tw-pddl").write_text(made.game_json)
    return folder


@dataclass(frozen=True, slots=True)
class RealGame:
    task_id: str
    split: str
    difficulty: str
    game_file: Path
    task_type: str  # short name
    features: Features


def _features(game: dict[str, Any], traj: dict[str, Any]) -> Features:
    problem: str = game["pddl_problem"]
    openable = set(re.findall(r"\(openable (\S+)\)", problem))
    target = traj["pddl_params"]["object_target"]
    homes = re.findall(rf"\(inReceptacle ({re.escape(target)}_bar_\S+) (\S+)\)", problem)
    return Features(
        task_type=catalog.SHORT_NAMES[traj["task_type"]],
        receptacles=len(re.findall(r"\S+ - receptacle\b", problem)),
        closed=len(openable),
        hidden=bool(homes) and all(r in openable for _, r in homes),
        plan_length=len(game.get("walkthrough") or []),
    )


def scan_real(data_dir: Path) -> list[RealGame]:
    """Every game ALFWorld itself would load (same filters as `AlfredTWEnv`), sorted by task id."""
    root = data_dir / "json_2.1.1" if (data_dir / "json_2.1.1").is_dir() else data_dir
    found = []
    for split in REAL_SPLITS:
        for traj_file in sorted((root / split).glob("*/*/traj_data.json")):
            folder = traj_file.parent
            game_file = folder / "game.tw-pddl"
            if "movable" in str(folder) or "Sliced" in str(folder) or not game_file.exists():
                continue
            traj = json.loads(traj_file.read_text())
            game = json.loads(game_file.read_text())
            if traj.get("task_type") not in catalog.SHORT_NAMES or not game.get("solvable"):
                continue
            features = _features(game, traj)
            task_id = f"alfworld/{split}/{folder.parent.name}/{folder.name}"
            found.append(RealGame(task_id, split, classify(features), game_file, features.task_type, features))
    return sorted(found, key=lambda g: g.task_id)
