"""One rollout actor in its own process, for tests/trainer/test_agent_metrics.py.

    python -m tests.trainer.metrics_actor MODEL_DIR LABEL...

ShiftGym's AgentExecutor is built by OpenRLHF's own loader from the agent file, as every vLLM rollout actor builds
it, with its settings from the environment (SHIFTGYM_*, PROMETHEUS_MULTIPROC_DIR) as in a pod. It plays the labelled
episodes through execute() against the env servers; FakeVLLMEngine over the tiny model at MODEL_DIR stands in for
the vLLM engine, which cannot run here. Prints `READY serving=0|1` once built, `PLAYED {json}` with the counts its
own registry holds once the episodes are over, then stays alive (its live gauges with it) until stdin closes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys

import torch
from openrlhf.utils.agent import AgentExecutorBase

from tests.fakes.vllm_engine import FakeSamplingParams, FakeVLLMEngine
from tests.trainer import openrlhf_code
from trainer.launch import AGENT_FILE
from trainer.policies.hf import HFEngine

MAX_LEN = 1024
load_agent_executor = openrlhf_code.load_function(
    "trainer/ray/vllm_engine.py", "_load_agent_executor", {"AgentExecutorBase": AgentExecutorBase})


def own_counts(executor) -> dict[str, float]:  # noqa: ANN001 - the executor of the agent file
    """Every sample of this process's own registry, as `name{k=v,...}` -> value."""
    counts = {}
    for family in executor.metrics.registry.collect():
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            counts[f"{sample.name}{{{labels}}}"] = sample.value
    return counts


async def run(model_dir: str, labels: list[str]) -> None:
    executor = load_agent_executor(str(AGENT_FILE))
    print(f"READY serving={int(executor.metrics_server is not None)}", flush=True)
    engine = HFEngine.from_pretrained(model_dir)
    fake = FakeVLLMEngine(engine)
    params = FakeSamplingParams(max_tokens=None, min_tokens=1, skip_special_tokens=False)
    try:
        for label in labels:  # one at a time: the same order of outcomes every run
            await executor.execute(prompt="[cell] prompt", label=label, sampling_params=params, max_length=MAX_LEN,
                                   hf_tokenizer=engine.tokenizer, llm_engine=fake)
        print("PLAYED " + json.dumps(own_counts(executor)), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    finally:
        await executor.aclose()
        engine.close()


def main(argv: list[str]) -> None:
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.getLogger("trainer.client.metrics_endpoint").setLevel(logging.DEBUG)
    asyncio.run(run(argv[0], argv[1:]))


if __name__ == "__main__":
    main(sys.argv[1:])
