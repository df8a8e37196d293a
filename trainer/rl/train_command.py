"""`shiftgym train`: GRPO on CPU against running env servers, saving a checkpoint the next stage starts from."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import click

from trainer.client.pool import EnvPool
from trainer.client.rollout_metrics import RolloutMetrics
from trainer.episodes import Budget, EpisodeRunner, EpisodeSpec
from trainer.rl.grpo import GRPOConfig, GRPOTrainer
from trainer.rl.metrics import TrainMetrics


async def train(model_dir: Path, out: Path, env: str, endpoints: str, split: str, difficulty: str, steps: int,
                tasks_per_step: int, config: GRPOConfig, budget: Budget, max_turns: int, metrics_port: int | None,
                interface: tuple[tuple[str, dict[str, str]], ...] = ()) -> list[dict]:
    from env_server.tasks import sample_tasks
    from trainer.policies.hf import HFEngine

    engine = HFEngine.from_pretrained(str(model_dir))
    metrics = RolloutMetrics()
    train_metrics = TrainMetrics(metrics.registry)
    if metrics_port is not None:
        metrics.serve(metrics_port)
    history = []
    async with EnvPool(endpoints, env=env, metrics=metrics) as pool:
        tasks = await _list_tasks(pool, split, difficulty)
        specs = [EpisodeSpec(env, t.task_id, seed=0, interface=interface, max_turns=max_turns)
                 for t in sample_tasks(tasks, len(tasks), config.seed)]
        runner = EpisodeRunner(pool, budget=budget)
        trainer = GRPOTrainer(engine.model, engine.tokenizer, runner, config)
        for step in range(steps):
            batch = [specs[(step * tasks_per_step + i) % len(specs)] for i in range(tasks_per_step)]
            stats = await trainer.step(batch)
            train_metrics.step(stats.reward, stats.success)
            history.append({"step": stats.step, "success": stats.success, "reward": stats.reward,
                            "loss": stats.loss, "failed": stats.failed, "time": time.time()})
            click.echo(f"step {stats.step:4d}  success {stats.success:.3f}  reward {stats.reward:+.3f}  "
                       f"loss {stats.loss:+.4f}  failed {stats.failed}")
    engine.close()
    out.mkdir(parents=True, exist_ok=True)
    engine.model.save_pretrained(out)
    engine.tokenizer.save_pretrained(out)
    (out / "shiftgym_train.json").write_text(json.dumps({"from": str(model_dir), "env": env, "split": split,
                                                         "difficulty": difficulty, "history": history}, indent=2))
    return history


async def _list_tasks(pool: EnvPool, split: str, difficulty: str) -> list:
    from trainer.client.env_client import AsyncEnvClient

    target = next(iter(pool.pods))
    async with AsyncEnvClient(target) as client:
        tasks = await client.list_tasks(split, difficulty)
    if not tasks:
        raise click.ClickException(f"no tasks in split {split!r} at difficulty {difficulty!r} on {target}")
    return tasks


@click.command("train")
@click.option("--model", "model_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="A transformers model directory (e.g. from `shiftgym tiny-model`).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Where to save the trained checkpoint.")
@click.option("--env", required=True, help="Environment name, e.g. babyai.")
@click.option("--endpoints", required=True, help="host:port[,host:port...] or dns:///name:port of its servers.")
@click.option("--split", default="train", show_default=True)
@click.option("--difficulty", default="easy", show_default=True)
@click.option("--steps", default=20, show_default=True, help="GRPO steps.")
@click.option("--tasks-per-step", default=8, show_default=True)
@click.option("--group-size", default=8, show_default=True, help="Samples per task.")
@click.option("--lr", default=2e-3, show_default=True)
@click.option("--mode", type=click.Choice(["choice", "free"]), default="choice", show_default=True)
@click.option("--max-turns", default=10, show_default=True)
@click.option("--turn-tokens", default=32, show_default=True)
@click.option("--trajectory-tokens", default=3072, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--metrics-port", type=int, default=None, help="Serve shiftgym_rollout_* and shiftgym_train_* here.")
def train_command(model_dir: str, out: str, env: str, endpoints: str, split: str, difficulty: str, steps: int,
                  tasks_per_step: int, group_size: int, lr: float, mode: str, max_turns: int, turn_tokens: int,
                  trajectory_tokens: int, seed: int, metrics_port: int | None) -> None:
    """Train a model with GRPO on CPU against running env servers."""
    try:
        config = GRPOConfig(group_size=group_size, lr=lr, mode=mode, seed=seed)  # type: ignore[arg-type]
        budget = Budget(turn_tokens=turn_tokens, trajectory_tokens=trajectory_tokens)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    try:
        asyncio.run(train(Path(model_dir), Path(out), env, endpoints, split, difficulty, steps, tasks_per_step,
                          config, budget, max_turns, metrics_port))
    except (OSError, ValueError) as err:
        raise click.ClickException(str(err)) from None
