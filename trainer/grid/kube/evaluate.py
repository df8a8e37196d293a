"""The evaluation Job's entry point: `python -m trainer.grid.kube.evaluate CELL.json`.

CELL.json (the Job's ConfigMap) holds the grid spec, the cell's key and the checkpoint on the checkpoints volume.
The cell runs exactly as the local backend runs it (same task sampling, seeds and records), with the env servers
of SHIFTGYM_ENDPOINTS_<ENV> and, for a trained policy, a vLLM engine over the checkpoint; its records go to stdout
as one checksummed block (trainer/grid/kube/results.py) that the runner reads back from the pod's log.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from trainer.grid.local import LocalBackend
from trainer.launch import ENDPOINTS_PREFIX

GPU_MEMORY_UTILIZATION = 0.85  # the pod holds its GPU alone


class VLLMCellBackend(LocalBackend):
    """The local backend's evaluation with vLLM in place of transformers for trained policies."""

    def _engine_for(self, checkpoint: str) -> Any:
        if self._engine is None or self._engine[0] != checkpoint:
            from trainer.policies.vllm import VLLMEngine

            self._drop_engine()
            max_len = self.spec.budget.trajectory_tokens
            self._engine = (checkpoint, VLLMEngine.standalone(checkpoint, max_model_len=max_len,
                                                              gpu_memory_utilization=GPU_MEMORY_UTILIZATION))
        return self._engine[1]


def endpoints_from(environ: dict[str, str]) -> dict[str, str]:
    return {name[len(ENDPOINTS_PREFIX):].lower(): value for name, value in environ.items()
            if name.startswith(ENDPOINTS_PREFIX) and value.strip()}


async def evaluate(config: dict[str, Any], environ: dict[str, str]) -> str:
    """The record block of the cell `config` names."""
    import yaml

    from trainer.grid.expand import expand
    from trainer.grid.kube import results
    from trainer.grid.spec import parse_spec

    spec = parse_spec(yaml.safe_load(config["spec"]))
    cell = expand(spec).cells.get(config["cell"])
    if cell is None:
        raise ValueError(f"cell {config['cell']} is not in the grid of spec {spec.name!r}")
    backend = VLLMCellBackend(spec, endpoints_from(environ))
    async with backend.opened():
        records = await backend.run_evaluation_cell(cell, config.get("checkpoint"))
    return results.encode(cell.key, records)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m trainer.grid.kube.evaluate CELL.json", file=sys.stderr)
        return 2
    try:
        config = json.loads(Path(args[0]).read_text())
        block = asyncio.run(evaluate(config, dict(os.environ)))
    except (OSError, ValueError, KeyError) as err:
        print(f"evaluate: {err}", file=sys.stderr)
        return 1
    sys.stdout.write(block)  # one write: the block's lines stay together
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
