"""Per-environment benchmark: the same oracle actions replayed in-process and over the gRPC Session stream,
reset latency, memory per extra open session, and the search latency of the environments that search.

    python -m bench.envs --out bench/results/envs.md
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from bench.transport import REPO, ServerProc, machine, rss_bytes
from env_server import registry
from env_server.envs.base import Environment
from env_server.tasks import sample_tasks
from trainer.client.env_client import AsyncEnvClient

CONCURRENCY = 64
EPISODES_OVER_GRPC = 20 * CONCURRENCY


@dataclass(frozen=True)
class Scale:
    """How much of each measurement an environment gets."""

    tasks: int  # test tasks per difficulty
    rounds: int  # in-process replays of every recorded episode
    grpc_episodes: int
    concurrency: int
    sessions: int  # extra idle sessions for the memory figure


# ALFWorld resets take about a second and steps about 0.1 s (TextWorld's PDDL engine), so it gets a smaller
# share: the conformance suite's sampled games (already generated and cached), fewer episodes and sessions.
SCALES = {"alfworld": Scale(tasks=4, rounds=1, grpc_episodes=48, concurrency=8, sessions=40)}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class EnvRow:
    env: str
    steps_in_process: float = 0.0
    steps_grpc: float = 0.0
    reset_p50_ms: float = 0.0
    reset_p99_ms: float = 0.0
    grpc_reset_p50_ms: float = 0.0
    grpc_reset_p99_ms: float = 0.0
    sessions: int = 0
    scale: Scale | None = None
    kib_per_session: float = 0.0
    search: str = ""


def sample(env: Environment, per_difficulty: int) -> list[str]:
    """The conformance suite's sample (same seed), so ALFWorld's games are already generated and cached."""
    split = "test" if env.spec.split("test") else env.spec.splits[-1].name
    return [t.task_id for d in env.spec.difficulties
            for t in sample_tasks(env.tasks(split, d), 20, seed=2024)[:per_difficulty]]  # as tests/contract


def oracle_scripts(env: Environment, tasks: list[str]) -> dict[str, list[str]]:
    """Each task's oracle actions, recorded once so both sides replay exactly the same episode."""
    scripts = {}
    for task_id in tasks:
        episode, actions, done = env.reset(task_id, 0), [], False
        while not done and len(actions) < env.spec.default_max_turns:
            actions.append(episode.oracle_action())
            done = episode.step(actions[-1]).done
        episode.close()
        scripts[task_id] = actions
    return scripts


def in_process(env: Environment, scripts: dict[str, list[str]], rounds: int) -> tuple[float, list[float]]:
    """Steps per second of wall time, resets and closes included (as over gRPC), and each reset's latency."""
    steps, resets = 0, []
    began = time.perf_counter()
    for _ in range(rounds):
        for task_id, actions in scripts.items():
            started = time.perf_counter()
            episode = env.reset(task_id, 0)
            episode.observe()
            resets.append(time.perf_counter() - started)
            for action in actions:
                episode.step(action)
                steps += 1
            episode.close()
    return steps / (time.perf_counter() - began), resets


async def over_grpc(target: str, scripts: dict[str, list[str]], episodes: int, concurrency: int
                    ) -> tuple[float, list[float]]:
    async with AsyncEnvClient(target, timeout_s=120) as client:
        resets = []
        for task_id in list(scripts)[:50]:
            started = time.perf_counter()
            opened = await client.reset(task_id, seed=0)
            resets.append(time.perf_counter() - started)
            await client.close(opened.session_id)
        async with client.stream() as stream:
            # Enough episodes that all CONCURRENCY workers stay busy: a steady state, not a ramp.
            repeats = -(-episodes // len(scripts))
            jobs = [task_id for _ in range(repeats) for task_id in scripts]
            queue: asyncio.Queue[str] = asyncio.Queue()
            for job in jobs:
                queue.put_nowait(job)
            step_s_total, steps = 0.0, 0

            async def worker() -> None:
                nonlocal steps
                while not queue.empty():
                    task_id = queue.get_nowait()
                    opened = await stream.reset(task_id, seed=0)
                    for action in scripts[task_id]:
                        await stream.step(opened.session_id, action)
                        steps += 1
                    await stream.close(opened.session_id)

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            step_s_total = time.perf_counter() - started
    # Wall time of the whole run (resets and closes included) over steps: a lower bound on the step rate.
    return steps / step_s_total, resets


async def open_sessions(target: str, pid: int, tasks: list[str], count: int) -> float:
    async with AsyncEnvClient(target, timeout_s=300) as client, client.stream() as stream:
        await stream.close((await stream.reset(tasks[0], seed=0)).session_id)
        before = rss_bytes(pid)
        opened = await asyncio.gather(*(stream.reset(tasks[i % len(tasks)], seed=i) for i in range(count)))
        after = rss_bytes(pid)
        await asyncio.gather(*(stream.close(o.session_id) for o in opened))
    return (after - before) / count / 1024


def _search_latency(queries: list[str], search: Callable[[str], object]) -> str:
    latencies = []
    for query in queries:
        started = time.perf_counter()
        search(query)
        latencies.append(time.perf_counter() - started)
    return (f"{len(queries)} queries: p50 {percentile(latencies, 0.5) * 1e3:.2f} ms, "
            f"p99 {percentile(latencies, 0.99) * 1e3:.2f} ms")


def search_latency(name: str, env: Environment, scripts: dict[str, list[str]]) -> str:
    """Latency of the environment's own search over its default corpus, for the envs that search."""
    inner = lambda action, start, end: action[action.index(start) + len(start):action.rindex(end)]  # noqa: E731
    if name == "webshop":
        queries = [inner(a, "search[", "]") for actions in scripts.values() for a in actions if a.startswith("search[")]
        return f"{len(env.index._asins):,} products, " + _search_latency(queries * 5, env.index.search)  # type: ignore[attr-defined]
    if name == "searchqa":
        queries = [inner(a, "<search>", "</search>") for actions in scripts.values() for a in actions if "<search>" in a]
        return f"{env.retriever.size:,} documents, " + _search_latency(queries * 5, lambda q: env.retriever.search(q, 3))  # type: ignore[attr-defined]
    return ""


async def measure(name: str, default: Scale) -> EnvRow:
    scale = SCALES.get(name, default)
    env = registry.load(name)
    tasks = sample(env, scale.tasks)
    scripts = oracle_scripts(env, tasks)
    row = EnvRow(name, sessions=scale.sessions, scale=scale)
    in_process(env, scripts, 1)  # warm-up
    row.steps_in_process, resets = in_process(env, scripts, scale.rounds)
    row.reset_p50_ms, row.reset_p99_ms = percentile(resets, 0.5) * 1e3, percentile(resets, 0.99) * 1e3
    row.search = search_latency(name, env, scripts)
    with ServerProc(name, max_sessions=scale.sessions + 64) as server:
        await over_grpc(server.target, scripts, len(scripts), scale.concurrency)  # warm-up
        row.steps_grpc, grpc_resets = await over_grpc(server.target, scripts, scale.grpc_episodes, scale.concurrency)
        row.grpc_reset_p50_ms = percentile(grpc_resets, 0.5) * 1e3
        row.grpc_reset_p99_ms = percentile(grpc_resets, 0.99) * 1e3
        row.kib_per_session = await open_sessions(server.target, server.pid, tasks, scale.sessions)
    print(row, flush=True)
    return row


def _kib(value: float) -> str:
    # RSS grows in pages and allocator arenas: below about 1 KiB per session the growth is lost in that noise.
    return f"{value:.1f}" if value >= 1 else "< 1"


async def main(envs: list[str], default: Scale, out: Path) -> None:
    rows = [await measure(name, default) for name in envs]
    lines = [
        "# Environment benchmark", "",
        f"Command: `make bench` (`python -m bench.envs --tasks {default.tasks} --rounds {default.rounds} "
        f"--sessions {default.sessions}`)",
        f"Machine: {machine()}", f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
        "Per environment, the oracle's actions on sampled test tasks (the conformance suite's sample) are recorded "
        "once, then replayed in-process and over the Session stream by concurrent episodes against a server in its "
        "own process; both rates are steps per second of wall time with resets and closes included. "
        "Reset latency is reset + first observation; over gRPC it is a sequential unary Reset. Memory per session "
        "is the server's RSS growth with extra idle sessions open, divided by their number. The scale column says "
        "tasks per difficulty / in-process rounds / gRPC episodes / concurrency / idle sessions.", "",
        "| env | scale | steps/s in-process | steps/s gRPC stream | gRPC / in-process | "
        "reset p50 / p99 ms (in-process) | reset p50 / p99 ms (gRPC) | KiB per idle session |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        sc = r.scale
        lines.append(f"| {r.env} | {sc.tasks} / {sc.rounds} / {sc.grpc_episodes} / {sc.concurrency} / {sc.sessions} | "
                     f"{r.steps_in_process:,.0f} | {r.steps_grpc:,.0f} | "
                     f"{r.steps_grpc / r.steps_in_process:.0%} | {r.reset_p50_ms:.3f} / {r.reset_p99_ms:.3f} | "
                     f"{r.grpc_reset_p50_ms:.2f} / {r.grpc_reset_p99_ms:.2f} | {_kib(r.kib_per_session)} |")
    searched = [r for r in rows if r.search]
    if searched:
        lines += ["", "Search latency (in-process, the oracle's queries):", ""]
        lines += [f"- {r.env}: {r.search}" for r in searched]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", default=",".join(registry.names()))
    parser.add_argument("--tasks", type=int, default=20, help="test tasks per difficulty")
    parser.add_argument("--rounds", type=int, default=3, help="replays of every recorded episode")
    parser.add_argument("--sessions", type=int, default=500, help="extra idle sessions for the memory figure")
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/envs.md")
    args = parser.parse_args()
    default = Scale(args.tasks, args.rounds, EPISODES_OVER_GRPC, CONCURRENCY, args.sessions)
    asyncio.run(main(args.envs.split(","), default, args.out))
