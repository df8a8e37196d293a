"""Adapter overhead per step: `original` (the empty stack) vs the longest preset chain, against the environment's
own step time, on the same oracle episodes, in-process (transport excluded; bench/transport.py measures that);
then the same episodes served: Step calls from a client on loopback, one at a time, with either interface.

    python -m bench.adapters --out bench/results/adapters.md
"""

from __future__ import annotations

import argparse
import time
from functools import lru_cache
from pathlib import Path

from bench.transport import machine
from env_server import registry
from env_server.adapters.base import AdapterContext, AdapterSpec, Turn, build_stack
from env_server.adapters.presets import PRESETS
from env_server.envs.base import Environment
from trainer.client.env_client import EnvClient
from trainer.local_servers import LocalServer

TASKS_PER_DIFFICULTY = 10


def _chain(env: Environment) -> list[AdapterSpec]:
    longest = list(PRESETS["all_shifts"])
    return longest if hasattr(env, "lexicon_words") else [s for s in longest if s.name != "lexicon"]


@lru_cache(maxsize=None)
def _words(env: Environment) -> tuple[str, ...] | None:
    # Read once per env, as the server's Runtime does: the lexicon cache keys on this very tuple.
    hook = getattr(env, "lexicon_words", None)
    return tuple(hook()) if hook else None


def _episodes(env: Environment) -> list[str]:
    spec = env.spec
    split = "test" if spec.split("test") else spec.splits[-1].name
    return [t.task_id for d in spec.difficulties for t in env.tasks(split, d)[:TASKS_PER_DIFFICULTY]]


def measure(env: Environment, specs: list[AdapterSpec]) -> tuple[float, float, int]:
    """(env seconds, adapter seconds, steps) over oracle episodes: adapters render, encode the oracle, parse."""
    words = _words(env)
    env_s = adapter_s = 0.0
    steps = 0
    for task_id in _episodes(env):
        episode = env.reset(task_id, 0)
        started = time.perf_counter()
        stack = build_stack(specs, AdapterContext(0, (lambda: words) if words is not None else None))
        obs, turn = episode.observe(), Turn(0)
        stack.render(obs, turn)
        adapter_s += time.perf_counter() - started
        done = False
        while not done:
            oracle = episode.oracle_action()
            written = stack.encode(oracle, obs, turn)  # what the model writes: not the server's work
            started = time.perf_counter()
            action = stack.parse(written, obs, turn)
            adapter_s += time.perf_counter() - started
            assert action == oracle, (specs, oracle, action)
            started = time.perf_counter()
            result = episode.step(action)
            env_s += time.perf_counter() - started
            steps += 1
            obs, turn, done = result.observation, Turn(turn.index + 1, result.action_valid), result.done
            started = time.perf_counter()
            stack.render(obs, turn)
            adapter_s += time.perf_counter() - started
        episode.close()
    return env_s, adapter_s, steps


def served(client: EnvClient, task_ids: list[str], specs: list[AdapterSpec]) -> float:
    """Seconds per Step call over loopback on the oracle's episodes (its action asked for apart, not timed)."""
    interface = [(s.name, dict(s.params)) for s in specs]
    elapsed, steps = 0.0, 0
    for task_id in task_ids:
        session = client.reset(task_id, seed=0, interface=interface).session_id
        done = False
        while not done:
            action = client.oracle_action(session)
            started = time.perf_counter()
            result, _ = client.step(session, action)
            elapsed += time.perf_counter() - started
            steps += 1
            assert result.action_valid, (specs, task_id, action)
            done = result.done
        client.close(session)
    return elapsed / steps


def best_of(repeats: int, env: Environment, specs: list[AdapterSpec]) -> tuple[float, float, int]:
    """The least env and adapter time over `repeats` runs of the same episodes: on a shared machine, the other
    runs are the ones another process interrupted."""
    runs = [measure(env, specs) for _ in range(repeats)]
    return min(r[0] for r in runs), min(r[1] for r in runs), runs[0][2]


def main(envs: list[str], out: Path, repeats: int) -> None:
    lines = ["# Adapter overhead", "", f"Command: `python -m bench.adapters --out {out}` (part of `make bench`)",
             f"Machine: {machine()}", f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
             f"In-process, on the oracle's episodes of the first {TASKS_PER_DIFFICULTY} test tasks per difficulty "
             f"(seed 0), each the best of {repeats} runs (the adapters' caches of valid-action lists are warm after the "
             "first, as in GRPO training where a group of rollouts plays each task). Adapter time per step: what the server does, rendering the "
             "observation and parsing the action (the oracle's, written in the interface; Reset's first render and "
             "stack build included). `longest` is the `all_shifts` preset (without "
             "`lexicon` where the env has no words). Target: under 10% of the environment's own step time.", "",
             "| env | env step µs | interface | adapter µs/step | overhead |", "|---|---|---|---|---|"]
    met, missed = [], []
    for name in envs:
        env = registry.load(name)
        for label, specs in (("original", []), ("longest", _chain(env))):
            env_s, adapter_s, steps = best_of(repeats, env, specs)
            lines.append(f"| {name} | {1e6 * env_s / steps:.1f} | {label} | {1e6 * adapter_s / steps:.1f} | "
                         f"{100 * adapter_s / env_s:.1f}% |")
            print(lines[-1], flush=True)
        (met if adapter_s < 0.1 * env_s else missed).append(f"{name} ({1e6 * adapter_s / steps:.0f} µs against "
                                                            f"{1e6 * env_s / steps:.0f} µs)")
    lines += ["", f"Longest chain under 10% of the env's step: {', '.join(met) or 'none'}; over it: "
              f"{', '.join(missed) or 'none'}. A chain of six Python adapters costs tens of µs a step; where the "
              "environment's step is itself a few dict lookups, that is more than its step.", "",
              "Served: the same episodes through an env server on loopback, one Step call at a time from one "
              f"client, best of {repeats} runs; the Step call's round trip as the trainer sees it.", "",
              "| env | Step µs, original | Step µs, longest | longest adds |", "|---|---|---|---|"]
    for name in envs:
        env = registry.load(name)
        task_ids = _episodes(env)
        with LocalServer(name, "--enable-oracle", "--log-level", "warning") as server, \
                EnvClient(f"127.0.0.1:{server.port}", 120) as client:
            served(client, task_ids, _chain(env))  # warm: lexicons built, games generated
            plain = min(served(client, task_ids, []) for _ in range(repeats))
            longest = min(served(client, task_ids, _chain(env)) for _ in range(repeats))
        lines.append(f"| {name} | {1e6 * plain:.0f} | {1e6 * longest:.0f} | {100 * (longest - plain) / plain:.1f}% |")
        print(lines[-1], flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", action="append", help="environments (default: all served ones)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/adapters.md"))
    parser.add_argument("--repeats", type=int, default=5, help="runs per measurement; the fastest is reported")
    args = parser.parse_args()
    main(args.env or registry.names(), args.out, args.repeats)
