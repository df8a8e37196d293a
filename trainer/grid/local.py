"""The local backend: GRPO stages on the CPU driver, evaluations through the episode runner, env servers over gRPC.

One EnvPool per environment (their endpoints from `--endpoints` or the local fleet, trainer/grid/fleet.py). torch
and transformers load only when a model is built, trained or played, so the grid's core imports without them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any, AsyncIterator, Mapping, Sequence

from env_server.tasks import sample_tasks
from env_server.types import TaskInfo
from trainer.client.env_client import AsyncEnvClient
from trainer.client.pool import EnvPool, EpisodeRequest
from trainer.episodes import Budget, EpisodeRunner, EpisodeSpec
from trainer.evaluation import sample_k
from trainer.grid.expand import Cell, Node
from trainer.grid.records import record
from trainer.grid.spec import EvaluationSettings, GridSpec, PolicySpec, Stage
from trainer.policies.scripted import OraclePolicy, RandomPolicy

MAX_EPISODES = 256  # open episodes per environment


def interface_of(name: str) -> tuple[tuple[str, dict[str, str]], ...]:
    return () if name == "original" else (("preset", {"name": name}),)


def held_out_ids(evaluation: EvaluationSettings, tasks: Sequence[TaskInfo]) -> set[str]:
    """The task ids any evaluation cell of one env and difficulty draws from `tasks`: the cells' sample and the
    signal cells' (evaluation.signal_tasks), which a warm start must never train on."""
    counts = {evaluation.tasks, evaluation.signal_tasks} - {0}
    return {t.task_id for count in counts for t in sample_tasks(tasks, count, evaluation.seed)}


class RoutedSource:
    """Episodes of several environments for one runner: a task id names its env (`babyai/train/easy/...`)."""

    def __init__(self, pools: Mapping[str, EnvPool]) -> None:
        self.pools = pools

    def episode(self, request: EpisodeRequest) -> Any:
        env = request.task_id.split("/", 1)[0]
        if env not in self.pools:
            raise KeyError(f"no env server for task {request.task_id!r} (serving: {', '.join(self.pools)})")
        return self.pools[env].episode(request)


class LocalBackend:
    def __init__(self, spec: GridSpec, endpoints: Mapping[str, str]) -> None:
        missing = [env for env in spec.envs if env not in endpoints]
        if missing:
            raise ValueError(f"no endpoints for env(s) {', '.join(missing)}")
        self.spec = spec
        self.endpoints = {env: endpoints[env] for env in spec.envs}
        self.budget = Budget(spec.budget.turn_tokens, spec.budget.trajectory_tokens)
        self.pools: dict[str, EnvPool] = {}
        self._tasks: dict[tuple[str, str, str], list[TaskInfo]] = {}
        self._engine: tuple[str, Any] | None = None

    @contextlib.asynccontextmanager
    async def opened(self) -> AsyncIterator["LocalBackend"]:
        pools = {env: EnvPool(target, env=env, max_episodes=MAX_EPISODES) for env, target in self.endpoints.items()}
        try:
            await asyncio.gather(*(p.start() for p in pools.values()))
            self.pools = pools
            yield self
        finally:
            self._drop_engine()
            await asyncio.gather(*(p.aclose() for p in pools.values()), return_exceptions=True)
            self.pools = {}

    # --- tasks -----------------------------------------------------------------------------------------

    async def tasks(self, env: str, split: str, difficulty: str) -> list[TaskInfo]:
        key = (env, split, difficulty)
        if key not in self._tasks:
            target = self.endpoints[env].split(",")[0].strip()
            async with AsyncEnvClient(target, timeout_s=120) as client:
                found = await client.list_tasks(split, difficulty)
            if not found:
                raise ValueError(f"{env} has no tasks in split {split!r} at difficulty {difficulty!r}")
            self._tasks[key] = sorted(found, key=lambda t: t.task_id)
        return self._tasks[key]

    async def eval_tasks(self, cell: Cell) -> list[TaskInfo]:
        return sample_tasks(await self.tasks(cell.env, cell.split, cell.difficulty), cell.tasks, cell.seed)

    async def stage_specs(self, node: Node) -> list[EpisodeSpec]:
        """The stage's training episodes, steps x tasks_per_step of them; a mixture interleaves its envs' lists,
        each the list that env's own stage would draw, so sequential and mixture training see the same data."""
        stage: Stage = node.stage  # type: ignore[assignment]
        training = self.spec.training
        per_env = -(-node.steps // len(stage.envs)) * training.tasks_per_step
        lists = []
        for env in stage.envs:
            difficulties = training.mixed_difficulties if stage.difficulty == "mixed" else [stage.difficulty]
            pool: list[TaskInfo] = []
            for difficulty in difficulties:
                pool += await self.tasks(env, self.spec.envs[env].train_split, difficulty)
            chosen = sample_tasks(pool, per_env, training.seed)
            chosen = [chosen[i % len(chosen)] for i in range(per_env)]  # cycle when the split is small
            lists.append([EpisodeSpec(env, t.task_id, seed=training.seed, interface=interface_of(stage.interface),
                                      interface_name=stage.interface, max_turns=self.spec.envs[env].max_turns or 0)
                          for t in chosen])
        return [specs[i] for i in range(per_env) for specs in lists]

    # --- models ----------------------------------------------------------------------------------------

    def _engine_for(self, checkpoint: str) -> Any:
        if self._engine is None or self._engine[0] != checkpoint:
            from trainer.policies.hf import HFEngine

            _quiet_transformers()
            self._drop_engine()
            self._engine = (checkpoint, HFEngine.from_pretrained(checkpoint))
        return self._engine[1]

    def _drop_engine(self) -> None:
        if self._engine is not None:
            self._engine[1].close()
            self._engine = None

    def _policy(self, spec: PolicySpec, checkpoint: str | None) -> Any:
        if spec.kind == "oracle":
            return OraclePolicy()
        if spec.kind == "random":
            return RandomPolicy()
        from trainer.policies.base import Sampling
        from trainer.policies.lm import LMPolicy

        assert checkpoint is not None, "an LM policy's cell needs its checkpoint"
        sampling = Sampling(temperature=spec.temperature, max_tokens=self.budget.turn_tokens)
        return LMPolicy(self._engine_for(checkpoint), mode=spec.mode, sampling=sampling)

    # --- the backend interface -------------------------------------------------------------------------

    async def run_evaluation_cell(self, cell: Cell, checkpoint: str | None) -> list[dict[str, Any]]:
        tasks = await self.eval_tasks(cell)
        specs = [EpisodeSpec(cell.env, t.task_id, seed=cell.seed, interface=interface_of(cell.interface),
                             interface_name=cell.interface, max_turns=cell.max_turns) for t in tasks]
        runner = EpisodeRunner(self.pools[cell.env], budget=self.budget)
        policy = self._policy(self.spec.policies[cell.policy], checkpoint)
        trajectories = await sample_k(runner, policy, specs, cell.k, seed=cell.seed)
        return [record(t, i % cell.k) for i, t in enumerate(trajectories)]

    async def run_training_stage(self, node: Node, parent_checkpoint: str | None,
                                 out_dir: Path) -> tuple[str, dict[str, Any]]:
        _quiet_transformers()
        if node.kind == "base":
            return await self._base(node, out_dir)
        assert parent_checkpoint is not None
        self._drop_engine()  # the stage trains its own copy; a cached engine of the parent is stale after
        if node.kind == "warm_start":
            return await self._warm_start(node, parent_checkpoint, out_dir)
        return await self._grpo(node, parent_checkpoint, out_dir)

    async def _base(self, node: Node, out_dir: Path) -> tuple[str, dict[str, Any]]:
        spec = self.spec.policies[node.policy]
        if spec.kind == "pretrained":
            return spec.model, {"model": spec.model}  # type: ignore[return-value]
        from trainer.tiny import DEFAULT_ENVS, make_tiny

        envs = [e for e in DEFAULT_ENVS if e in self.spec.envs] or list(DEFAULT_ENVS)
        await asyncio.to_thread(make_tiny, out_dir, envs=envs, seed=spec.seed, vocab_size=spec.vocab_size,
                                size=spec.size, episodes_per_env=spec.corpus_episodes)
        return str(out_dir), {"tiny": {"envs": envs, "size": spec.size, "vocab_size": spec.vocab_size}}

    async def _warm_start(self, node: Node, parent: str, out_dir: Path) -> tuple[str, dict[str, Any]]:
        from trainer.rl.sft import SFTConfig, warm_start_async

        warm = node.warm_start
        assert warm is not None
        held_out: set[str] = set()
        for env in warm.envs:  # never train on a task any evaluation holds out
            for difficulty in self.spec.evaluation.difficulties:
                tasks = await self.tasks(env, self.spec.test_split(env), difficulty)
                held_out |= held_out_ids(self.spec.evaluation, tasks)
        await warm_start_async(parent, out_dir, self.endpoints, warm.envs, warm.episodes, self.spec.training.seed,
                               difficulties=warm.difficulties, exclude=held_out, budget=self.budget,
                               config=SFTConfig(lr=warm.lr, epochs=warm.epochs, batch_size=warm.batch_size,
                                                seed=self.spec.training.seed))
        info = json.loads((out_dir / "shiftgym_warm_start.json").read_text())
        return str(out_dir), {"warm_start": {k: info.get(k) for k in ("demonstrations", "losses", "lost")},
                              "held_out": len(held_out)}

    async def _grpo(self, node: Node, parent: str, out_dir: Path) -> tuple[str, dict[str, Any]]:
        from trainer.policies.hf import HFEngine
        from trainer.rl.grpo import GRPOConfig, GRPOTrainer

        training, policy = self.spec.training, self.spec.policies[node.policy]
        specs = await self.stage_specs(node)
        _quiet_transformers()
        engine = HFEngine.from_pretrained(parent)
        runner = EpisodeRunner(RoutedSource(self.pools), budget=self.budget)
        trainer = GRPOTrainer(engine.model, engine.tokenizer, runner, GRPOConfig(
            group_size=training.group_size, lr=training.lr, kl_coef=training.kl_coef,
            temperature=training.temperature, mode=policy.mode, seed=training.seed))
        history = []
        try:
            for step in range(node.steps):
                batch = specs[step * training.tasks_per_step:(step + 1) * training.tasks_per_step]
                stats = await trainer.step(batch)
                history.append({"step": stats.step, "success": stats.success, "reward": stats.reward,
                                "loss": stats.loss, "failed": stats.failed})
        finally:
            engine.close()
        await asyncio.to_thread(_save, engine, out_dir)
        return str(out_dir), {"history": history, "tasks": len({s.task_id for s in specs})}


def _quiet_transformers() -> None:
    """No "Loading weights" bars from transformers between the grid's own progress bars."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def _save(engine: Any, out_dir: Path) -> None:
    engine.model.save_pretrained(out_dir)
    engine.tokenizer.save_pretrained(out_dir)


def parse_endpoints(values: Sequence[str]) -> dict[str, str]:
    """ENV=host:port[,host:port] items (also comma-free `a=x b=y` lists) -> {env: endpoints}."""
    parsed = {}
    for value in values:
        env, sep, target = value.partition("=")
        if not sep or not env.strip() or not target.strip():
            raise ValueError(f"bad endpoint {value!r}: give ENV=host:port[,host:port...]")
        parsed[env.strip()] = target.strip()
    return parsed
