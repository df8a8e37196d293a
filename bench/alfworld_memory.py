"""ALFWorld memory per game played, in-process: RSS, Python heap, Fast Downward library copies, TextWorld's
proposition cache and open files, every few games; the probe behind the soak test's ALFWorld figures.

    python -m bench.alfworld_memory --games 60 --every 10 [--tracemalloc]

RSS growing while the Python heap (tracemalloc) stays flat points at native memory; the mapped library copies and
the proposition cache are the two that used to grow with every game.
"""

from __future__ import annotations

import argparse
import os
import random
import time
import tracemalloc
from pathlib import Path

import mementos.core

from bench.transport import choose, rss_bytes, test_tasks
from env_server.envs.alfworld import AlfWorldEnv
from env_server.envs.alfworld.downward import LIBRARIES


def mapped_library_copies() -> int:
    maps = Path("/proc/self/maps").read_text().splitlines()
    return len({line.split(None, 5)[-1] for line in maps if "libdownward" in line})


def play(env: AlfWorldEnv, task_id: str, seed: int, turns: int, rng: random.Random) -> None:
    episode = env.reset(task_id, seed)
    observation = episode.observe()
    for _ in range(turns):
        result = episode.step(choose(observation.valid_actions, rng))
        observation = result.observation
        if result.done:
            break
    episode.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=60)
    parser.add_argument("--every", type=int, default=10, help="print a line every this many games")
    parser.add_argument("--turns", type=int, default=30, help="random valid actions per game at most")
    parser.add_argument("--tracemalloc", action="store_true", help="also trace the Python heap (slower)")
    args = parser.parse_args()
    tasks = test_tasks("alfworld")  # the soak test's tasks
    env = AlfWorldEnv()
    rng = random.Random(0)
    if args.tracemalloc:
        tracemalloc.start()
    started = time.monotonic()
    for game in range(1, args.games + 1):
        play(env, tasks[rng.randrange(len(tasks))], game, args.turns, rng)
        if game % args.every == 0 or game == 1:
            heap = f"{tracemalloc.get_traced_memory()[0] / 2**20:6.1f} MiB" if args.tracemalloc else "   (off)"
            print(f"games {game:4d}  RSS {rss_bytes(os.getpid()) / 2**20:7.1f} MiB  Python heap {heap}  "
                  f"library copies mapped {mapped_library_copies():3d} (loaded {LIBRARIES.loaded})  "
                  f"proposition cache {len(mementos.core._memento_cache):6d}  "
                  f"open fds {len(os.listdir('/proc/self/fd'))}  {time.monotonic() - started:5.0f} s", flush=True)


if __name__ == "__main__":
    main()
