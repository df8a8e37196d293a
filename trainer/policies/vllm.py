"""A TokenEngine on vLLM: the engine OpenRLHF hands an agent executor, or a standalone async engine for evaluation.

Both are driven through one interface, OpenRLHF's rollout actor's `await generate(prompt_token_ids,
sampling_params)` returning a vLLM `RequestOutput`. Sampling parameters are never built here for the OpenRLHF
path: a copy of the `SamplingParams` OpenRLHF passed is adjusted per call (max_tokens, logprobs, seed), so
settings this module does not know about (top_k, min_tokens, ...) still apply. `vllm` itself is imported only
by `standalone()`.

Log-probs are what vLLM reports, i.e. of its `logprobs_mode` (raw model log-probs unless the engine was built
with processed ones): they equal the log-probs of the distribution sampled from when temperature is 1 and
top_p / top_k are off, which is how ShiftGym launches OpenRLHF.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from typing import Any, Literal, Protocol, Sequence

from trainer.policies.base import Generation, Sampling


class TokenGenerator(Protocol):
    """OpenRLHF's `RolloutRayActor.generate` signature (and that of the wrapper around a standalone engine)."""

    async def generate(self, prompt_token_ids: list[int], sampling_params: Any, **kwargs: Any) -> Any: ...


class VLLMError(RuntimeError):
    """vLLM answered without what a trajectory needs (an aborted request, missing log-probs)."""


class VLLMEngine:
    """`engine` generates like OpenRLHF's rollout actor; `base_params` is a vLLM SamplingParams to copy per call.

    `seed_requests` gives each request its own seed (reproducible samples, at some cost in vLLM's sampler);
    off, vLLM draws from its engine-wide generator.
    """

    def __init__(self, engine: TokenGenerator, tokenizer: Any, base_params: Any, *, seed_requests: bool = True,
                 closer: Any = None) -> None:
        self.engine = engine
        self.tokenizer = tokenizer
        self.base_params = base_params
        self.seed_requests = seed_requests
        self._closer = closer

    @classmethod
    def standalone(cls, model_path: str, *, tokenizer: Any = None, seed_requests: bool = True,
                   **engine_args: Any) -> "VLLMEngine":
        """An in-process vLLM AsyncLLM over `model_path` (engine_args as vllm.AsyncEngineArgs takes them, e.g.
        gpu_memory_utilization=0.5, max_model_len=8192); close() shuts it down."""
        import vllm  # the GPU boundary: only here

        llm = vllm.AsyncLLMEngine.from_engine_args(vllm.AsyncEngineArgs(model=model_path, **engine_args))
        if tokenizer is None:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(model_path)
        # Only the final output of each request is wanted, as token ids: no streaming, no detokenizing.
        params = vllm.SamplingParams(output_kind=vllm.sampling_params.RequestOutputKind.FINAL_ONLY, detokenize=False)
        return cls(_AsyncLLMGenerator(llm), tokenizer, params, seed_requests=seed_requests, closer=llm)

    def close(self) -> None:
        if self._closer is not None:
            self._closer.shutdown()
            self._closer = None

    def _params(self, **changes: Any) -> Any:
        params = copy.deepcopy(self.base_params)
        for name, value in changes.items():
            setattr(params, name, value)
        return params

    async def generate(self, prompt_ids: Sequence[int], sampling: Sampling, seed: int) -> Generation:
        params = self._params(temperature=sampling.temperature, top_p=sampling.top_p, max_tokens=sampling.max_tokens,
                              logprobs=1, seed=seed % 2**63 if self.seed_requests else None)
        output = await self.engine.generate(list(prompt_ids), params)
        completion = output.outputs[0]
        tokens = tuple(int(t) for t in completion.token_ids)
        if completion.logprobs is None or len(completion.logprobs) != len(tokens):
            raise VLLMError(f"vLLM returned {len(tokens)} tokens but no log-prob for each (logprobs=1 was asked)")
        log_probs = tuple(float(position[token].logprob) for position, token in zip(completion.logprobs, tokens))
        return Generation(tokens, log_probs, _finish_reason(completion.finish_reason))

    async def score(self, prompt_ids: Sequence[int], continuations: Sequence[Sequence[int]],
                    temperature: float) -> list[list[float]]:
        """Teacher-forced log-probs via prompt_logprobs: one request per continuation (prompt + continuation),
        generating a single throwaway token. vLLM computes prompt log-probs from the raw logits, so only
        temperature 1 is scored faithfully; anything else is refused rather than mis-scored."""
        if abs(temperature - 1.0) > 1e-6:
            raise ValueError(f"vLLM scores prompts at temperature 1 only; choice mode here needs temperature 1, "
                             f"got {temperature}")
        return list(await asyncio.gather(*(self._score_one(list(prompt_ids), list(c)) for c in continuations)))

    async def _score_one(self, prompt_ids: list[int], continuation: list[int]) -> list[float]:
        if not continuation:
            return []
        sequence = prompt_ids + continuation
        params = self._params(temperature=1.0, top_p=1.0, max_tokens=1, logprobs=None, prompt_logprobs=1,
                              seed=None)
        output = await self.engine.generate(sequence, params)
        positions = output.prompt_logprobs
        if positions is None or len(positions) != len(sequence):
            raise VLLMError("vLLM returned no prompt log-probs for a scoring request (prompt_logprobs=1 was asked)")
        return [float(positions[i][sequence[i]].logprob) for i in range(len(prompt_ids), len(sequence))]


def _finish_reason(reason: Any) -> Literal["stop", "length"]:
    if reason == "length":
        return "length"
    if reason == "stop":
        return "stop"
    raise VLLMError(f"vLLM request ended with finish_reason={reason!r}")


class _AsyncLLMGenerator:
    """A standalone AsyncLLM behind the same `generate(prompt_token_ids, sampling_params)` as OpenRLHF's actor."""

    def __init__(self, llm: Any) -> None:
        self.llm = llm

    async def generate(self, prompt_token_ids: list[int], sampling_params: Any, **kwargs: Any) -> Any:
        final = None
        async for output in self.llm.generate({"prompt_token_ids": prompt_token_ids}, sampling_params,
                                              request_id=uuid.uuid4().hex):
            final = output
        if final is None:
            raise VLLMError("vLLM produced no output for a request")
        return final
