"""Warm-start benchmark: behaviour cloning on oracle episodes, then GRPO, makes a tiny policy read its mission.

A tiny Qwen2 model (random init) is behaviour-cloned on the oracle's episodes of every BabyAI train-split level
whose mission names an object (GoToLocal and its easy and medium neighbours; the oracle's action tokens only,
trainer/rl/sft.py), then trained with GRPO in constrained-choice mode on the GoToLocal train tasks, and evaluated as
avg@8 on every GoToLocal held-out test task, with the rate at which its first "go to" action names the mission's
object against the chance of picking that object among the ones in view. Per seed: curves (PNG) and the numbers.

    python -m bench.warm_start --out bench/results/warm_start.md
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from env_server import registry
from env_server.envs.base import Environment
from env_server.types import TaskInfo
from trainer.bc_dataset import check_disjoint, choose_tasks
from trainer.client.pool import EnvPool
from trainer.episodes import Budget, EpisodeRunner, EpisodeSpec
from trainer.evaluation import avg_success, sample_k
from trainer.local_servers import LocalServer
from trainer.policies.scripted import RandomPolicy
from trainer.rl.grpo import GRPOConfig, GRPOTrainer
from trainer.rl.sft import SFTConfig, SFTTrainer, oracle_demonstrations
from trainer.shaping import Shaping
from trainer.tiny import make_tiny
from trainer.trajectory import Trajectory

ENV, DIFFICULTY, LEVEL = "babyai", "easy", "GoToLocal"
# Train-split levels whose mission names the object to reach or pick up among others: more varied practice at
# reading the mission than 200 GoToLocal grids alone, which a tiny model memorises instead.
BC_LEVELS = ("GoToLocal", "PickupDist", "PickupLoc", "ActionObjDoor", "GoToObjDoor", "GoToObj", "GoToRedBall",
             "GoToDoor")
BC_DIFFICULTIES = ("easy", "medium")
_GO_TO = re.compile(r"^go to (?:the |a )?(\w+ \w+)")


@dataclass(frozen=True, slots=True)
class Point:
    phase: str  # "init", "bc" or "grpo"
    step: int  # BC epochs or GRPO steps done
    cpu_min: float  # this process's CPU time plus the env server's, since the seed started
    wall_min: float
    avg8: float
    target_rate: float  # first "go to" actions naming the mission's object


@dataclass
class Run:
    seed: int
    points: list[Point] = field(default_factory=list)
    demonstrations: int = 0
    bc_losses: list[float] = field(default_factory=list)
    grpo: list[dict] = field(default_factory=list)
    eval_cpu_min: float = 0.0
    process_cpu_min: float = 0.0
    server_cpu_min: float = 0.0


class Clock:
    """CPU minutes of this process (all its threads) plus the env server's process, and wall minutes."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.start = (time.process_time(), self._server(), time.monotonic())

    def _server(self) -> float:
        fields_ = Path(f"/proc/{self.server_pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields_[11]) + int(fields_[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def parts(self) -> tuple[float, float]:
        return (time.process_time() - self.start[0]) / 60, (self._server() - self.start[1]) / 60

    def cpu(self) -> float:
        return sum(self.parts())

    def wall(self) -> float:
        return (time.monotonic() - self.start[2]) / 60


def mission_object(task_id: str) -> tuple[str, float]:
    """The mission's object ("green ball") and the chance that a uniform pick among the "go to" actions the oracle
    chose from names it (duplicates such as "grey ball 1", "grey ball 2" all count)."""
    episode = registry.load(ENV).reset(task_id, 0)
    try:
        target = _GO_TO.match(episode.observe().fields["mission"]).group(1)  # type: ignore[union-attr]
        observation = episode.observe()
        while True:
            go_tos = [a for a in observation.valid_actions if a.startswith("go to ")]
            action = episode.oracle_action()
            if action.startswith("go to "):
                return target, sum(_named(a) == target for a in go_tos) / len(go_tos)
            result = episode.step(action)
            if result.done:
                return target, 0.0
            observation = result.observation
    finally:
        episode.close()


_MISSIONS: dict[str, tuple[str, float]] = {}


def _named(action: str) -> str | None:
    found = _GO_TO.match(action)
    return found.group(1) if found else None


def target_rate(trajectories: list[Trajectory]) -> float:
    """Of the episodes with a "go to" action, the fraction whose first one names the mission's object."""
    first = [(t.task_id, next((turn.action for turn in t.turns if _named(turn.action)), None)) for t in trajectories]
    named = [(task, action) for task, action in first if action is not None]
    return sum(_named(a) == _MISSIONS[task][0] for task, a in named) / len(named) if named else 0.0


async def run_seed(seed: int, server: LocalServer, args: argparse.Namespace, workdir: Path) -> Run:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    env = registry.load(ENV)
    choice = choose_tasks(lambda split: env.tasks(split, DIFFICULTY), warm_start=args.train_tasks,
                          held_out=args.eval_tasks, seed=seed, match=LEVEL)
    bc_tasks = [*choice.warm_start, *bc_neighbours(env, args)]
    check_disjoint((t.task_id for t in bc_tasks), (t.task_id for t in choice.held_out))
    for task in choice.held_out:
        _MISSIONS.setdefault(task.task_id, mission_object(task.task_id))
    model_dir = make_tiny(workdir / f"tiny-{seed}", envs=[ENV], seed=seed, vocab_size=1024, size=args.size)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    budget = Budget(turn_tokens=32, trajectory_tokens=args.trajectory_tokens)
    held_out = [EpisodeSpec(ENV, t.task_id, seed=0, max_turns=args.max_turns) for t in choice.held_out]
    train = [EpisodeSpec(ENV, t.task_id, seed=0, max_turns=args.grpo_max_turns) for t in choice.warm_start]
    run = Run(seed)
    # At most 64 open episodes: the engine's prefix cache keeps 256 prompts, and more episodes in flight than
    # that evict each other's prompts round-robin, so every turn would recompute its whole history.
    async with EnvPool([server.target], env=ENV, max_episodes=64) as pool:
        runner = EpisodeRunner(pool, budget=budget, shaping=Shaping(step_cost=args.step_cost))
        trainer = GRPOTrainer(model, tokenizer, runner, GRPOConfig(lr=args.grpo_lr, seed=seed, mode="choice",
                                                                   kl_coef=args.kl_coef))

        async def evaluate(phase: str, step: int) -> None:
            if clock is None:  # the starting point, before the budget's clock starts
                trajectories = await sample_k(runner, trainer.policy, held_out, k=8, seed=1000 + seed)
                run.points.append(Point(phase, step, 0.0, 0.0, avg_success(trajectories), target_rate(trajectories)))
                print(f"seed {seed} init  avg@8 {run.points[-1].avg8:.3f}  target {run.points[-1].target_rate:.3f}",
                      flush=True)
                return
            started = clock.cpu()
            trajectories = await sample_k(runner, trainer.policy, held_out, k=8, seed=1000 + seed)
            point = Point(phase, step, clock.cpu(), clock.wall(), avg_success(trajectories),
                          target_rate(trajectories))
            run.eval_cpu_min += clock.cpu() - started
            run.points.append(point)
            print(f"seed {seed} {phase:4s} {step:3d}  cpu {point.cpu_min:5.2f} min  wall {point.wall_min:5.2f} min  "
                  f"avg@8 {point.avg8:.3f}  target {point.target_rate:.3f}", flush=True)

        clock: Clock | None = None
        await evaluate("init", 0)
        clock = Clock(server.pid)
        plan = [(t, 0) for t in bc_tasks]
        demos, lost = await oracle_demonstrations(pool, ENV, plan, tokenizer, max_turns=args.max_turns, budget=budget)
        run.demonstrations = len(demos)
        sft = SFTTrainer(model, SFTConfig(lr=args.bc_lr, epochs=args.bc_epochs, batch_size=16, seed=seed,
                                          schedule=args.bc_schedule, warmup_frac=args.bc_warmup))
        for epoch in range(1, args.bc_epochs + 1):
            run.bc_losses.append(await asyncio.to_thread(sft.epoch, [d.trajectory for d in demos]))
            trainer.engine.weights_changed()
            if epoch % args.bc_eval_every == 0 or epoch == args.bc_epochs:
                await evaluate("bc", epoch)
        step = 0
        while clock.cpu() < args.cpu_minutes - args.reserve_minutes and step < args.max_grpo_steps:
            batch = [train[(step * args.tasks_per_step + i) % len(train)] for i in range(args.tasks_per_step)]
            stats = await trainer.step(batch)
            step += 1
            run.grpo.append({"step": step, "success": round(stats.success, 4), "loss": round(stats.loss, 5)})
            if step % args.eval_every == 0:
                await evaluate("grpo", step)
        if run.points[-1].phase != "grpo" or run.points[-1].step != step:
            await evaluate("grpo", step)
    trainer.engine.close()
    run.process_cpu_min, run.server_cpu_min = clock.parts() if clock else (0.0, 0.0)
    return run


def bc_neighbours(env: Environment, args: argparse.Namespace) -> list[TaskInfo]:
    """The first `--bc-tasks-per-level` train-split tasks of every BC level but GoToLocal (its tasks come from
    `choose_tasks`, which keeps them apart from the held-out ones)."""
    levels = _others(args)
    tasks = [t for difficulty in BC_DIFFICULTIES for t in env.tasks("train", difficulty)
             if t.metadata["level"] in levels and int(t.task_id.rsplit("-", 1)[1]) < args.bc_tasks_per_level]
    missing = set(levels) - {t.metadata["level"] for t in tasks}
    if missing:
        raise SystemExit(f"--bc-levels: no train tasks for {', '.join(sorted(missing))} "
                         f"(levels of {', '.join(BC_DIFFICULTIES)}: see env_server/envs/babyai/env.py)")
    return tasks


async def random_baseline(target: str, args: argparse.Namespace) -> tuple[float, float]:
    env = registry.load(ENV)
    tasks = [t for t in env.tasks("test", DIFFICULTY) if LEVEL in t.task_id][: args.eval_tasks]
    for task in tasks:
        _MISSIONS.setdefault(task.task_id, mission_object(task.task_id))
    specs = [EpisodeSpec(ENV, t.task_id, seed=0, max_turns=args.max_turns) for t in tasks]
    async with EnvPool([target], env=ENV) as pool:
        trajectories = await sample_k(EpisodeRunner(pool), RandomPolicy(), specs, k=8, seed=1)
    return avg_success(trajectories), target_rate(trajectories)


def _plot(runs: list[Run], path: Path, chance: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for run in runs:
        cpu = [p.cpu_min for p in run.points]
        line = axes[0].plot(cpu, [p.avg8 for p in run.points], marker="o", ms=3, label=f"seed {run.seed}")[0]
        axes[1].plot(cpu, [p.target_rate for p in run.points], marker="o", ms=3, color=line.get_color(),
                     label=f"seed {run.seed}")
        switch = next((p.cpu_min for p in run.points if p.phase == "grpo"), None)
        if switch is not None:
            for ax in axes:
                ax.axvline(switch, color=line.get_color(), ls=":", alpha=0.5)
    axes[0].axhline(0.85, color="grey", ls="--", lw=1, label="target 0.85")
    axes[1].axhline(chance, color="grey", ls="--", lw=1, label=f"chance {chance:.2f}")
    axes[0].set_ylabel(f"avg@8 success, held-out {LEVEL}")
    axes[1].set_ylabel('first "go to" names the mission object')
    for ax in axes:
        ax.set_xlabel("CPU minutes (trainer + env server); dotted: BC -> GRPO")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _others(args: argparse.Namespace) -> list[str]:
    return [level for level in args.bc_levels.split(",") if level and level != LEVEL]


def _report(runs: list[Run], args: argparse.Namespace, png: Path, chance: float, rand: tuple[float, float]) -> str:
    lines = [
        f"# Warm start: behaviour cloning then GRPO on CPU, tiny Qwen2, BabyAI {LEVEL}", "",
        f"Command: `python -m bench.warm_start {' '.join(args.argv)}`", "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores shared with other jobs, "
        f"torch {torch.__version__}, {torch.get_num_threads()} torch threads.", "",
        f"Setup: model size `{args.size}` from random init (tokenizer trained on BabyAI oracle text, "
        "`trainer/tiny.py`). Behaviour cloning: the oracle's episodes on the "
        f"{args.train_tasks} {LEVEL} train-split tasks and the first {args.bc_tasks_per_level} train-split tasks of "
        f"each other level whose mission names an object ({', '.join(_others(args))}), assembled by the RL path's "
        f"EpisodeRunner, cross-entropy on action tokens only, {args.bc_epochs} epochs, batch 16, lr {args.bc_lr} "
        f"({args.bc_schedule}, {args.bc_warmup:g} of the steps warming up). Then GRPO in choice mode on the "
        f"{args.train_tasks} {LEVEL} train tasks "
        f"({args.tasks_per_step} tasks x 8 samples per step, lr {args.grpo_lr}, KL {args.kl_coef:g}, reward success - "
        f"{args.step_cost:g} x turns, at most {args.grpo_max_turns} turns per training rollout) until "
        f"{args.cpu_minutes:g} CPU "
        f"minutes less a {args.reserve_minutes:g}-minute reserve for the last evaluation, or {args.max_grpo_steps} "
        f"steps. Evaluation: avg@8 on all {args.eval_tasks} {LEVEL} held-out test-split tasks (disjoint from the "
        f"training tasks: other grids, checked), at most {args.max_turns} turns.", "",
        "**Clock.** CPU minutes are this process's CPU time (every thread: rollouts, BC, GRPO updates and the "
        "evaluations plotted, which are counted in the budget) plus the env server process's CPU time, from the "
        "start of recording the oracle episodes; building the tiny model (seconds) and evaluating it before "
        "training are not counted. Wall minutes "
        "are on a 2-core machine shared with other jobs.", "",
        f"**Chance.** A uniform pick among the \"go to\" actions the oracle chose from names the mission's object "
        f"with probability {chance:.3f} on these held-out tasks (mean over tasks); a uniform-random policy over "
        f"all valid actions gets avg@8 {rand[0]:.3f} and its first \"go to\" names the mission object "
        f"{rand[1]:.3f} of the time.", "",
        "| seed | oracle episodes | avg@8 init | avg@8 after BC | avg@8 final | target rate after BC | "
        "target rate final | GRPO steps | CPU min (process + server) | of which eval | wall min |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        init = r.points[0]
        bc = [p for p in r.points if p.phase == "bc"][-1]
        last = r.points[-1]
        lines.append(
            f"| {r.seed} | {r.demonstrations} | {init.avg8:.3f} | {bc.avg8:.3f} | **{last.avg8:.3f}** | "
            f"{bc.target_rate:.3f} | {last.target_rate:.3f} | {len(r.grpo)} | {last.cpu_min:.2f} "
            f"({r.process_cpu_min:.2f} + {r.server_cpu_min:.2f}) | {r.eval_cpu_min:.2f} | {last.wall_min:.2f} |")
    passed = all(r.points[-1].avg8 >= 0.85 and r.points[-1].cpu_min <= args.cpu_minutes for r in runs)
    lines += ["", f"Target avg@8 >= 0.85 on held-out seeds within {args.cpu_minutes:g} CPU minutes in every seed: "
              f"**{'met' if passed else 'not met'}**.", "", f"![learning curves]({png.name})", "",
              "Curves (phase, step, CPU minutes, wall minutes, avg@8, target rate) and BC losses per epoch:", "",
              "```"]
    for r in runs:
        lines.append(json.dumps({"seed": r.seed, "bc_losses": [round(x, 4) for x in r.bc_losses], "points": [
            [p.phase, p.step, round(p.cpu_min, 2), round(p.wall_min, 2), round(p.avg8, 4), round(p.target_rate, 4)]
            for p in r.points]}))
    lines += ["```", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    # Three seeds at 5 CPU minutes each keep the whole benchmark within the 15 CPU minutes issue 11 allows.
    parser.add_argument("--cpu-minutes", type=float, default=5.0, help="budget per seed, everything counted")
    parser.add_argument("--reserve-minutes", type=float, default=0.5, help="kept for the last evaluation")
    parser.add_argument("--size", default="tiny")
    parser.add_argument("--train-tasks", type=int, default=200, help="GoToLocal train tasks (200 exist)")
    parser.add_argument("--eval-tasks", type=int, default=40, help="GoToLocal test tasks (40 exist)")
    parser.add_argument("--bc-levels", default=",".join(BC_LEVELS), help="train-split levels the oracle "
                        f"demonstrates ({', '.join(BC_DIFFICULTIES)}); GoToLocal's tasks are --train-tasks")
    parser.add_argument("--bc-tasks-per-level", type=int, default=200, help="of the other BC levels (200 exist)")
    parser.add_argument("--bc-epochs", type=int, default=12)
    parser.add_argument("--bc-lr", type=float, default=3e-3)
    parser.add_argument("--bc-schedule", default="cosine", choices=("constant", "cosine"))
    parser.add_argument("--bc-warmup", type=float, default=0.05, help="share of BC steps ramping the lr up")
    parser.add_argument("--bc-eval-every", type=int, default=6)
    parser.add_argument("--grpo-lr", type=float, default=1e-4)
    parser.add_argument("--max-grpo-steps", type=int, default=10)
    parser.add_argument("--grpo-max-turns", type=int, default=4, help="turn limit of GRPO's training rollouts")
    parser.add_argument("--step-cost", type=float, default=0.1, help="GRPO reward: success - step_cost * turns")
    parser.add_argument("--kl-coef", type=float, default=0.0, help="GRPO's KL to the warm-started policy")
    parser.add_argument("--tasks-per-step", type=int, default=8)
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--max-turns", type=int, default=10)
    parser.add_argument("--trajectory-tokens", type=int, default=3072)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default); a tiny model "
                        "gains nothing from more on a shared 2-core machine")
    parser.add_argument("--out", type=Path, default=Path("bench/results/warm_start.md"))
    args = parser.parse_args()
    args.argv = sys.argv[1:]
    if args.threads:
        torch.set_num_threads(args.threads)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="warm-start-"))  # the tiny models, outside the repository
    runs = []
    with LocalServer(ENV, "--enable-oracle", "--log-level", "warning") as server:
        for seed in (int(s) for s in args.seeds.split(",")):
            runs.append(asyncio.run(run_seed(seed, server, args, workdir)))
        rand = asyncio.run(random_baseline(server.target, args))
    shutil.rmtree(workdir, ignore_errors=True)
    chance = sum(_MISSIONS[t][1] for t in _MISSIONS) / len(_MISSIONS)
    png = args.out.with_suffix(".png")
    _plot(runs, png, chance)
    args.out.write_text(_report(runs, args, png, chance, rand))
    print(f"wrote {args.out} and {png}")


if __name__ == "__main__":
    main()
