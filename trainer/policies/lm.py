"""A language-model policy over any TokenEngine: free generation, or a choice among the valid actions.

In choice mode each valid action (as the interface shows it, plus the stop token) is scored by the model and
one is sampled from the softmax of their log-likelihoods; the chosen action's tokens and their per-token
log-probs are what a free sample of that text would have recorded, so both modes train the same way.
A template action (`search[<query>]`) is offered filled with spans of the text read so far
(trainer/policies/candidates.py), so choice mode can search and answer too.
"""

from __future__ import annotations

import math
import random
from typing import Literal, Sequence

from env_server.types import Observation
from trainer.chat import ChatGlue
from trainer.policies.base import Generation, Sampling, TokenEngine
from trainer.policies.candidates import concrete_actions

Mode = Literal["free", "choice"]


class LMPolicy:
    def __init__(self, engine: TokenEngine, *, mode: Mode = "free", sampling: Sampling = Sampling(),
                 name: str = "lm") -> None:
        if mode not in ("free", "choice"):
            raise ValueError(f"unknown policy mode {mode!r} (known: free, choice)")
        self.engine = engine
        self.tokenizer = engine.tokenizer
        self.mode = mode
        self.sampling = sampling
        self.name = name
        self._glue = ChatGlue(engine.tokenizer)

    async def act_tokens(self, prompt_ids: Sequence[int], observation: Observation, max_tokens: int,
                         rng: random.Random) -> Generation:
        if self.mode == "free":
            sampling = Sampling(self.sampling.temperature, self.sampling.top_p, max_tokens)
            return await self.engine.generate(prompt_ids, sampling, rng.getrandbits(63))
        return await self._choose(prompt_ids, observation, max_tokens, rng)

    def candidates(self, prompt_ids: Sequence[int], observation: Observation) -> list[str]:
        """The actions choice mode scores: the valid actions, templates filled from the episode's text."""
        transcript = self.tokenizer.decode(list(prompt_ids), skip_special_tokens=True)
        return concrete_actions(observation.valid_actions, transcript, observation.text)

    async def _choose(self, prompt_ids: Sequence[int], observation: Observation, max_tokens: int,
                      rng: random.Random) -> Generation:
        if not observation.valid_actions:
            raise ValueError("choice mode needs the valid actions: use an interface that lists them")
        actions = self.candidates(prompt_ids, observation)
        candidates = [self._glue.encode(a) + [self._glue.stop_id] for a in actions]
        fitting = [c for c in candidates if len(c) <= max_tokens]
        if not fitting:  # no action fits the turn's budget: the longest prefix of the first is all there is
            cut = candidates[0][:max_tokens]
            scores = await self.engine.score(prompt_ids, [cut], self.sampling.temperature or 1.0)
            return Generation(tuple(cut), tuple(scores[0]), "length")
        scores = await self.engine.score(prompt_ids, fitting, self.sampling.temperature or 1.0)
        totals = [sum(s) for s in scores]
        if self.sampling.temperature == 0:
            index = max(range(len(totals)), key=totals.__getitem__)
        else:
            top = max(totals)
            weights = [math.exp(t - top) for t in totals]
            index = rng.choices(range(len(fitting)), weights=weights)[0]
        return Generation(tuple(fitting[index]), tuple(scores[index]), "stop")
