"""Build-time warm-up of the env-server image: pre-generate ALFWorld games into the image's game cache, then load
every environment and win one episode of each with its oracle, so a broken image fails the build, not a pod.

    python docker/warmup.py --envs babyai,textcraft,alfworld,webshop,searchqa --alfworld-games 4

WebShop's and SearchQA's indexes, BabyAI and TextCraft live in memory and take about a second to build per process;
only ALFWorld's generated games persist (in $SHIFTGYM_ALFWORLD_CACHE), and a hard one takes tens of seconds.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

from env_server import registry
from env_server.envs.base import Environment

_worker_env: Environment | None = None


def _eval_tasks(env: Environment, per_cell: int | None) -> list[str]:
    """Task ids of every split but `train`: all of them, or `per_cell` spread evenly over each split x difficulty
    (tasks are listed by task type, so an even spread covers the types)."""
    ids = []
    for split in env.spec.splits:
        if split.name == "train":
            continue
        for difficulty in env.spec.difficulties:
            tasks = env.tasks(split.name, difficulty)
            count = len(tasks) if per_cell is None else min(per_cell, len(tasks))
            ids += [tasks[i * len(tasks) // count].task_id for i in range(count)]
    return ids


def _init_worker() -> None:
    global _worker_env
    _worker_env = registry.load("alfworld")


def _generate(task_id: str) -> tuple[str, float]:
    assert _worker_env is not None
    start = time.monotonic()
    _worker_env.reset(task_id, 0).close()  # a cache miss generates the game and writes it to the cache
    return task_id, time.monotonic() - start


def pregenerate_alfworld(per_cell: int | None, workers: int) -> None:
    ids = _eval_tasks(registry.load("alfworld"), per_cell)
    if not ids:
        return
    start = time.monotonic()
    with ProcessPoolExecutor(max_workers=max(1, min(workers, len(ids))), initializer=_init_worker) as pool:
        for task_id, seconds in pool.map(_generate, ids):
            print(f"alfworld game {task_id}: {seconds:.1f}s", flush=True)
    print(f"alfworld: {len(ids)} games in {time.monotonic() - start:.0f}s", flush=True)


def win_one_episode(name: str) -> None:
    start = time.monotonic()
    env = registry.load(name)
    loaded = time.monotonic() - start
    split = next((s.name for s in env.spec.splits if s.name != "train"), env.spec.splits[0].name)
    task = env.tasks(split, env.spec.difficulties[0])[0]
    episode = env.reset(task.task_id, 0)
    result, turns = None, 0
    while result is None or not (result.done or result.truncated):
        result, turns = episode.step(episode.oracle_action()), turns + 1
    episode.close()
    if result.outcome is None or not result.outcome.success:
        sys.exit(f"warm-up: the {name} oracle did not win {task.task_id} (turns={turns})")
    print(f"{name}: loaded in {loaded:.1f}s, oracle won {task.task_id} in {turns} turns", flush=True)


def _per_cell(text: str) -> int | None:
    return None if text == "all" else int(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", default=",".join(registry.names()), help="comma-separated environments")
    parser.add_argument("--alfworld-games", type=_per_cell, default=0,
                        help="ALFWorld games to pre-generate per evaluation split x difficulty, or 'all'")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    envs = [name for name in args.envs.replace(" ", ",").split(",") if name]
    if "alfworld" in envs and args.alfworld_games != 0:
        pregenerate_alfworld(args.alfworld_games, args.workers)
    for name in envs:
        win_one_episode(name)


if __name__ == "__main__":
    main()
