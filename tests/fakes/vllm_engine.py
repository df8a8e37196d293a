"""A stand-in for the vLLM engine OpenRLHF hands an agent executor, which needs a GPU and so cannot run here.

`FakeVLLMEngine.generate(prompt_token_ids, sampling_params, multi_modal_data=None)` has the signature of OpenRLHF
0.11's `RolloutRayActor.generate` and answers with an object shaped like vLLM's `RequestOutput` (`outputs[0]`
with `token_ids`, `text`, `logprobs` as a list of {token id: Logprob} and `finish_reason`; `prompt_logprobs` when
asked). The tokens and log-probs are real outputs of a transformers model, through ShiftGym's HFEngine.
`FakeSamplingParams` carries the fields of vLLM's `SamplingParams` that OpenRLHF sets
(samples_generator._dispatch_prompts_to_vllm) and the ones the executor changes.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Sequence

from trainer.policies.base import Sampling
from trainer.policies.hf import HFEngine


@dataclass
class FakeSamplingParams:
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    max_tokens: int | None = 16
    min_tokens: int = 0
    skip_special_tokens: bool = True
    logprobs: int | None = None
    prompt_logprobs: int | None = None
    seed: int | None = None
    stop_token_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class FakeLogprob:
    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


@dataclass(frozen=True)
class FakeCompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    cumulative_logprob: float | None
    logprobs: list[dict[int, FakeLogprob]] | None
    finish_reason: str | None


@dataclass(frozen=True)
class FakeRequestOutput:
    request_id: str
    prompt_token_ids: list[int]
    prompt_logprobs: list[dict[int, FakeLogprob] | None] | None
    outputs: list[FakeCompletionOutput]
    finished: bool = True


class FakeVLLMEngine:
    """Generates with an HFEngine (its own stop ids stand for the model's generation-config EOS ids)."""

    def __init__(self, engine: HFEngine) -> None:
        self.engine = engine
        self.requests: list[tuple[list[int], FakeSamplingParams]] = []  # every request, as received
        self._ids = itertools.count()
        self._unseeded = itertools.count(1)

    async def generate(self, prompt_token_ids: Sequence[int], sampling_params: FakeSamplingParams,
                       multi_modal_data: Any = None) -> FakeRequestOutput:
        if multi_modal_data:
            raise NotImplementedError("FakeVLLMEngine is text-only")
        if sampling_params.top_k not in (-1, 0):
            raise NotImplementedError("FakeVLLMEngine samples without top_k")
        if set(sampling_params.stop_token_ids) - self.engine.stop_ids:
            raise NotImplementedError("FakeVLLMEngine stops on its engine's stop ids only")
        prompt = [int(t) for t in prompt_token_ids]
        self.requests.append((prompt, sampling_params))
        prompt_logprobs = None
        if sampling_params.prompt_logprobs is not None:
            scored = await self.engine.score(prompt[:1], [prompt[1:]], 1.0)
            prompt_logprobs = [None] + [{t: FakeLogprob(lp, rank=None)} for t, lp in zip(prompt[1:], scored[0])]
        seed = sampling_params.seed if sampling_params.seed is not None else next(self._unseeded)
        sampling = Sampling(sampling_params.temperature, sampling_params.top_p, sampling_params.max_tokens or 16)
        generation = await self.engine.generate(prompt, sampling, seed)
        logprobs = None
        if sampling_params.logprobs is not None:
            logprobs = [{t: FakeLogprob(lp, rank=1)} for t, lp in zip(generation.token_ids, generation.log_probs)]
        text = self.engine.tokenizer.decode(list(generation.token_ids),
                                            skip_special_tokens=sampling_params.skip_special_tokens)
        completion = FakeCompletionOutput(0, text, list(generation.token_ids), sum(generation.log_probs), logprobs,
                                          generation.finish_reason)
        return FakeRequestOutput(str(next(self._ids)), prompt, prompt_logprobs, [completion])
