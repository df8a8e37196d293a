"""The same grid on GPUs: every training node as OpenRLHF launch files (trainer/launch.py, trainer/sft_launch.py)
and prompt datasets (trainer/datasets.py), in the order they must run, each starting from its parent's output.

    OUT/plan.json                      stages in order: id, kind, label, parent, checkpoint, files, commands
    OUT/stages/<id>/prompts.jsonl      the stage's training episodes (the tasks the CPU driver would draw)
    OUT/stages/<id>/eval.jsonl         the stage's evaluation cells (OpenRLHF's eval, n = k samples each)
    OUT/stages/<id>/launch.json        the LaunchConfig; args.txt its train_ppo_ray argv, env.sh its variables
    OUT/stages/<id>/sft.json, ...      for a warm start: the bc-data commands and the train_sft argv

Tasks are listed in process from the environments' own task lists (no servers needed). A cluster backend
(issue 10) submits these as Jobs; the results come back into the same results store.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any, Mapping, Sequence

from env_server.types import TaskInfo
from trainer.datasets import PromptCell, write_prompts
from trainer.grid.expand import Grid, Node
from trainer.grid.local import interface_of
from trainer.launch import AgentConfig, LaunchConfig

CLUSTER_ENDPOINT = "dns:///{env}.shiftgym.svc.cluster.local:50051"


def _lister() -> Any:
    from env_server import registry

    envs: dict[str, Any] = {}

    def list_tasks(env: str, split: str, difficulty: str) -> Sequence[TaskInfo]:
        if env not in envs:
            envs[env] = registry.load(env)
        return sorted(envs[env].tasks(split, difficulty), key=lambda t: t.task_id)

    return list_tasks


def _launch(grid: Grid, node: Node, parent: str, endpoints: Mapping[str, str], stage_dir: Path,
            output_dir: str, has_eval: bool) -> LaunchConfig:
    spec = grid.spec
    training, policy = spec.training, spec.policies[node.policy]
    agent = AgentConfig(endpoints=dict(endpoints), max_turns={e: s.max_turns for e, s in spec.envs.items()
                                                              if s.max_turns},
                        mode=policy.mode, sample_seed=training.seed)
    return LaunchConfig(
        pretrain=parent, prompt_dataset=str(stage_dir / "prompts.jsonl"),
        eval_dataset=str(stage_dir / "eval.jsonl") if has_eval else None, agent=agent,
        output_dir=output_dir, ckpt_path=output_dir + "-ckpt", seed=training.seed,
        n_samples_per_prompt=training.group_size, actor_learning_rate=training.lr, kl_coef=training.kl_coef,
        temperature=training.temperature, max_len=spec.budget.trajectory_tokens, turn_tokens=spec.budget.turn_tokens,
        rollout_batch_size=training.tasks_per_step, train_batch_size=training.tasks_per_step * training.group_size,
        eval_n_samples_per_prompt=spec.evaluation.k, **training.launch)


def _grpo_files(grid: Grid, node: Node, parent: str, endpoints: Mapping[str, str], stage_dir: Path,
                output_dir: str, lister: Any) -> dict[str, Any]:
    spec, stage = grid.spec, node.stage
    assert stage is not None
    training = spec.training
    per_env = -(-node.steps // len(stage.envs)) * training.tasks_per_step
    difficulties = training.mixed_difficulties if stage.difficulty == "mixed" else [stage.difficulty]
    cells = [PromptCell(f"train/{env}/{d}/{stage.interface}", env, spec.envs[env].train_split, d,
                        interface_of(stage.interface), -(-per_env // len(difficulties)), (training.seed,),
                        training.seed, spec.envs[env].max_turns or 0)
             for env in stage.envs for d in difficulties]
    lines = write_prompts(stage_dir / "prompts.jsonl", cells, lister)
    evals = [PromptCell(f"{c.env}/{c.difficulty}/{c.interface}", c.env, c.split, c.difficulty,
                        interface_of(c.interface), c.tasks, (c.seed,), c.seed, c.max_turns)
             for c in grid.cells.values() if c.node == node.id]
    eval_lines = write_prompts(stage_dir / "eval.jsonl", evals, lister) if evals else 0
    launch = _launch(grid, node, parent, endpoints, stage_dir, output_dir, bool(evals))
    (stage_dir / "launch.json").write_text(launch.model_dump_json(indent=2))
    (stage_dir / "args.txt").write_text("".join(arg + "\n" for arg in launch.argv()))
    (stage_dir / "env.sh").write_text("".join(f"export {k}={shlex.quote(v)}\n" for k, v in launch.environ().items()))
    return {"prompts": lines, "eval_prompts": eval_lines,
            "commands": [f". {stage_dir / 'env.sh'} && " + shlex.join(launch.command())]}


def _warm_files(grid: Grid, node: Node, parent: str, endpoints: Mapping[str, str], stage_dir: Path,
                output_dir: str) -> dict[str, Any]:
    from trainer.sft_launch import SFTLaunchConfig

    warm = node.warm_start
    assert warm is not None
    commands = [shlex.join(["shiftgym", "bc-data", str(stage_dir / f"bc-{env}.jsonl"), "--env", env, "--endpoint",
                            endpoints[env], "--difficulty", ",".join(warm.difficulties), "--episodes",
                            str(warm.episodes), "--seed", str(grid.spec.training.seed)]) for env in warm.envs]
    joined = stage_dir / "bc.jsonl"
    commands.append(f"cat {' '.join(shlex.quote(str(stage_dir / f'bc-{e}.jsonl')) for e in warm.envs)} > {joined}")
    sft = SFTLaunchConfig(pretrain=parent, dataset=str(joined), output_dir=output_dir,
                          max_len=grid.spec.budget.trajectory_tokens, max_epochs=warm.epochs,
                          seed=grid.spec.training.seed)
    (stage_dir / "sft.json").write_text(sft.model_dump_json(indent=2))
    (stage_dir / "sft-args.txt").write_text("".join(arg + "\n" for arg in sft.argv()))
    return {"commands": commands + [shlex.join(sft.command())]}


def emit(grid: Grid, out_dir: Path, endpoints: Mapping[str, str], checkpoints: str) -> dict[str, Any]:
    """Write every needed node's files under `out_dir` and `plan.json`; returns the plan."""
    spec = grid.spec
    targets = {env: endpoints.get(env) or CLUSTER_ENDPOINT.format(env=env) for env in spec.envs}
    lister = _lister()
    outputs: dict[str, str] = {}
    stages = []
    for node in grid.training_order():
        entry: dict[str, Any] = {"id": node.id, "kind": node.kind, "label": node.label, "parent": node.parent}
        policy = spec.policies[node.policy]
        if node.kind == "base":
            outputs[node.id] = policy.model if policy.kind == "pretrained" else f"{checkpoints}/{node.id}"
            if policy.kind == "tiny":
                entry["commands"] = [shlex.join(["shiftgym", "tiny-model", "--out", outputs[node.id], "--size",
                                                 policy.size, "--vocab-size", str(policy.vocab_size), "--seed",
                                                 str(policy.seed)])]
            entry["checkpoint"] = outputs[node.id]
            stages.append(entry)
            continue
        stage_dir = (out_dir / "stages" / node.id).resolve()
        stage_dir.mkdir(parents=True, exist_ok=True)
        outputs[node.id] = f"{checkpoints}/{node.id}"
        parent = outputs[node.parent]  # type: ignore[index]
        try:
            if node.kind == "warm_start":
                entry.update(_warm_files(grid, node, parent, targets, stage_dir, outputs[node.id]))
            else:
                entry.update(_grpo_files(grid, node, parent, targets, stage_dir, outputs[node.id], lister))
        except ValueError as err:
            raise ValueError(f"stage {node.label}: {err}") from None
        entry.update({"checkpoint": outputs[node.id], "dir": str(stage_dir)})
        stages.append(entry)
    plan = {"spec": spec.name, "endpoints": targets, "checkpoints": checkpoints, "stages": stages}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "plan.json").write_text(json.dumps(plan, indent=2) + "\n")
    return plan
