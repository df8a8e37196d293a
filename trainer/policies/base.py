"""What a policy is to the episode runner.

Two kinds: a `TextPolicy` answers each turn with action text (scripted policies, a served chat model); a
`TokenPolicy` answers with token ids and their log-probs, so its episodes can be trained on. Token policies
sit on a `TokenEngine` (transformers on CPU, vLLM on GPU) and either generate freely or choose among the
valid actions.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Literal, Protocol, Sequence, runtime_checkable

from env_server.types import Observation


@dataclass(frozen=True, slots=True)
class Message:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class Turn:
    """What a text policy sees: the chat so far (ending with the latest observation) and the observation."""

    messages: tuple[Message, ...]
    observation: Observation
    rng: random.Random
    oracle: Callable[[], Awaitable[str]]  # the environment's next oracle action (servers with --enable-oracle)


@runtime_checkable
class TextPolicy(Protocol):
    name: str

    async def act(self, turn: Turn) -> str: ...


@dataclass(frozen=True, slots=True)
class Sampling:
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 64

    def __post_init__(self) -> None:
        if self.temperature < 0 or not 0 < self.top_p <= 1 or self.max_tokens < 1:
            raise ValueError(f"bad sampling settings {self}: need temperature >= 0, 0 < top_p <= 1, max_tokens >= 1")


@dataclass(frozen=True, slots=True)
class Generation:
    """Sampled token ids (ending with the stop token when the policy stopped) and each one's log-prob."""

    token_ids: tuple[int, ...]
    log_probs: tuple[float, ...]
    finish_reason: Literal["stop", "length"]


class TokenEngine(Protocol):
    """Token-level model access. Log-probs are of the distribution sampled from (logits / temperature)."""

    tokenizer: Any  # a Hugging Face tokenizer with a chat template

    async def generate(self, prompt_ids: Sequence[int], sampling: Sampling, seed: int) -> Generation: ...

    async def score(self, prompt_ids: Sequence[int], continuations: Sequence[Sequence[int]],
                    temperature: float) -> list[list[float]]:
        """Per-token log-probs of each continuation after the prompt (teacher forcing)."""
        ...


@runtime_checkable
class TokenPolicy(Protocol):
    name: str
    tokenizer: Any

    async def act_tokens(self, prompt_ids: Sequence[int], observation: Observation, max_tokens: int,
                         rng: random.Random) -> Generation: ...


Policy = TextPolicy | TokenPolicy
