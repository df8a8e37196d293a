"""Transport benchmark: steps/s and step latency over unary calls and the Session stream, against an env server
in its own process, next to the same environment's in-process step rate.

    python -m bench.transport --out bench/results/transport.md
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvloop

from env_server import registry
from trainer.client.env_client import AsyncEnvClient
from trainer.client.errors import EnvCallError
from trainer.local_servers import LocalServer

REPO = Path(__file__).resolve().parents[1]
CONCURRENCY = (1, 16, 64, 256)
EPISODE_TURNS = 20
NULL_NOOP = "noop"  # the null env's do-nothing action (env_server/envs/null.py)


@dataclass(frozen=True)
class Row:
    env: str
    transport: str
    concurrency: int
    steps_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int


def choose(valid_actions: tuple[str, ...], rng: random.Random) -> str:
    """The benchmark's policy, the same in-process and over gRPC: a seeded choice among valid actions, except that
    on the null env it always says "noop". A random pick there says the task's word (and ends the episode) every
    other step, so half the calls would be Resets; "noop" keeps every episode at the full turn limit, one Reset per
    20 Steps as in a rollout."""
    if NULL_NOOP in valid_actions:
        return NULL_NOOP
    return rng.choice(valid_actions) if valid_actions else "look"


def ServerProc(env: str, max_sessions: int = 4096) -> LocalServer:
    return LocalServer(env, "--max-sessions", str(max_sessions), "--log-level", "warning")


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


@dataclass(frozen=True)
class Load:
    latencies: list[float]
    seconds: float
    errors: int


async def _load(api: Any, tasks: list[str], concurrency: int, seconds: float, turns: int = EPISODE_TURNS) -> Load:
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def worker(index: int) -> None:
        nonlocal errors
        rng = random.Random(index)
        while time.perf_counter() < stop_at:
            try:
                opened = await api.reset(tasks[rng.randrange(len(tasks))], seed=index, max_turns=turns)
                result = opened.result
                while not result.done and time.perf_counter() < stop_at:
                    action = choose(result.observation.valid_actions, rng)
                    started = time.perf_counter()
                    result, _ = await api.step(opened.session_id, action)
                    latencies.append(time.perf_counter() - started)
                await api.close(opened.session_id)
            except EnvCallError:
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return Load(latencies, time.perf_counter() - started, errors)


def _client_process(target: str, transport: str, tasks: list[str], concurrency: int, seconds: float,
                    results: Any) -> None:
    async def run() -> Load:
        async with AsyncEnvClient(target, timeout_s=60) as client:
            if transport == "unary":
                return await _load(client, tasks, concurrency, seconds)
            async with client.stream() as stream:
                return await _load(stream, tasks, concurrency, seconds)

    results.put(uvloop.run(run()))  # the same loop the server runs on


def _row(env: str, transport: str, concurrency: int, loads: list[Load]) -> Row:
    latencies = sorted(x for load in loads for x in load.latencies)
    q = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else float("nan")  # noqa: E731
    rate = sum(len(load.latencies) / load.seconds for load in loads)
    return Row(env, transport, concurrency, rate, q(0.50), q(0.99), sum(load.errors for load in loads))


async def measure_grpc(env: str, tasks: list[str], seconds: float, client_procs: int) -> list[Row]:
    """Load from `client_procs` processes (concurrency split between them), so the load generator's own CPU
    does not cap what one server process is measured to do."""
    rows = []
    spawn = multiprocessing.get_context("spawn")
    with ServerProc(env) as server:
        for transport in ("unary", "stream"):
            for concurrency in CONCURRENCY:
                procs = min(client_procs, concurrency)
                results = spawn.Queue()
                children = [
                    spawn.Process(target=_client_process,
                                  args=(server.target, transport, tasks, concurrency // procs, seconds, results))
                    for _ in range(procs)
                ]
                for child in children:
                    child.start()
                loads = [results.get(timeout=seconds + 120) for _ in children]
                for child in children:
                    child.join(timeout=30)
                rows.append(_row(env, transport, concurrency, loads))
                print(rows[-1], flush=True)
    return rows


def measure_in_process(env_name: str, tasks: list[str], seconds: float) -> Row:
    env = registry.load(env_name)
    rng = random.Random(0)
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < stop_at:
        episode = env.reset(tasks[rng.randrange(len(tasks))], 0)
        obs, done, turns = episode.observe(), False, 0
        while not done and turns < EPISODE_TURNS and time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            result = episode.step(choose(obs.valid_actions, rng))
            latencies.append(time.perf_counter() - t0)
            obs, done, turns = result.observation, result.done, turns + 1
        episode.close()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return Row(env_name, "in-process", 1, len(latencies) / elapsed, latencies[len(latencies) // 2] * 1000,
               latencies[int(0.99 * len(latencies))] * 1000, 0)


async def measure_open_sessions(env: str, tasks: list[str], count: int) -> tuple[int, int, float]:
    """Open `count` sessions at once over streams, step each once, close them; returns (errors, bytes/session)."""
    with ServerProc(env, max_sessions=count + 16) as server:
        async with AsyncEnvClient(server.target, timeout_s=120) as client:
            async with client.stream() as stream:
                await stream.close((await stream.reset(tasks[0], seed=0)).session_id)  # warm-up
                before = rss_bytes(server.pid)
                started = time.perf_counter()
                opened = await asyncio.gather(
                    *(stream.reset(tasks[i % len(tasks)], seed=i) for i in range(count)), return_exceptions=True
                )
                open_s = time.perf_counter() - started
                after = rss_bytes(server.pid)
                sessions = [o for o in opened if not isinstance(o, BaseException)]
                stepped = await asyncio.gather(
                    *(stream.step(o.session_id, choose(o.result.observation.valid_actions, random.Random(0)))
                      for o in sessions),
                    return_exceptions=True,
                )
                closed = await asyncio.gather(*(stream.close(o.session_id) for o in sessions), return_exceptions=True)
    errors = sum(isinstance(x, BaseException) for x in (*opened, *stepped, *closed))
    return errors, (after - before) // max(1, len(sessions)), open_s


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, {platform.system()} {platform.release()}"


def test_tasks(env_name: str) -> list[str]:
    env = registry.load(env_name)
    split = "test" if env.spec.split("test") else env.spec.splits[-1].name
    return [t.task_id for d in env.spec.difficulties for t in env.tasks(split, d)[:50]]


async def main(envs: list[str], seconds: float, sessions: int, client_procs: int, out: Path) -> None:
    lines = ["# Transport benchmark", "", f"Command: `make bench` (`python -m bench.transport --seconds {seconds:g} "
             f"--sessions {sessions} --client-procs {client_procs}`)", f"Machine: {machine()}", f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
             "", f"The server runs in its own process; the load comes from {client_procs} asyncio client processes "
             "(concurrency split between them) on the same machine, so all share its two cores. Each episode is reset, then "
             f"stepped for at most {EPISODE_TURNS} turns with a seeded random choice among the valid actions (on the "
             "null env always `noop`, so its episodes too run the full turn limit, as rollouts do). Latency is per "
             "Step call as the client sees it.", ""]
    table = ["| env | transport | concurrency | steps/s | p50 ms | p99 ms | errors |", "|---|---|---|---|---|---|---|"]
    summary = []
    for env in envs:
        tasks = test_tasks(env)
        local = measure_in_process(env, tasks, seconds)
        print(local, flush=True)
        rows = await measure_grpc(env, tasks, seconds, client_procs)
        for row in (local, *rows):
            table.append(f"| {row.env} | {row.transport} | {row.concurrency} | {row.steps_per_s:,.0f} | "
                         f"{row.p50_ms:.3f} | {row.p99_ms:.3f} | {row.errors} |")
        at64 = {r.transport: r for r in rows if r.concurrency == 64}
        summary.append(
            f"- {env}: in-process {local.steps_per_s:,.0f} steps/s; over gRPC at concurrency 64: unary "
            f"{at64['unary'].steps_per_s:,.0f} ({at64['unary'].steps_per_s / local.steps_per_s:.0%} of in-process), "
            f"stream {at64['stream'].steps_per_s:,.0f} ({at64['stream'].steps_per_s / local.steps_per_s:.0%}); "
            f"best stream rate {max(r.steps_per_s for r in rows if r.transport == 'stream'):,.0f} steps/s"
        )
        if env != "null":
            errors, per_session, open_s = await measure_open_sessions(env, tasks, sessions)
            summary.append(f"- {env}: {sessions:,} sessions open at once on one server process: {errors} errors, "
                           f"opened in {open_s:.1f} s, {per_session / 1024:.1f} KiB RSS per idle session")
    lines += ["## Summary", "", *summary, "", "## All rows", "", *table, ""]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", default="null,babyai", help="comma-separated env names")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each measurement")
    parser.add_argument("--sessions", type=int, default=2000, help="sessions to hold open at once")
    parser.add_argument("--client-procs", type=int, default=1, help="load generator processes")
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/transport.md")
    args = parser.parse_args()
    asyncio.run(main(args.envs.split(","), args.seconds, args.sessions, args.client_procs, args.out))
