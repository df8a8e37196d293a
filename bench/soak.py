"""Soak test: steady load on one server per environment for a long time, recording each server's memory (RSS) and
open sessions every minute, to show memory stays flat (no leaked sessions, episodes or buffers).

    python -m bench.soak --minutes 30 --out bench/results/soak.md        (make soak)

The load goes through the trainer's own client (EnvPool over a Session stream) at a fixed pace. Besides whole
episodes it abandons some (never closed: the servers' idle TTL must free them), steps unknown sessions and sends
unparseable actions, so the error paths run as long as the happy one. It stops by itself after --minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import random
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import uvloop
from prometheus_client.parser import text_string_to_metric_families

from bench.transport import machine, rss_bytes, test_tasks
from trainer.client.env_client import AsyncEnvClient
from trainer.client.errors import EnvCallError
from trainer.client.pool import Deadlines, EnvPool, EpisodeFailed, EpisodeRequest
from trainer.client.stream import AsyncSessionStream
from trainer.local_servers import LocalServer

REPO = Path(__file__).resolve().parents[1]
ENVS = "babyai,textcraft,webshop,searchqa,alfworld,null"
FEW_WORKERS = {"alfworld": 3}  # a reset builds a TextWorld game: a second of CPU
IDLE_TTL_S = 60  # the servers' idle TTL, short so abandoned sessions are freed within the run
ABANDON_EVERY = 20  # one episode in this many is left open, for the TTL to close
FLAT = 0.10  # allowed RSS growth after warm-up


@dataclass
class Counts:
    steps: int = 0
    episodes: int = 0
    abandoned: int = 0
    errors: collections.Counter[str] = field(default_factory=collections.Counter)


@dataclass(frozen=True)
class Sample:
    minute: int
    rss_mib: float
    open_sessions: int
    steps: int  # during the minute before
    episodes: int
    abandoned: int
    errors: int  # unexpected ones, during the minute before


def choose(valid_actions: tuple[str, ...], rng: random.Random) -> str:
    """A seeded pick among the valid actions, on every env alike: the transport benchmark's policy says "noop" on
    the null env, where an episode would then never end and the soak would open no new ones."""
    return rng.choice(valid_actions) if valid_actions else "look"


async def worker(index: int, pool: EnvPool, stream: AsyncSessionStream, tasks: list[str], pace_s: float,
                 stop_at: float, counts: Counts) -> None:
    rng = random.Random(index)
    episode_number = 0
    while time.monotonic() < stop_at:
        episode_number += 1
        task_id = tasks[rng.randrange(len(tasks))]
        try:
            if episode_number % ABANDON_EVERY == 0:  # opened, stepped once, never closed
                opened = await stream.reset(task_id, seed=episode_number)
                await stream.step(opened.session_id, choose(opened.result.observation.valid_actions, rng))
                counts.abandoned += 1
                continue
            async with pool.episode(EpisodeRequest(task_id, seed=episode_number)) as episode:
                result = episode.result
                while not result.done and time.monotonic() < stop_at:
                    await asyncio.sleep(pace_s * rng.uniform(0.5, 1.5))
                    # One action in eight is not one the episode understands: an invalid action, never an error.
                    action = "xyzzy \x00 {[" if rng.random() < 0.125 else choose(result.observation.valid_actions, rng)
                    result = await episode.step(action)
                    counts.steps += 1
            counts.episodes += 1
            try:  # an unknown session: NOT_FOUND, which is what is expected
                await stream.step(f"no-such-session-{index}", "look")
            except EnvCallError as err:
                if err.code.name != "NOT_FOUND":
                    raise
        except (EnvCallError, EpisodeFailed) as err:
            counts.errors[getattr(err, "reason", None) or err.code.name] += 1
            await asyncio.sleep(1.0)


def scrape_sessions(metrics_port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return int(next(s.value for f in text_string_to_metric_families(text) for s in f.samples
                    if s.name == "shiftgym_env_active_sessions"))


async def soak_env(env: str, server: LocalServer, workers: int, pace_s: float, minutes: float,
                   samples: list[Sample], started: float) -> Counts:
    counts = Counts()
    stop_at = started + minutes * 60
    deadlines = Deadlines(call_s=60.0, turn_s=180.0, episode_s=3600.0)
    async with EnvPool([server.target], env=env, deadlines=deadlines, max_episodes=workers) as pool, \
            AsyncEnvClient(server.target, timeout_s=60) as client, client.stream() as stream:
        tasks = test_tasks(env)
        load = asyncio.gather(*(worker(i, pool, stream, tasks, pace_s, stop_at, counts) for i in range(workers)))
        last = Counts()
        minute = 0
        while not load.done():
            next_sample = started + (minute + 1) * 60
            await asyncio.wait({load}, timeout=max(0.0, next_sample - time.monotonic()))
            if load.done() and time.monotonic() < next_sample - 1:
                break
            minute += 1
            unexpected = sum(counts.errors.values()) - sum(last.errors.values())
            samples.append(Sample(minute, rss_bytes(server.pid) / 2**20,
                                  await asyncio.to_thread(scrape_sessions, server.metrics_port),
                                  counts.steps - last.steps, counts.episodes - last.episodes,
                                  counts.abandoned - last.abandoned, unexpected))
            last = Counts(counts.steps, counts.episodes, counts.abandoned, collections.Counter(counts.errors))
            print(f"{env} minute {minute}: {samples[-1]}", flush=True)
        await load
    return counts


def verdict(env: str, samples: list[Sample], warmup: int, counts: Counts) -> tuple[bool, str]:
    after = [s for s in samples if s.minute > warmup]
    if not after:
        return False, f"- {env}: the run was too short to pass its {warmup}-minute warm-up"
    reference = after[0].rss_mib
    peak = max(s.rss_mib for s in after)
    growth = peak / reference - 1
    sessions = max(s.open_sessions for s in after)
    ok = growth <= FLAT and not counts.errors
    return ok, (f"- {env}: RSS {samples[0].rss_mib:.0f} MiB at minute 1, {reference:.0f} MiB after the {warmup}-minute "
                f"warm-up, at most {peak:.0f} MiB after it ({growth:+.1%}; limit +{FLAT:.0%}): "
                f"{'flat' if growth <= FLAT else 'GROWING'}; open sessions at most {sessions} "
                f"(workers plus abandoned sessions awaiting the {IDLE_TTL_S} s TTL); {counts.steps:,} steps, "
                f"{counts.episodes:,} episodes, {counts.abandoned:,} abandoned, unexpected errors: "
                f"{dict(counts.errors) or 'none'}")


async def main(args: argparse.Namespace) -> int:
    envs = args.envs.split(",")
    warmup = args.warmup if args.warmup is not None else max(1, int(args.minutes // 6))
    samples: dict[str, list[Sample]] = {env: [] for env in envs}
    flags = ("--idle-ttl-s", str(IDLE_TTL_S), "--log-level", "warning", "--drain-grace-s", "5")
    servers = {env: LocalServer(env, *flags) for env in envs}
    for server in servers.values():
        server.__enter__()
    try:
        started = time.monotonic()
        client_rss: list[float] = []

        async def watch_self() -> None:
            while time.monotonic() < started + args.minutes * 60:
                await asyncio.sleep(60)
                client_rss.append(rss_bytes(os.getpid()) / 2**20)

        watcher = asyncio.get_running_loop().create_task(watch_self())
        counts = await asyncio.gather(*(
            soak_env(env, servers[env], FEW_WORKERS.get(env, args.workers), args.pace_s, args.minutes, samples[env],
                     started) for env in envs))
        watcher.cancel()
    finally:
        for server in servers.values():
            server.__exit__(None, None, None)
    results = [verdict(env, samples[env], warmup, c) for env, c in zip(envs, counts)]
    command = (f"make soak (python -m bench.soak --minutes {args.minutes:g} --envs {args.envs} --workers "
               f"{args.workers} --pace-s {args.pace_s:g})")
    header = "| minute | " + " | ".join(f"{e} RSS MiB | {e} open | {e} steps" for e in envs) + " |"
    rows = [header, "|---|" + "---|---|---|" * len(envs)]
    for minute in range(1, max(len(s) for s in samples.values()) + 1):
        cells = []
        for env in envs:
            s = next((x for x in samples[env] if x.minute == minute), None)
            cells.append(f"{s.rss_mib:.1f} | {s.open_sessions} | {s.steps:,}" if s else " | | ")
        rows.append(f"| {minute}{' (warm-up)' if minute <= warmup else ''} | " + " | ".join(cells) + " |")
    client = (f"The load generator's own RSS: {client_rss[0]:.0f} MiB after minute 1, {client_rss[-1]:.0f} MiB at the "
              f"end." if client_rss else "")
    lines = [
        "# Soak test", "", f"Command: `{command}`", f"Machine: {machine()}",
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
        f"One server process per environment (idle TTL {IDLE_TTL_S} s), all on this machine with the load generator. "
        f"Per environment, {args.workers} workers ({', '.join(f'{k}: {v}' for k, v in FEW_WORKERS.items())}) play "
        f"episodes through an EnvPool, one step every ~{args.pace_s:g} s each; one step in eight is an unparseable "
        f"action, each episode is followed by a step to an unknown session (NOT_FOUND, expected), and one episode in "
        f"{ABANDON_EVERY} is opened and left for the idle TTL. Every minute: the server's RSS (/proc) and its "
        f"`shiftgym_env_active_sessions`. Memory is flat when its peak after the {warmup}-minute warm-up is within "
        f"{FLAT:.0%} of its value at the end of the warm-up. {client}", "",
        "## Summary", "", *(text for _, text in results), "", "## Every minute", "", *rows, "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0 if all(ok for ok, _ in results) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="how long to run")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up minutes (default: a sixth of the run)")
    parser.add_argument("--envs", default=ENVS, help="comma-separated env names")
    parser.add_argument("--workers", type=int, default=16, help="concurrent episodes per environment")
    parser.add_argument("--pace-s", type=float, default=0.2, help="pause between one worker's steps")
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/soak.md")
    raise SystemExit(uvloop.run(main(parser.parse_args())))
