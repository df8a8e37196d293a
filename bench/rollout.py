"""Rollout benchmark: episodes/s and steps/s through the env pool (EnvPool) against 1 and 3 env server processes,
next to raw AsyncSessionStream calls to the same servers, and the pool's client CPU overhead per step.

    python -m bench.rollout --out bench/results/rollout.md
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable

import uvloop

from bench.transport import ServerProc, choose, machine, test_tasks
from trainer.client.env_client import AsyncEnvClient
from trainer.client.errors import EnvCallError
from trainer.client.pool import Deadlines, EnvPool, EpisodeFailed, EpisodeRequest

REPO = Path(__file__).resolve().parents[1]
SERVERS = (1, 3)
CONCURRENCY = (64, 256)
EPISODE_TURNS = 20
DEADLINES = Deadlines(call_s=30.0, turn_s=90.0, episode_s=600.0)


@dataclass(frozen=True)
class Row:
    env: str
    servers: int
    client: str
    concurrency: int
    episodes_per_s: float
    steps_per_s: float
    client_cpu_us_per_step: float
    errors: int


# One episode: reset, seeded random steps among the valid actions until done, close; returns the steps taken.
Play = Callable[[str, int, random.Random], Awaitable[int]]


Measured = tuple[int, int, int, float, float]  # episodes, steps, errors, wall seconds, client CPU seconds


async def _drive(play: Play, tasks: list[str], concurrency: int, seconds: float) -> Measured:
    episodes = steps = errors = 0
    ids = itertools.count()
    stop_at = time.perf_counter() + seconds

    async def worker(index: int) -> None:
        nonlocal episodes, steps, errors
        rng = random.Random(index)
        while time.perf_counter() < stop_at:
            n = next(ids)
            try:
                taken = await play(tasks[n % len(tasks)], n, rng)  # not `steps += await`: that loses updates
                steps, episodes = steps + taken, episodes + 1
            except (EnvCallError, EpisodeFailed):
                errors += 1

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return episodes, steps, errors, time.perf_counter() - wall, time.process_time() - cpu


async def measure_raw(targets: list[str], tasks: list[str], concurrency: int, seconds: float) -> Measured:
    """Episodes spread round-robin over one Session stream per server, the way a hand-written client would."""
    async with contextlib.AsyncExitStack() as stack:
        streams = []
        for target in targets:
            client = await stack.enter_async_context(AsyncEnvClient(target, timeout_s=DEADLINES.call_s))
            streams.append(await stack.enter_async_context(client.stream()))

        async def play(task_id: str, n: int, rng: random.Random) -> int:
            stream = streams[n % len(streams)]
            opened = await stream.reset(task_id, seed=n, max_turns=EPISODE_TURNS)
            result, turns = opened.result, 0
            while not result.done:
                result, turns = await stream.step(opened.session_id, choose(result.observation.valid_actions, rng),
                                                  step_index=turns)
            await stream.close(opened.session_id)
            return turns

        return await _drive(play, tasks, concurrency, seconds)


async def measure_pool(targets: list[str], tasks: list[str], concurrency: int, seconds: float) -> Measured:
    async with EnvPool(targets, deadlines=DEADLINES, max_episodes=concurrency) as pool:

        async def play(task_id: str, n: int, rng: random.Random) -> int:
            async with pool.episode(EpisodeRequest(task_id, seed=n, max_turns=EPISODE_TURNS)) as episode:
                result = episode.result
                while not result.done:
                    result = await episode.step(choose(result.observation.valid_actions, rng))
                return episode.turns

        return await _drive(play, tasks, concurrency, seconds)


async def measure(env: str, tasks: list[str], servers: int, seconds: float, rounds: int) -> list[Row]:
    """Raw and pool alternate, `rounds` times over; each row is the best round (other load on the machine only
    ever slows a round down)."""
    runs: dict[tuple[str, int], list[Row]] = {}
    with contextlib.ExitStack() as stack:
        targets = [stack.enter_context(ServerProc(env)).target for _ in range(servers)]
        await measure_raw(targets, tasks, 16, min(1.0, seconds))  # warm-up: servers learn their calls are cheap
        for _ in range(rounds):
            for concurrency in CONCURRENCY:
                for client, run in (("raw stream", measure_raw), ("pool", measure_pool)):
                    episodes, steps, errors, wall, cpu = await run(targets, tasks, concurrency, seconds)
                    row = Row(env, servers, client, concurrency, episodes / wall, steps / wall,
                              cpu / max(1, steps) * 1e6, errors)
                    runs.setdefault((client, concurrency), []).append(row)
                    print(row, flush=True)
    return [
        Row(env, servers, client, concurrency, max(r.episodes_per_s for r in group),
            max(r.steps_per_s for r in group), min(r.client_cpu_us_per_step for r in group),
            sum(r.errors for r in group))
        for concurrency in CONCURRENCY
        for client in ("raw stream", "pool")
        for group in [runs[client, concurrency]]
    ]


async def main(envs: list[str], seconds: float, rounds: int, out: Path, command: str) -> None:
    rows = []
    load_before = os.getloadavg()[0]
    for env in envs:
        tasks = test_tasks(env)
        for servers in SERVERS:
            rows += await measure(env, tasks, servers, seconds, rounds)
    load = f"1-minute load average {load_before:.1f} before the run, {os.getloadavg()[0]:.1f} after"
    lines = [
        "# Rollout benchmark", "", f"Command: `{command}`", f"Machine: {machine()}; {load}",
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
        (f"A zero-latency scripted policy (a seeded random choice among the valid actions, at most "
        f"{EPISODE_TURNS} turns) plays episodes back to back from `concurrency` asyncio workers in one client "
        "process (uvloop), against 1 or 3 env server processes on the same machine, all sharing its cores. "
        "*pool* is `EnvPool` (least-in-flight placement, deadlines, step indices, health checks, metrics, close on "
        "exit); *raw stream* is one `AsyncSessionStream` per server with episodes spread round-robin and the same "
        f"calls (reset, steps with their step index, close). Each row is the best of {rounds} rounds of {seconds:g} "
        "s, raw and pool alternating. Client CPU per step is the client process's CPU time "
        "over the steps taken (resets and closes included); the pool's overhead is its excess over the raw stream."),
        "",
    ]
    summary = []
    for (env, servers, concurrency), group in itertools.groupby(rows, lambda r: (r.env, r.servers, r.concurrency)):
        by = {r.client: r for r in group}
        raw, pool = by["raw stream"], by["pool"]
        summary.append(
            f"- {env}, {servers} server{'s' * (servers > 1)}, concurrency {concurrency}: pool {pool.episodes_per_s:,.0f} "
            f"episodes/s, {pool.steps_per_s:,.0f} steps/s ({pool.steps_per_s / raw.steps_per_s:.0%} of raw stream); "
            f"client CPU {pool.client_cpu_us_per_step:.0f} us/step vs {raw.client_cpu_us_per_step:.0f} raw "
            f"(overhead {pool.client_cpu_us_per_step - raw.client_cpu_us_per_step:+.0f} us/step)"
        )
    table = ["| env | servers | client | concurrency | episodes/s | steps/s | client CPU us/step | errors |",
             "|---|---|---|---|---|---|---|---|"]
    table += [f"| {r.env} | {r.servers} | {r.client} | {r.concurrency} | {r.episodes_per_s:,.0f} | "
              f"{r.steps_per_s:,.0f} | {r.client_cpu_us_per_step:.0f} | {r.errors} |" for r in rows]
    lines += ["## Summary", "", *summary, "", "## All rows", "", *table, ""]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", default="null,babyai", help="comma-separated env names")
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each measurement")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per row; the best one is reported")
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/rollout.md")
    args = parser.parse_args()
    command = "python -m bench.rollout " + " ".join(sys.argv[1:])
    uvloop.run(main(args.envs.split(","), args.seconds, args.rounds, args.out, command))
