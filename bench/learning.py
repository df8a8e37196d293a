"""Learning benchmark: GRPO on CPU makes a tiny policy better at BabyAI's easy rung, in constrained-choice mode.

Builds a tiny Qwen2 model locally, serves BabyAI from a local env server, and alternates GRPO steps on training
tasks with avg@8 evaluations on held-out test tasks; per seed, a learning curve (PNG) and the numbers.

    python -m bench.learning --out bench/results/learning.md
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch

from env_server import registry
from env_server.tasks import sample_tasks
from trainer.client.pool import EnvPool
from trainer.episodes import Budget, EpisodeRunner, EpisodeSpec
from trainer.evaluation import avg_success, sample_k
from trainer.local_servers import LocalServer
from trainer.policies.hf import HFEngine
from trainer.rl.grpo import GRPOConfig, GRPOTrainer
from trainer.tiny import make_tiny

ENV, DIFFICULTY = "babyai", "easy"


@dataclass
class Curve:
    seed: int
    points: list[tuple[float, int, float]] = field(default_factory=list)  # (cpu minutes, step, avg@8)
    steps: list[dict] = field(default_factory=list)


def _specs(split: str, count: int, seed: int, max_turns: int) -> list[EpisodeSpec]:
    env = registry.load(ENV)
    tasks = sample_tasks(env.tasks(split, DIFFICULTY), count, seed)
    return [EpisodeSpec(ENV, t.task_id, seed=0, max_turns=max_turns) for t in tasks]


def _cpu_minutes() -> float:
    """CPU minutes of this process (all its threads: rollouts, updates, evaluations); unlike wall time it does not
    grow when other work shares the machine. The env server's own CPU is not counted."""
    return time.process_time() / 60


async def run_seed(seed: int, target: str, args: argparse.Namespace, workdir: Path) -> Curve:
    model_dir = make_tiny(workdir / f"tiny-{seed}", envs=[ENV], seed=seed, vocab_size=1024, size=args.size)
    engine = HFEngine.from_pretrained(str(model_dir))
    train = _specs("train", args.train_tasks, seed, args.max_turns)
    held_out = _specs("test", args.eval_tasks, seed, args.max_turns)
    curve = Curve(seed)
    start_cpu = _cpu_minutes()
    async with EnvPool([target], env=ENV, max_episodes=512) as pool:
        runner = EpisodeRunner(pool, budget=Budget(turn_tokens=32, trajectory_tokens=args.trajectory_tokens))
        trainer = GRPOTrainer(engine.model, engine.tokenizer, runner,
                              GRPOConfig(lr=args.lr, seed=seed, micro_batch=16, mode="choice"))

        async def evaluate(step: int) -> None:
            trajectories = await sample_k(runner, trainer.policy, held_out, k=8, seed=1000 + seed)
            curve.points.append((_cpu_minutes() - start_cpu, step, avg_success(trajectories)))
            print(f"seed {seed} step {step:3d} cpu {curve.points[-1][0]:5.1f} min  avg@8 {curve.points[-1][2]:.3f}",
                  flush=True)

        await evaluate(0)
        step = 0
        while _cpu_minutes() - start_cpu < args.cpu_minutes:
            batch = [train[(step * args.tasks_per_step + i) % len(train)] for i in range(args.tasks_per_step)]
            stats = await trainer.step(batch)
            step += 1
            curve.steps.append({"step": step, "success": stats.success, "loss": stats.loss,
                                "failed": stats.failed, "tokens": stats.action_tokens})
            if step % args.eval_every == 0:
                await evaluate(step)
        if curve.points[-1][1] != step:
            await evaluate(step)
    engine.close()
    return curve


def _run_seed_process(seed: int, target: str, args: argparse.Namespace, workdir: Path) -> Curve:
    # One thread: the tiny model gains nothing from more, and idle OpenMP threads spinning on a shared machine
    # would count as CPU time.
    torch.set_num_threads(args.threads)
    return asyncio.run(run_seed(seed, target, args, workdir))


def _plot(curves: list[Curve], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for curve in curves:
        ax.plot([p[0] for p in curve.points], [p[2] for p in curve.points], marker="o", label=f"seed {curve.seed}")
    ax.set_xlabel("CPU minutes")
    ax.set_ylabel("avg@8 success, held-out BabyAI easy")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _report(curves: list[Curve], args: argparse.Namespace, png: Path) -> str:
    lines = [
        "# Learning: GRPO on CPU, tiny Qwen2, BabyAI easy, constrained choice", "",
        f"Command: `python -m bench.learning {' '.join(args.argv)}`", "",
        f"Machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"one process per seed with {args.threads} torch thread(s). CPU minutes are this process's CPU time (rollouts, updates, "
        "evaluations, all threads); the env server runs in its own process and is not counted.", "",
        f"Setup: model size `{args.size}`, trained on {args.train_tasks} train-split tasks ({args.tasks_per_step} "
        f"tasks x 8 samples per step, lr {args.lr}), evaluated as avg@8 on {args.eval_tasks} held-out test-split "
        f"tasks, at most {args.max_turns} turns per episode.", "",
        "| seed | avg@8 before | avg@8 after | gain (points) | steps | CPU minutes |",
        "|---|---|---|---|---|---|",
    ]
    for c in curves:
        before, after = c.points[0][2], c.points[-1][2]
        lines.append(f"| {c.seed} | {before:.3f} | {after:.3f} | {100 * (after - before):+.1f} | {c.points[-1][1]} "
                     f"| {c.points[-1][0]:.1f} |")
    lines += ["", f"![learning curves]({png.name})", "", "Learning curves (CPU minutes, step, avg@8):", "", "```"]
    lines += [json.dumps({"seed": c.seed, "points": [[round(m, 2), s, round(a, 4)] for m, s, a in c.points]})
              for c in curves]
    lines += ["```", ""]
    return "\n".join(lines)


def main() -> None:
    import sys

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--cpu-minutes", type=float, default=12.0, help="training budget per seed")
    parser.add_argument("--size", default="tiny")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--train-tasks", type=int, default=200)
    parser.add_argument("--eval-tasks", type=int, default=25)
    parser.add_argument("--tasks-per-step", type=int, default=8)
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--max-turns", type=int, default=10)
    parser.add_argument("--trajectory-tokens", type=int, default=3072)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per seed process")
    parser.add_argument("--out", type=Path, default=Path("bench/results/learning.md"))
    args = parser.parse_args()
    args.argv = sys.argv[1:]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    workdir = args.out.parent / ".learning-work"
    seeds = [int(s) for s in args.seeds.split(",")]
    with LocalServer(ENV, "--log-level", "warning") as server:
        # One process per seed: seeds run side by side, each counting only its own CPU time.
        with ProcessPoolExecutor(len(seeds), mp_context=multiprocessing.get_context("spawn")) as pool:
            curves = list(pool.map(_run_seed_process, seeds, [server.target] * len(seeds), [args] * len(seeds),
                                   [workdir] * len(seeds)))
    png = args.out.with_suffix(".png")
    _plot(curves, png)
    args.out.write_text(_report(curves, args, png))
    print(f"wrote {args.out} and {png}")


if __name__ == "__main__":
    main()
