"""Prompt JSONL for OpenRLHF: one line per (task, seed) of each evaluation cell, read by its PromptDataset.

Each line is {"prompt": ..., "label": <JSON episode spec>, "datasource": <cell name>}; launch with
`--data.input_key prompt --data.label_key label` and without `--data.apply_chat_template`. The label is all the
agent executor (trainer/openrlhf_agent.py) needs to play the episode. The prompt is a short unique line naming
the cell, task and seed, not the first observation: the executor renders the real first observation at Reset,
live, in the episode's interface, so nothing fetched offline could go stale; and OpenRLHF's evaluation maps
prompt text back to its datasource (ppo_trainer.compute_eval_metrics), so every line's prompt must be unique.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import click

from env_server.tasks import sample_tasks
from env_server.types import TaskInfo
from trainer.client.errors import EnvCallError
from trainer.episodes import EpisodeSpec

Interface = tuple[tuple[str, Mapping[str, str]], ...]


def parse_interface(value: Any) -> Interface:
    """An interface as JSON gives it: "" (the environment's own), a preset name ("listed_actions"), or a list of
    {"name": adapter, "params": {...}}. Raises ValueError saying what is wrong."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return parse_interface(json.loads(text))
        return (("preset", {"name": text}),)
    if isinstance(value, (list, tuple)):
        adapters = []
        for item in value:
            if isinstance(item, Mapping) and isinstance(item.get("name"), str) and set(item) <= {"name", "params"}:
                params = item.get("params") or {}
                if isinstance(params, Mapping) and all(isinstance(k, str) and isinstance(v, str)
                                                       for k, v in params.items()):
                    adapters.append((item["name"], dict(params)))
                    continue
            raise ValueError(f'bad adapter {item!r}: give {{"name": "...", "params": {{"key": "value"}}}}')
        return tuple(adapters)
    raise ValueError(f"bad interface {value!r}: give a preset name or a list of adapters")


def interface_json(interface: Interface) -> list[dict[str, Any]]:
    return [{"name": name, "params": dict(params)} for name, params in interface]


@dataclass(frozen=True, slots=True)
class EpisodeLabel:
    """The label OpenRLHF hands the executor with each prompt: which episode to play."""

    env: str
    task_id: str
    seed: int
    difficulty: str = ""
    interface: Interface | None = None  # None: the executor's default interface (SHIFTGYM_INTERFACE)
    max_turns: int = 0  # 0: the executor's per-environment setting, else the environment's default

    def to_json(self) -> str:
        body: dict[str, Any] = {"env": self.env, "task_id": self.task_id, "seed": self.seed,
                                "difficulty": self.difficulty}
        if self.interface is not None:
            body["interface"] = interface_json(self.interface)
        if self.max_turns:
            body["max_turns"] = self.max_turns
        return json.dumps(body, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | Mapping[str, Any]) -> "EpisodeLabel":
        if isinstance(text, Mapping):
            body: Any = dict(text)
        else:
            try:
                body = json.loads(text)
            except (TypeError, json.JSONDecodeError) as err:
                raise ValueError(f"label is not JSON ({err}): {str(text)[:80]!r}") from None
        if not isinstance(body, dict):
            raise ValueError(f"label must be a JSON object, got {type(body).__name__}")
        unknown = set(body) - {"env", "task_id", "seed", "difficulty", "interface", "max_turns"}
        if unknown:
            raise ValueError(f"label has unknown keys {sorted(unknown)}")
        for key in ("env", "task_id"):
            if not isinstance(body.get(key), str) or not body[key]:
                raise ValueError(f"label needs a non-empty string {key!r}")
        for key in ("seed", "max_turns"):
            if not isinstance(body.get(key, 0), int) or isinstance(body.get(key, 0), bool):
                raise ValueError(f"label's {key!r} must be an integer")
        return cls(body["env"], body["task_id"], body.get("seed", 0), str(body.get("difficulty") or ""),
                   parse_interface(body["interface"]) if "interface" in body else None, body.get("max_turns", 0))

    def spec(self, *, max_turns: int = 0, episode_id: str = "") -> EpisodeSpec:
        return EpisodeSpec(self.env, self.task_id, self.seed, interface=self.interface or (),
                           max_turns=self.max_turns or max_turns, episode_id=episode_id)


@dataclass(frozen=True, slots=True)
class PromptCell:
    """One cell of prompts: `tasks` tasks (0: all) of one env split and difficulty, each with every seed, through
    one interface. `name` becomes the lines' datasource, so OpenRLHF's eval metrics come per cell."""

    name: str
    env: str
    split: str
    difficulty: str
    interface: Interface = ()
    tasks: int = 0
    seeds: tuple[int, ...] = (0,)
    task_seed: int = 0  # which tasks are drawn when `tasks` is fewer than the split has
    max_turns: int = 0

    def __post_init__(self) -> None:
        if not self.name or self.tasks < 0 or not self.seeds:
            raise ValueError(f"a prompt cell needs a name, tasks >= 0 and at least one seed; got {self}")


def prompt_text(datasource: str, label: EpisodeLabel) -> str:
    return f"[{datasource}] Play {label.env} task {label.task_id} with seed {label.seed}."


def cell_records(cell: PromptCell, tasks: Sequence[TaskInfo]) -> list[dict[str, str]]:
    """The JSONL records of one cell over its environment's task list for (split, difficulty)."""
    chosen = sample_tasks(list(tasks), cell.tasks, cell.task_seed) if cell.tasks else list(tasks)
    records = []
    for task in sorted(chosen, key=lambda t: t.task_id):
        for seed in cell.seeds:
            label = EpisodeLabel(cell.env, task.task_id, seed, task.difficulty, cell.interface, cell.max_turns)
            records.append({"prompt": prompt_text(cell.name, label), "label": label.to_json(),
                            "datasource": cell.name})
    return records


TaskLister = Callable[[str, str, str], Sequence[TaskInfo]]  # (env, split, difficulty) -> tasks


def write_prompts(path: str | Path, cells: Iterable[PromptCell], list_tasks: TaskLister) -> int:
    """Write every cell's records to `path` (JSON Lines); returns the number of lines. Raises ValueError when a
    cell has no tasks or two lines would share a prompt."""
    lines: list[str] = []
    seen: set[str] = set()
    for cell in cells:
        records = cell_records(cell, list_tasks(cell.env, cell.split, cell.difficulty))
        if not records:
            raise ValueError(f"cell {cell.name!r}: {cell.env} has no tasks in split {cell.split!r}, difficulty "
                             f"{cell.difficulty!r}")
        for record in records:
            if record["prompt"] in seen:
                raise ValueError(f"two lines share the prompt {record['prompt']!r}: give each cell its own name")
            seen.add(record["prompt"])
            lines.append(json.dumps(record, sort_keys=True))
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(line + "\n" for line in lines))
    return len(lines)


def server_task_lister(endpoints: Mapping[str, str], timeout_s: float = 30.0) -> TaskLister:
    """List tasks through each environment's server (the first target of its endpoints)."""
    from trainer.client.env_client import EnvClient

    def list_tasks(env: str, split: str, difficulty: str) -> Sequence[TaskInfo]:
        if env not in endpoints:
            raise ValueError(f"no endpoint for env {env!r} (given: {', '.join(sorted(endpoints)) or 'none'})")
        target = endpoints[env].split(",")[0].strip()
        with EnvClient(target, timeout_s=timeout_s) as client:
            return client.list_tasks(split=split, difficulty=difficulty)

    return list_tasks


@click.command()
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--env", required=True, help="environment name, e.g. babyai")
@click.option("--endpoint", required=True, help="host:port of a server of that environment (lists its tasks)")
@click.option("--split", default="train", show_default=True)
@click.option("--difficulty", default="easy", show_default=True)
@click.option("--interface", default="", help='preset name or JSON list of {"name","params"} (default: original)')
@click.option("--tasks", default=0, show_default=True, help="tasks to draw (0: all)")
@click.option("--seeds", default="0", show_default=True, help="comma-separated episode seeds per task")
@click.option("--task-seed", default=0, show_default=True, help="seed of the task draw")
@click.option("--datasource", default="", help="cell name (default: env/split/difficulty[/interface])")
def main(out: str, env: str, endpoint: str, split: str, difficulty: str, interface: str, tasks: int, seeds: str,
         task_seed: int, datasource: str) -> None:
    """Write OpenRLHF prompt JSONL for one cell of tasks."""
    try:
        parsed = parse_interface(interface)
        shown = "custom" if interface.strip().startswith("[") else interface.strip()
        name = datasource or "/".join(part for part in (env, split, difficulty, shown) if part)
        cell = PromptCell(name, env, split, difficulty, parsed, tasks, tuple(int(s) for s in seeds.split(",")),
                          task_seed)
        count = write_prompts(out, [cell], server_task_lister({env: endpoint}))
    except (ValueError, OSError, EnvCallError) as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
    click.echo(f"wrote {count} prompts to {out}")


if __name__ == "__main__":
    main()
