"""What each workload runs: the files, environment and command of every training stage and evaluation cell.

Training stages come from `shiftgym grid emit` (trainer/grid/gpu.py), written once into the run directory: the
OpenRLHF launch of a GRPO stage, its prompt and eval JSONL, the behaviour-cloning commands and SFT launch of a warm
start. Only the paths change for the pod. The workload's ConfigMap, mounted at /etc/shiftgym/train, holds
launch.sh and the launch arguments, and the datasets gzip-compressed (the paper preset's 6400 prompts a stage are
~2 MB of JSONL, over a ConfigMap's 1 MiB; compressed, ~5% of that); the workload's run.sh unpacks them next to the
checkpoints, where every pod of a RayJob can read them, then runs launch.sh. Checkpoints live on a
PersistentVolumeClaim under one sub-path per run, each stage writing `<root>/<node id>` and starting from the
checkpoint the runner hands it (its parent's).
"""

from __future__ import annotations

import base64
import gzip
import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainer.grid.expand import Cell, Grid, Node
from trainer.grid.spec import dump_spec
from trainer.launch import ENDPOINTS_PREFIX, LaunchConfig

FILES_DIR = "/etc/shiftgym/train"  # where the workload's ConfigMap is mounted (the templates' "train" volume)
WORK_DIR = "/tmp/stage"  # scratch for warm-start data: the templates' /tmp emptyDir
# The agent executor inside the trainer image (the Dockerfile installs trainer/ into /opt/venv).
IMAGE_AGENT_PATH = "/opt/venv/lib/python3.11/site-packages/trainer/openrlhf_agent.py"
ENV_PORT = 50051
CONFIGMAP_MAX_BYTES = 1_000_000  # the API server refuses objects over ~1 MiB


class PlanError(ValueError):
    """A stage that cannot run as a workload as configured (too large a dataset, more nodes than a Job has)."""


@dataclass(frozen=True, slots=True)
class Checkpoints:
    """Where stages write: `claim` mounted at `mount`, each run under `subpath`."""

    claim: str = "shiftgym-checkpoints"
    subpath: str = "shiftgym"
    mount: str = "/checkpoints"

    def __post_init__(self) -> None:
        parts = self.subpath.strip("/").split("/")
        if not self.subpath.strip("/") or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"bad checkpoints sub-path {self.subpath!r}: give a relative path such as shiftgym/run1")

    @property
    def root(self) -> str:
        return f"{self.mount}/{self.subpath.strip('/')}"


@dataclass(frozen=True, slots=True)
class WorkloadSpec:
    """One workload's content; the manifests module puts it into the rendered templates."""

    files: dict[str, str]  # ConfigMap data, mounted at FILES_DIR
    binary: dict[str, str] = field(default_factory=dict)  # ConfigMap binaryData (base64), mounted there too
    env: dict[str, str] = field(default_factory=dict)
    command: tuple[str, ...] | None = None  # None: the template's own
    gpu: bool = True
    num_nodes: int = 1  # > 1 needs a RayJob
    gpus_per_node: int = 1


def cluster_endpoints(envs: list[str], namespace: str) -> dict[str, str]:
    """Each env's headless Service, resolved to every ready pod by the client pool."""
    return {env: f"dns:///{env}.{namespace}.svc.cluster.local:{ENV_PORT}" for env in envs}


def _script(commands: list[str]) -> str:
    return "#!/bin/sh\nset -eu\n" + "".join(c + "\n" for c in commands)


def _packed(text: str) -> str:
    return base64.b64encode(gzip.compress(text.encode(), mtime=0)).decode()


def _unpack(name: str, target: str) -> str:
    """A shell line writing the ConfigMap's `name`.gz, unpacked, to `target` (python: the image surely has it)."""
    code = "import gzip, sys; sys.stdout.buffer.write(gzip.open(sys.argv[1]).read())"
    return f"python -c {shlex.quote(code)} {FILES_DIR}/{name}.gz > {target}"


class ClusterPlan:
    def __init__(self, grid: Grid, work_dir: Path, namespace: str, checkpoints: Checkpoints,
                 launch_script: str) -> None:
        from trainer.grid.gpu import emit

        self.grid = grid
        self.namespace = namespace
        self.checkpoints = checkpoints
        self.launch_script = launch_script
        self.endpoints = cluster_endpoints(list(grid.spec.envs), namespace)
        self.stages = {s["id"]: s for s in emit(grid, work_dir, self.endpoints, checkpoints.root)["stages"]}

    def checkpoint(self, node: Node) -> str:
        return self.stages[node.id]["checkpoint"]

    def _files(self, binary: dict[str, str] | None = None, **files: str) -> dict[str, str]:
        files = {"launch.sh": self.launch_script, **files}
        size = sum(len(v.encode()) for v in files.values()) + sum(len(v) for v in (binary or {}).values())
        if size > CONFIGMAP_MAX_BYTES:
            raise PlanError(f"a workload's files take {size} bytes, over a ConfigMap's limit: fewer steps or tasks "
                            "per stage")
        return files

    def stage(self, node: Node, parent_checkpoint: str | None) -> WorkloadSpec | None:
        """The stage's workload, starting from `parent_checkpoint`; None when nothing runs (a pretrained model)."""
        entry = self.stages[node.id]
        if node.kind == "base":
            commands = entry.get("commands")
            return None if not commands else WorkloadSpec(self._files(**{"run.sh": _script(commands)}),
                                                          command=("/bin/sh", f"{FILES_DIR}/run.sh"), gpu=False)
        assert parent_checkpoint is not None, f"stage {node.label} needs its parent's checkpoint"
        stage_dir = Path(entry["dir"])
        if node.kind == "warm_start":
            return self._warm_start(entry, stage_dir, parent_checkpoint)
        launch = LaunchConfig.model_validate_json((stage_dir / "launch.json").read_text())
        has_eval = launch.eval_dataset is not None
        data = f"{self.checkpoints.root}/{node.id}-data"
        launch = launch.model_copy(update={
            "pretrain": parent_checkpoint, "agent_path": IMAGE_AGENT_PATH, "prompt_dataset": f"{data}/prompts.jsonl",
            "eval_dataset": f"{data}/eval.jsonl" if has_eval else None})
        LaunchConfig.model_validate(launch.model_dump())  # the updated copy still meets the config's rules
        datasets = ["prompts.jsonl"] + (["eval.jsonl"] if has_eval else [])
        binary = {f"{name}.gz": _packed((stage_dir / name).read_text()) for name in datasets}
        run = _script([f"mkdir -p {data}", *(_unpack(name, f"{data}/{name}") for name in datasets),
                       f"exec /bin/sh {FILES_DIR}/launch.sh"])
        files = {"train-args.txt": "".join(a + "\n" for a in launch.argv()), "run.sh": run,
                 "launch.json": launch.model_dump_json(indent=2)}
        return WorkloadSpec(self._files(binary, **files), binary=binary, env=launch.environ(),
                            command=("/bin/sh", f"{FILES_DIR}/run.sh"), num_nodes=launch.num_nodes,
                            gpus_per_node=launch.gpus_per_node)

    def _warm_start(self, entry: dict[str, Any], stage_dir: Path, parent: str) -> WorkloadSpec:
        from trainer.sft_launch import SFTLaunchConfig

        sft = SFTLaunchConfig.model_validate_json((stage_dir / "sft.json").read_text())
        sft = sft.model_copy(update={"pretrain": parent, "dataset": f"{WORK_DIR}/bc.jsonl"})
        # The behaviour-cloning data is made in the pod, into its scratch directory instead of the local one.
        data = [c.replace(str(stage_dir), WORK_DIR) for c in entry["commands"][:-1]]
        commands = [f"mkdir -p {WORK_DIR}", *data, shlex.join(sft.command())]
        return WorkloadSpec(self._files(**{"run.sh": _script(commands), "sft.json": sft.model_dump_json(indent=2)}),
                            command=("/bin/sh", f"{FILES_DIR}/run.sh"))

    def cell(self, cell: Cell, checkpoint: str | None) -> WorkloadSpec:
        """An evaluation: `python -m trainer.grid.kube.evaluate` over the cell, its records printed to the log."""
        config = {"cell": cell.key, "checkpoint": checkpoint, "spec": dump_spec(self.grid.spec)}
        env = {ENDPOINTS_PREFIX + e.upper(): target for e, target in self.endpoints.items()}
        trainable = self.grid.spec.policies[cell.policy].trainable
        return WorkloadSpec(self._files(**{"cell.json": json.dumps(config, indent=2)}), env=env,
                            command=("python", "-m", "trainer.grid.kube.evaluate", f"{FILES_DIR}/cell.json"),
                            gpu=trainable)
