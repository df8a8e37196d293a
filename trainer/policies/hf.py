"""A TokenEngine on Hugging Face transformers, for CPU: tests, the tiny models, the embedded default.

One worker thread owns the model (torch already spreads one forward over the cores). A prompt runs only past its
longest cached prefix (trainer/policies/prefix_cache.py); scoring a choice then runs all candidate continuations
packed into one row on the prompt's keys and values. Call `weights_changed()` after an optimiser step.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

import torch

from trainer.policies.base import Generation, Sampling
from trainer.policies.prefix_cache import PrefixCache


class HFEngine:
    def __init__(self, model: Any, tokenizer: Any, *, stop_ids: Sequence[int] = ()) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        eos = tokenizer.eos_token_id
        self.stop_ids = frozenset(stop_ids) or frozenset([eos] if eos is not None else [])
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hf-engine")
        self._prefixes = PrefixCache()

    @classmethod
    def from_pretrained(cls, path: str, **kwargs: Any) -> "HFEngine":
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        return cls(model, tokenizer, **kwargs)

    def close(self) -> None:
        self._thread.shutdown(wait=True)

    def weights_changed(self) -> None:
        """Cached keys and values were computed by the old weights: drop them (on the worker, in order)."""
        self._thread.submit(self._prefixes.clear).result()

    def _prompt_state(self, prompt_ids: list[int]) -> tuple[Any, torch.Tensor]:
        """The model's cache after the prompt and the logits at its last position, reusing a cached prefix."""
        done, cache, logits = self._prefixes.longest(prompt_ids)
        out = self.model(input_ids=torch.tensor([prompt_ids[done:]]), past_key_values=cache, use_cache=True)
        self._prefixes.put(prompt_ids, out.past_key_values, out.logits[0, -1])
        return out.past_key_values, out.logits[0, -1]

    async def generate(self, prompt_ids: Sequence[int], sampling: Sampling, seed: int) -> Generation:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._generate, list(prompt_ids), sampling, seed)

    async def score(self, prompt_ids: Sequence[int], continuations: Sequence[Sequence[int]],
                    temperature: float) -> list[list[float]]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._score, list(prompt_ids),
                                          [list(c) for c in continuations], temperature)

    @torch.no_grad()
    def _generate(self, prompt_ids: list[int], sampling: Sampling, seed: int) -> Generation:
        generator = torch.Generator().manual_seed(seed)
        past, logits = self._prompt_state(prompt_ids)
        tokens: list[int] = []
        log_probs: list[float] = []
        for _ in range(sampling.max_tokens):
            scaled = logits.float() / (sampling.temperature or 1.0)
            logp = torch.log_softmax(scaled, dim=-1)
            token = _sample(logp, sampling, generator)
            tokens.append(token)
            log_probs.append(float(logp[token]))
            if token in self.stop_ids:
                return Generation(tuple(tokens), tuple(log_probs), "stop")
            out = self.model(input_ids=torch.tensor([[token]]), past_key_values=past, use_cache=True)
            past, logits = out.past_key_values, out.logits[0, -1]
        return Generation(tuple(tokens), tuple(log_probs), "length")

    @torch.no_grad()
    def _score(self, prompt_ids: list[int], continuations: list[list[int]], temperature: float) -> list[list[float]]:
        """All continuations packed into one row after the prompt's cache: each attends to the prompt and to its
        own earlier tokens only (a block-diagonal mask), at the positions it would have alone."""
        cache, last = self._prompt_state(prompt_ids)
        first = torch.log_softmax(last.float() / temperature, dim=-1)
        start = len(prompt_ids)
        flat = [token for continuation in continuations for token in continuation]
        positions = [start + i for continuation in continuations for i in range(len(continuation))]
        allowed = torch.zeros((len(flat), start + len(flat)), dtype=torch.bool)
        allowed[:, :start] = True
        at = 0
        for continuation in continuations:
            for i in range(len(continuation)):
                allowed[at + i, start + at: start + at + i + 1] = True
            at += len(continuation)
        mask = torch.zeros(allowed.shape).masked_fill_(~allowed, torch.finfo(torch.float32).min)
        logits = self.model(input_ids=torch.tensor([flat]), position_ids=torch.tensor([positions]),
                            attention_mask=mask[None, None], past_key_values=cache).logits[0].float()
        logp = torch.log_softmax(logits / temperature, dim=-1)
        scored, at = [], 0
        for continuation in continuations:
            rest = [float(logp[at + i, continuation[i + 1]]) for i in range(len(continuation) - 1)]
            scored.append([float(first[continuation[0]])] + rest)
            at += len(continuation)
        return scored


def _sample(logp: torch.Tensor, sampling: Sampling, generator: torch.Generator) -> int:
    if sampling.temperature == 0:
        return int(logp.argmax())
    probs = logp.exp()
    if sampling.top_p < 1.0:
        sorted_probs, order = probs.sort(descending=True)
        keep = sorted_probs.cumsum(0) - sorted_probs < sampling.top_p
        probs = torch.zeros_like(probs).scatter(0, order[keep], sorted_probs[keep])
    return int(torch.multinomial(probs, 1, generator=generator))

