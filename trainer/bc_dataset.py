"""Oracle demonstrations as chat JSONL for supervised warm starts, and the tasks they may come from.

Each line is one oracle episode, recorded through the env servers (any interface), as OpenRLHF's multi-turn SFT
format: {"messages": [{"role": "user", ...}, {"role": "assistant", ...}, ...], "env", "task_id", "split",
"difficulty", "seed", "interface", "turns"}. Train on it with `--data.input_key messages --data.apply_chat_template
--data.multiturn` (trainer/sft_launch.py). Only won episodes are written; the task ids used go to a sidecar
`<out>.tasks.json`, so held-out evaluation can be checked disjoint from them.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Collection, Iterable, Sequence

import click

from env_server.tasks import sample_tasks
from env_server.types import TaskInfo
from trainer.client.errors import EnvCallError
from trainer.datasets import Interface, interface_json, parse_interface
from trainer.episodes import EpisodeRunner, EpisodeSpec
from trainer.policies.base import Message, Turn

TaskLister = Callable[[str, str], Awaitable[Sequence[TaskInfo]]]  # (split, difficulty) -> tasks of one env


@dataclass(frozen=True, slots=True)
class Demonstration:
    """One won oracle episode as chat messages (ending with the oracle's last action)."""

    env: str
    task: TaskInfo
    seed: int
    interface: str
    messages: tuple[Message, ...]

    def record(self) -> dict[str, Any]:
        return {"messages": [{"role": m.role, "content": m.content} for m in self.messages], "env": self.env,
                "task_id": self.task.task_id, "split": self.task.split, "difficulty": self.task.difficulty,
                "seed": self.seed, "interface": self.interface,
                "turns": sum(m.role == "assistant" for m in self.messages)}


def pick_tasks(tasks: Sequence[TaskInfo], count: int, seed: int, *, match: str = "",
               exclude: Collection[str] = ()) -> list[TaskInfo]:
    """`count` tasks (all, when fewer match) whose id matches the regex `match`, none of them in `exclude`,
    drawn with `seed`, in id order. Raises ValueError when nothing is left to draw from."""
    if count < 1:
        raise ValueError(f"need at least one task, got {count}")
    try:
        pattern = re.compile(match) if match else None
    except re.error as err:
        raise ValueError(f"bad task pattern {match!r}: {err}") from None
    banned = set(exclude)
    candidates = [t for t in tasks if t.task_id not in banned and (pattern is None or pattern.search(t.task_id))]
    if not candidates:
        raise ValueError(f"no task matches {match!r} outside the {len(banned)} excluded" if match
                         else f"no tasks left outside the {len(banned)} excluded")
    return sorted(sample_tasks(candidates, count, seed), key=lambda t: t.task_id)


@dataclass(frozen=True, slots=True)
class TaskChoice:
    """Warm-start tasks and held-out evaluation tasks of one environment; never sharing an id."""

    warm_start: tuple[TaskInfo, ...]
    held_out: tuple[TaskInfo, ...]

    def __post_init__(self) -> None:
        check_disjoint((t.task_id for t in self.warm_start), (t.task_id for t in self.held_out))


def check_disjoint(warm_start: Iterable[str], held_out: Iterable[str]) -> None:
    """Raises ValueError naming the shared ids when a warm-start task would also be evaluated."""
    shared = sorted(set(warm_start) & set(held_out))
    if shared:
        more = f" and {len(shared) - 3} more" if len(shared) > 3 else ""
        raise ValueError(f"warm-start and held-out tasks share {', '.join(shared[:3])}{more}")


def choose_tasks(tasks: Callable[[str], Sequence[TaskInfo]], *, warm_start: int, held_out: int, seed: int,
                 match: str = "", warm_split: str = "train", held_out_split: str = "test") -> TaskChoice:
    """Held-out tasks first (from `held_out_split`), then warm-start tasks from `warm_split` excluding them:
    disjoint even when both splits are the same. `tasks(split)` lists one difficulty's tasks of a split."""
    evaluated = pick_tasks(tasks(held_out_split), held_out, seed, match=match)
    trained = pick_tasks(tasks(warm_split), warm_start, seed, match=match,
                         exclude={t.task_id for t in evaluated})
    return TaskChoice(tuple(trained), tuple(evaluated))


def spread(total: int, parts: int) -> list[int]:
    """`total` split over `parts` as evenly as possible, the first parts taking the remainder."""
    return [total // parts + (i < total % parts) for i in range(parts)]


async def server_tasks(target: str, timeout_s: float = 30.0) -> TaskLister:
    """A lister over one env server (ListTasks)."""
    from trainer.client.env_client import AsyncEnvClient

    async def list_tasks(split: str, difficulty: str) -> Sequence[TaskInfo]:
        async with AsyncEnvClient(target, timeout_s=timeout_s) as client:
            return await client.list_tasks(split, difficulty)

    return list_tasks


async def plan_tasks(list_tasks: TaskLister, cells: Sequence[tuple[str, str]], episodes: int, seed: int, *,
                     match: str = "", exclude: Collection[str] = ()) -> list[tuple[TaskInfo, int]]:
    """(task, episode seed) pairs: `episodes` spread over the (split, difficulty) cells, each cell's tasks drawn
    with `seed`; when a cell has fewer tasks than its share, its tasks repeat with episode seeds 1, 2, ..."""
    if not cells:
        raise ValueError("no (split, difficulty) cells given")
    plan: list[tuple[TaskInfo, int]] = []
    for (split, difficulty), share in zip(cells, spread(episodes, len(cells))):
        if share == 0:
            continue
        listed = await list_tasks(split, difficulty)
        if not listed:
            raise ValueError(f"no tasks in split {split!r} at difficulty {difficulty!r}")
        chosen = pick_tasks(listed, share, seed, match=match, exclude=exclude)
        plan += [(chosen[i % len(chosen)], i // len(chosen)) for i in range(share)]
    return plan


class _RecordingOracle:
    """The oracle as a text policy that keeps the chat it was shown (one instance per episode)."""

    name = "oracle"

    def __init__(self) -> None:
        self.messages: tuple[Message, ...] = ()

    async def act(self, turn: Turn) -> str:
        action = await turn.oracle()
        self.messages = (*turn.messages, Message("assistant", action))
        return action


async def record_demonstrations(runner: EpisodeRunner, env: str, plan: Sequence[tuple[TaskInfo, int]], *,
                                interface: Interface = (), max_turns: int = 0) -> tuple[list[Demonstration], list[str]]:
    """Play the oracle on every planned episode; returns the won ones and the reasons the others were not."""

    async def one(task: TaskInfo, seed: int) -> Demonstration | str:
        oracle = _RecordingOracle()
        trajectory = await runner.run(EpisodeSpec(env, task.task_id, seed, interface=interface,
                                                  max_turns=max_turns), oracle)
        if not trajectory.success:
            return f"{task.task_id}: {trajectory.status}" + (f" ({trajectory.reason})" if trajectory.reason else "")
        return Demonstration(env, task, seed, trajectory.interface, oracle.messages)

    results = await asyncio.gather(*(one(task, seed) for task, seed in plan))
    return [r for r in results if isinstance(r, Demonstration)], [r for r in results if isinstance(r, str)]


def tasks_path(out: str | Path) -> Path:
    return Path(out).with_suffix(".tasks.json")


def write_demonstrations(out: str | Path, demonstrations: Sequence[Demonstration], **manifest: Any) -> Path:
    """The JSONL file and its `.tasks.json` sidecar (task ids per env, plus `manifest`); returns the JSONL path."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(d.record(), sort_keys=True) + "\n" for d in demonstrations))
    ids: dict[str, list[str]] = {}
    for demo in demonstrations:
        ids.setdefault(demo.env, [])
        if demo.task.task_id not in ids[demo.env]:
            ids[demo.env].append(demo.task.task_id)
    tasks_path(path).write_text(json.dumps({**manifest, "episodes": len(demonstrations), "task_ids": ids},
                                           indent=2, sort_keys=True) + "\n")
    return path


def read_task_ids(path: str | Path) -> set[str]:
    """Task ids in a `.tasks.json` sidecar, a JSON list, or a text file of one id a line."""
    text = Path(path).read_text()
    try:
        body = json.loads(text)
    except json.JSONDecodeError:
        return {line.strip() for line in text.splitlines() if line.strip()}
    if isinstance(body, dict):
        body = [i for ids in body.get("task_ids", {}).values() for i in ids]
    if not isinstance(body, list) or not all(isinstance(i, str) for i in body):
        raise ValueError(f"{path}: give a .tasks.json file, a JSON list of task ids or one id a line")
    return set(body)


async def collect(out: Path, env: str, endpoint: str, cells: Sequence[tuple[str, str]], episodes: int, seed: int,
                  *, match: str, exclude: Collection[str], interface: Interface, max_turns: int,
                  system_prompt: str) -> tuple[int, list[str]]:
    from trainer.client.pool import EnvPool

    list_tasks = await server_tasks(endpoint.split(",")[0].strip())
    plan = await plan_tasks(list_tasks, cells, episodes, seed, match=match, exclude=exclude)
    async with EnvPool(endpoint, env=env) as pool:
        runner = EpisodeRunner(pool, system_prompt=system_prompt)
        demonstrations, lost = await record_demonstrations(runner, env, plan, interface=interface,
                                                           max_turns=max_turns)
    if not demonstrations:
        raise ValueError(f"the oracle won none of {len(plan)} episodes; first: {lost[0]}")
    write_demonstrations(out, demonstrations, env=env, cells=[list(c) for c in cells], match=match, seed=seed,
                         interface=interface_json(interface), system_prompt=system_prompt, lost=lost)
    return len(demonstrations), lost


def _csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


@click.command("bc-data")
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--env", required=True, help="Environment name, e.g. babyai.")
@click.option("--endpoint", required=True, help="host:port[,host:port...] of its servers (run with --enable-oracle).")
@click.option("--split", "splits", default="train", show_default=True, help="Comma-separated splits.")
@click.option("--difficulty", "difficulties", default="easy", show_default=True, help="Comma-separated difficulties.")
@click.option("--episodes", default=100, show_default=True, help="Episodes, spread over the split x difficulty cells.")
@click.option("--match", default="", help="Regex a task id must match, e.g. GoToLocal.")
@click.option("--exclude-tasks", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Task ids never to record (held-out evaluation): a .tasks.json, a JSON list or one id a line.")
@click.option("--interface", default="", help="Preset name or JSON list of adapters (default: the env's own).")
@click.option("--max-turns", default=0, show_default=True, help="Turn limit (0: the environment's default).")
@click.option("--system-prompt", default="", help="A system message opening every episode.")
@click.option("--seed", default=0, show_default=True, help="Seeds the task draw.")
def bc_data_command(out: str, env: str, endpoint: str, splits: str, difficulties: str, episodes: int, match: str,
                    exclude_tasks: str | None, interface: str, max_turns: int, system_prompt: str, seed: int) -> None:
    """Record oracle episodes as chat JSONL for supervised warm starts (OpenRLHF's multi-turn SFT format)."""
    try:
        if episodes < 1 or max_turns < 0:
            raise ValueError(f"need --episodes >= 1 and --max-turns >= 0, got {episodes} and {max_turns}")
        cells = [(s, d) for s in _csv(splits) for d in _csv(difficulties)]
        exclude = read_task_ids(exclude_tasks) if exclude_tasks else set()
        count, lost = asyncio.run(collect(Path(out), env, endpoint, cells, episodes, seed, match=match,
                                          exclude=exclude, interface=parse_interface(interface),
                                          max_turns=max_turns, system_prompt=system_prompt))
    except (ValueError, OSError, EnvCallError) as err:
        raise click.ClickException(str(err).splitlines()[0] if str(err) else repr(err)) from None
    click.echo(f"wrote {count} oracle episodes to {out} (task ids in {tasks_path(out)})"
               + (f"; {len(lost)} not won, left out" if lost else ""))
