"""Load test: thousands of concurrent episodes over Session streams against local env servers, then more episodes
than a server's session limit, to show it answers RESOURCE_EXHAUSTED with a retry hint instead of collapsing.

    python -m bench.load --out bench/results/load.md        (make load)

Every phase is bounded in time and stops by itself; the servers are child processes stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import random
import re
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import uvloop
from prometheus_client.parser import text_string_to_metric_families

from bench.transport import choose, machine, rss_bytes, test_tasks
from trainer.client.env_client import AsyncEnvClient
from trainer.client.errors import EnvCallError
from trainer.client.stream import AsyncSessionStream
from trainer.local_servers import LocalServer

REPO = Path(__file__).resolve().parents[1]
EPISODE_TURNS = 20
CALL_TIMEOUT_S = 120.0
_RETRY_HINT = re.compile(r"retry in (\d+(?:\.\d+)?) s")


@dataclass
class Tally:
    step_s: list[float] = field(default_factory=list)
    reset_s: list[float] = field(default_factory=list)
    rejected_s: list[float] = field(default_factory=list)  # time to a RESOURCE_EXHAUSTED answer
    episodes: int = 0
    hinted: int = 0  # RESOURCE_EXHAUSTED answers that said when to retry
    errors: collections.Counter[str] = field(default_factory=collections.Counter)


@dataclass(frozen=True)
class Row:
    env: str
    phase: str
    concurrency: int
    max_sessions: int
    seconds: float
    tally: Tally
    peak_sessions: int
    rss_mib: float
    describe_after_ms: float
    held: int  # capacity: sessions open on the server once every worker had opened one
    open_all_s: float  # and how long opening them took


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def ms(values: list[float], q: float) -> str:
    return f"{quantile(values, q):.1f}" if values else "-"


class AllOpen:
    """Holds every worker's first step until all of them have opened a session, and then reads the server's gauge."""

    def __init__(self, workers: int, metrics_port: int) -> None:
        self.workers = workers
        self.metrics_port = metrics_port
        self.opened = 0
        self.held = 0  # the server's count of open sessions at that moment
        self.seconds = 0.0  # how long opening them all took
        self._started = time.perf_counter()
        self._event = asyncio.Event()

    async def wait(self) -> None:
        self.opened += 1
        if self.opened == self.workers:
            self.seconds = time.perf_counter() - self._started
            self.held = await asyncio.to_thread(scrape_sessions, self.metrics_port)
            self._event.set()
        await self._event.wait()


async def worker(index: int, stream: AsyncSessionStream, tasks: list[str], stop_at: float, tally: Tally,
                 all_open: AllOpen | None) -> None:
    """Play episodes back to back until stop_at; a refused reset waits as long as the server's hint says. With
    `all_open`, the first step waits until every worker holds a session, so all of them are open at once."""
    rng = random.Random(index)
    while time.monotonic() < stop_at:
        started = time.perf_counter()
        try:
            opened = await stream.reset(tasks[rng.randrange(len(tasks))], seed=index, max_turns=EPISODE_TURNS)
        except EnvCallError as err:
            tally.errors[err.code.name] += 1
            if err.code.name != "RESOURCE_EXHAUSTED":
                return
            tally.rejected_s.append(time.perf_counter() - started)
            hint = _RETRY_HINT.search(err.message)
            tally.hinted += hint is not None
            await asyncio.sleep(float(hint.group(1)) * rng.uniform(0.5, 1.5) if hint else 1.0)
            continue
        tally.reset_s.append(time.perf_counter() - started)
        if all_open is not None:
            await all_open.wait()
            all_open = None
        result = opened.result
        try:
            while not result.done and time.monotonic() < stop_at:
                started = time.perf_counter()
                result, _ = await stream.step(opened.session_id, choose(result.observation.valid_actions, rng))
                tally.step_s.append(time.perf_counter() - started)
            tally.episodes += 1
        except EnvCallError as err:
            tally.errors[err.code.name] += 1
        try:
            await stream.close(opened.session_id)
        except EnvCallError as err:
            tally.errors[err.code.name] += 1


def scrape_sessions(metrics_port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return int(next(s.value for f in text_string_to_metric_families(text) for s in f.samples
                    if s.name == "shiftgym_env_active_sessions"))


async def run_phase(env: str, phase: str, tasks: list[str], concurrency: int, max_sessions: int, seconds: float,
                    streams: int) -> Row:
    tally = Tally()
    peak = 0
    all_open = None
    args = ("--max-sessions", str(max_sessions), "--log-level", "warning", "--drain-grace-s", "5")
    with LocalServer(env, *args) as server:
        async with AsyncEnvClient(server.target, timeout_s=CALL_TIMEOUT_S) as client:
            opened = [await client.stream().__aenter__() for _ in range(streams)]
            try:
                # Capacity: every worker opens its first session before any plays, so all are open together.
                all_open = AllOpen(concurrency, server.metrics_port) if concurrency <= max_sessions else None
                stop_at = time.monotonic() + seconds
                started = time.perf_counter()
                load = asyncio.gather(*(worker(i, opened[i % streams], tasks, stop_at, tally, all_open)
                                        for i in range(concurrency)))
                while not load.done():  # sample the server's own count of open sessions
                    peak = max(peak, await asyncio.to_thread(scrape_sessions, server.metrics_port))
                    await asyncio.wait({load}, timeout=0.2)
                await asyncio.wait_for(load, timeout=seconds + CALL_TIMEOUT_S)
                elapsed = time.perf_counter() - started
                rss = rss_bytes(server.pid) / 2**20
                t0 = time.perf_counter()
                await client.describe(timeout_s=10)
                describe_ms = (time.perf_counter() - t0) * 1000
            finally:
                for stream in opened:
                    await stream.__aexit__(None, None, None)
    row = Row(env, phase, concurrency, max_sessions, elapsed, tally, max(peak, all_open.held if all_open else 0), rss,
              describe_ms, all_open.held if all_open else 0, all_open.seconds if all_open else 0.0)
    print(summary_line(row), flush=True)
    return row


def summary_line(row: Row) -> str:
    t = row.tally
    errors = ", ".join(f"{k} {v:,}" for k, v in sorted(t.errors.items())) or "none"
    return (f"{row.env} {row.phase}: {row.concurrency} concurrent, limit {row.max_sessions}: "
            f"{len(t.step_s) / row.seconds:,.0f} steps/s, step p50 {quantile(t.step_s, .5):.1f} ms p99 "
            f"{quantile(t.step_s, .99):.1f} ms, peak {row.peak_sessions} open sessions, errors: {errors}")


def table(rows: list[Row]) -> list[str]:
    lines = ["| env | phase | concurrent episodes | session limit | episodes | steps/s | step p50 ms | step p99 ms | "
             "reset p50 ms | reset p99 ms | peak open sessions | server RSS MiB | errors | RESOURCE_EXHAUSTED with retry hint | "
             "refusal p99 ms | Describe after, ms |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        t = r.tally
        other = {k: v for k, v in t.errors.items() if k != "RESOURCE_EXHAUSTED"}
        exhausted = t.errors.get("RESOURCE_EXHAUSTED", 0)
        lines.append(
            f"| {r.env} | {r.phase} | {r.concurrency:,} | {r.max_sessions:,} | {t.episodes:,} | "
            f"{len(t.step_s) / r.seconds:,.0f} | {ms(t.step_s, .5)} | {ms(t.step_s, .99)} | "
            f"{ms(t.reset_s, .5)} | {ms(t.reset_s, .99)} | {r.peak_sessions:,} | {r.rss_mib:.0f} | "
            f"{sum(other.values()) if other else 0}{' (' + ', '.join(f'{k} {v}' for k, v in other.items()) + ')' if other else ''} | "
            f"{t.hinted:,} of {exhausted:,} | {ms(t.rejected_s, .99)} | {r.describe_after_ms:.1f} |")
    return lines


async def main(args: argparse.Namespace) -> int:
    load_average = os.getloadavg()[0]  # other processes on the machine take cores from both sides
    rows: list[Row] = []
    for env in args.envs.split(","):
        tasks = test_tasks(env)
        rows.append(await run_phase(env, "capacity", tasks, args.sessions, args.sessions + 48, args.seconds,
                                    args.streams))
        rows.append(await run_phase(env, "overload", tasks, args.overload_offered, args.overload_limit,
                                    args.seconds, args.streams))
    command = (f"make load (python -m bench.load --envs {args.envs} --sessions {args.sessions} --seconds "
               f"{args.seconds:g} --overload-limit {args.overload_limit} --overload-offered {args.overload_offered} "
               f"--streams {args.streams})")
    capacity = [r for r in rows if r.phase == "capacity"]
    overload = [r for r in rows if r.phase == "overload"]
    verdicts = []
    for r in capacity:
        clean = not r.tally.errors and r.held == r.concurrency
        verdicts.append(f"- {r.env}: {r.concurrency:,} concurrent episodes on one server process for {r.seconds:.0f} s: "
                        f"{r.held:,} sessions open at once on the server (its own gauge, read once every worker held "
                        f"one; opened in {r.open_all_s:.1f} s), "
                        f"{len(r.tally.step_s) / r.seconds:,.0f} steps/s, "
                        f"{'no errors' if not r.tally.errors else 'errors: ' + str(dict(r.tally.errors))}"
                        f"{'' if clean else ' -- NOT MET'}")
    for r in overload:
        other = {k: v for k, v in r.tally.errors.items() if k != "RESOURCE_EXHAUSTED"}
        exhausted = r.tally.errors.get("RESOURCE_EXHAUSTED", 0)
        verdicts.append(f"- {r.env}: {r.concurrency:,} concurrent episodes against a limit of {r.max_sessions:,}: "
                        f"{exhausted:,} resets refused with RESOURCE_EXHAUSTED ({r.tally.hinted:,} saying when to "
                        f"retry; p99 {quantile(r.tally.rejected_s, .99):.1f} ms to the refusal), peak "
                        f"{r.peak_sessions:,} open, {r.tally.episodes:,} episodes completed at "
                        f"{len(r.tally.step_s) / r.seconds:,.0f} steps/s, other errors: {other or 'none'}, "
                        f"Describe afterwards in {r.describe_after_ms:.1f} ms")
    lines = [
        "# Load test", "", f"Command: `{command}`", f"Machine: {machine()}",
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average at the start: {load_average:.1f}",
        "",
        "One env server process per phase (`python -m env_server serve`, uvloop), and one load-generating process "
        f"on the same machine, so both share its cores. Each of N workers plays episodes back to back over one of "
        f"{args.streams} Session streams: reset, a seeded random valid action per step for at most {EPISODE_TURNS} "
        "turns, close. *capacity*: N below the session limit, so every episode must go through. *overload*: N above "
        "it; a refused reset waits as long as the refusal's retry hint says (with jitter) and tries again. Latency is "
        "per call as the client sees it, so at N in the thousands it is mostly queueing behind the other episodes "
        "on a server that uses one core. Peak open sessions is sampled from the server's "
        "`shiftgym_env_active_sessions` every 0.2 s.", "",
        "## Summary", "", *verdicts, "", "## All rows", "", *table(rows), "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))
    failed = any(r.tally.errors for r in capacity) or any(
        set(r.tally.errors) - {"RESOURCE_EXHAUSTED"} or r.tally.hinted != r.tally.errors.get("RESOURCE_EXHAUSTED", 0)
        for r in overload)
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", default="null,babyai", help="comma-separated env names")
    parser.add_argument("--sessions", type=int, default=2000, help="concurrent episodes in the capacity phase")
    parser.add_argument("--seconds", type=float, default=20.0, help="duration of each phase")
    parser.add_argument("--overload-limit", type=int, default=500, help="the server's session limit when overloaded")
    parser.add_argument("--overload-offered", type=int, default=1000, help="concurrent episodes when overloaded")
    parser.add_argument("--streams", type=int, default=4, help="Session streams the episodes share")
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/load.md")
    raise SystemExit(uvloop.run(main(parser.parse_args())))
