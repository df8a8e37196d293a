"""A text policy on any OpenAI-compatible chat endpoint (`vllm serve`, SGLang, a hosted API), for evaluation.

Each turn POSTs the chat so far to `{base_url}/chat/completions`, with a `seed` drawn from the turn's RNG so
endpoints that honour it reproduce the episode. Rate limits (429), server errors (5xx) and dropped connections
are retried with backoff inside `timeout_s`; any other 4xx raises `ChatEndpointError` at once, which the
episode runner records as a failed episode with the reason.

In "choice" mode the valid actions are appended to the last user message as a numbered list, and the reply
is mapped onto one of them by the first rule that applies (see `match_action`):

1. exact: the reply equals an action after stripping whitespace, quotes and a trailing period, ignoring case;
2. number: the reply is a number k in 1..n, giving the k-th listed action;
3. fuzzy: the closest action by rapidfuzz's WRatio, if it scores at least `fuzzy_cutoff` (0-100);
4. otherwise the reply itself, stripped, so the environment answers it as an invalid action.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Literal, Sequence

import httpx
from rapidfuzz import fuzz, process, utils

from trainer.policies.base import Message, Turn

Mode = Literal["free", "choice"]

CHOICE_INSTRUCTION = "Reply with exactly one of the actions above, copied verbatim, and nothing else."
_RETRIED_STATUS = frozenset({429}) | frozenset(range(500, 600))
_SEED_BITS = 31  # some endpoints keep the seed in a signed 32-bit int


class ChatEndpointError(Exception):
    """The endpoint refused the request, answered in a shape we cannot read, or gave no answer in time."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class OpenAIChatPolicy:
    """One HTTP client per policy; close it with `aclose()` (or use the policy as an async context manager).

    `timeout_s` bounds one `act()` call, retries and backoff included. `max_retries` counts attempts after
    the first. The backoff doubles from `backoff_s` up to `max_backoff_s`; a `Retry-After` header in seconds
    replaces it.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        temperature: float = 0.0,
        max_tokens: int = 64,
        timeout_s: float = 60.0,
        mode: Mode = "free",
        max_retries: int = 4,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        fuzzy_cutoff: float = 80.0,
        name: str = "",
    ) -> None:
        if mode not in ("free", "choice"):
            raise ValueError(f"unknown policy mode {mode!r} (known: free, choice)")
        if temperature < 0 or max_tokens < 1 or timeout_s <= 0 or max_retries < 0 or backoff_s < 0:
            raise ValueError("need temperature >= 0, max_tokens >= 1, timeout_s > 0, max_retries >= 0, "
                             f"backoff_s >= 0; got {temperature}, {max_tokens}, {timeout_s}, {max_retries}, "
                             f"{backoff_s}")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.timeout_s = timeout_s
        self.mode = mode
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.fuzzy_cutoff = fuzzy_cutoff
        self.name = name or model
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(timeout_s))

    async def __aenter__(self) -> "OpenAIChatPolicy":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def act(self, turn: Turn) -> str:
        seed = turn.rng.getrandbits(_SEED_BITS)  # drawn once per turn, so a retry sends the same seed
        if self.mode == "free":
            return (await self.complete(turn.messages, seed)).strip()
        actions = turn.observation.valid_actions
        if not actions:
            raise ValueError("choice mode needs the valid actions: use an interface that lists them")
        reply = await self.complete(with_action_list(turn.messages, actions), seed)
        return match_action(reply, actions, self.fuzzy_cutoff)

    async def complete(self, messages: Sequence[Message], seed: int) -> str:
        """The assistant's reply text to `messages`, after retries."""
        body = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "seed": seed,
            "n": 1,
        }
        last_failure = "no attempt finished"
        try:
            async with asyncio.timeout(self.timeout_s):
                for attempt in range(self.max_retries + 1):
                    response: httpx.Response | None = None
                    try:
                        response = await self._client.post(self.url, json=body)
                    except httpx.TransportError as err:
                        last_failure = f"{type(err).__name__}: {err}"
                    else:
                        if response.status_code not in _RETRIED_STATUS:
                            return self._reply_text(response)
                        last_failure = f"HTTP {response.status_code}: {_error_text(response)}"
                    if attempt < self.max_retries:
                        await asyncio.sleep(self._backoff(attempt, response))
        except TimeoutError:
            raise ChatEndpointError(f"no reply from {self.url} within {self.timeout_s:g} s "
                                    f"(last failure: {last_failure})") from None
        raise ChatEndpointError(f"{self.url} failed {self.max_retries + 1} attempts; last: {last_failure}")

    def _backoff(self, attempt: int, response: httpx.Response | None) -> float:
        retry_after = response.headers.get("retry-after") if response is not None else None
        if retry_after is not None:
            try:
                return max(0.0, float(retry_after))
            except ValueError:
                pass  # an HTTP date: fall back to our own backoff
        return min(self.backoff_s * 2**attempt, self.max_backoff_s)

    def _reply_text(self, response: httpx.Response) -> str:
        if response.status_code != 200:
            hint = " (check the API key)" if response.status_code in (401, 403) else ""
            raise ChatEndpointError(f"{self.url} rejected the request with HTTP {response.status_code}{hint}: "
                                    f"{_error_text(response)}", status=response.status_code)
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise ChatEndpointError(f"{self.url} answered 200 without a chat completion: "
                                    f"{response.text[:300]!r}", status=200) from None
        return content or ""  # null content (e.g. only a refusal or tool call) is an empty action


def with_action_list(messages: Sequence[Message], actions: Sequence[str]) -> tuple[Message, ...]:
    """The chat with the actions numbered under the last user message, and the instruction to pick one."""
    listing = "\n".join(f"{i}. {a}" for i, a in enumerate(actions, start=1))
    addition = f"Valid actions:\n{listing}\n{CHOICE_INSTRUCTION}"
    last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=None)
    if last_user is None:
        return (*messages, Message("user", addition))
    out = list(messages)
    out[last_user] = Message("user", f"{messages[last_user].content}\n\n{addition}")
    return tuple(out)


def match_action(reply: str, actions: Sequence[str], fuzzy_cutoff: float = 80.0) -> str:
    """Map a reply onto one of `actions` by the module docstring's rule; the reply itself if none applies."""
    said = _normalize(reply)
    for action in actions:
        if _normalize(action) == said:
            return action
    if said.isdigit() and 1 <= int(said) <= len(actions):
        return actions[int(said) - 1]
    best: Any = process.extractOne(reply, actions, scorer=fuzz.WRatio, processor=utils.default_process,
                                   score_cutoff=fuzzy_cutoff)
    return best[0] if best is not None else reply.strip()


def _normalize(text: str) -> str:
    return text.strip().strip("`'\"").strip().rstrip(".").strip().casefold()


def _error_text(response: httpx.Response) -> str:
    """The endpoint's own error message (OpenAI's {"error": {"message": ...}}), else the start of the body."""
    try:
        error = response.json().get("error")
        message = error.get("message") if isinstance(error, dict) else error
        if message:
            return str(message)[:300]
    except (ValueError, AttributeError):
        pass
    return response.text[:300] or response.reason_phrase
