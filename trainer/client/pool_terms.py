"""What a pool is asked for and answers with: an episode's request, its nested deadlines, the retry budget, and the
failure it raises when it gives up (with a reason and whether playing the episode again may succeed)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Mapping

import grpc

from trainer.client.errors import EnvCallError

Code = grpc.StatusCode

RESET_RETRY_CODES = frozenset({Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED, Code.RESOURCE_EXHAUSTED})  # on another pod
STEP_RETRY_CODES = frozenset({Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED})  # on the same pod, with the same index

# Why the pool gave up on an episode (the `reason` label), and whether playing it again from Reset may succeed.
_REASONS: dict[grpc.StatusCode, tuple[str, bool]] = {
    Code.UNAVAILABLE: ("pod_lost", True),
    Code.CANCELLED: ("pod_lost", True),
    Code.DEADLINE_EXCEEDED: ("deadline", True),
    Code.RESOURCE_EXHAUSTED: ("pods_full", True),
    Code.NOT_FOUND: ("session_lost", True),  # the pod restarted, or the session idled past its TTL
    Code.INVALID_ARGUMENT: ("rejected", False),
    Code.FAILED_PRECONDITION: ("rejected", False),
}
FAILURE_REASONS = ("no_pods", "pod_lost", "deadline", "pods_full", "session_lost", "episode_deadline", "rejected",
                   "server_error")


@dataclass(frozen=True, slots=True)
class Deadlines:
    """Nested time limits, each with room for the one inside it: call < turn < episode."""

    call_s: float = 30.0  # one RPC attempt
    turn_s: float = 90.0  # one Reset, Step or OracleAction, retries and backoff included
    episode_s: float = 3600.0  # from the first Reset attempt to the last step

    def __post_init__(self) -> None:
        if not 0 < self.call_s < self.turn_s < self.episode_s:
            raise ValueError(
                f"deadlines must nest as 0 < call_s < turn_s < episode_s; got call_s={self.call_s}, "
                f"turn_s={self.turn_s}, episode_s={self.episode_s}"
            )


@dataclass(frozen=True, slots=True)
class Retries:
    reset_attempts: int = 4  # Reset attempts, each on a pod not yet tried while there is one
    step_attempts: int = 3  # Step and OracleAction attempts on the episode's own pod
    backoff_s: float = 0.05  # the first pause; it doubles per attempt, with jitter
    max_backoff_s: float = 1.0

    def __post_init__(self) -> None:
        if self.reset_attempts < 1 or self.step_attempts < 1 or not 0 <= self.backoff_s <= self.max_backoff_s:
            raise ValueError(f"retries need at least one attempt and 0 <= backoff_s <= max_backoff_s; got {self}")

    def pause_s(self, attempt: int, rng: random.Random) -> float:
        ceiling = min(self.max_backoff_s, self.backoff_s * 2.0**attempt)
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


@dataclass(frozen=True, slots=True)
class EpisodeRequest:
    task_id: str
    seed: int
    interface: tuple[tuple[str, Mapping[str, str]], ...] = ()  # (adapter name, params), as requests.reset_request
    max_turns: int = 0  # 0: the environment's default
    client_episode_id: str = ""  # lets a pod answer a repeated Reset with the session it already opened

    def __post_init__(self) -> None:
        object.__setattr__(self, "interface", tuple((name, params) for name, params in self.interface))


class EpisodeFailed(Exception):
    """The pool gave up on an episode: `reason` is one of FAILURE_REASONS; `retryable` says whether playing it
    again from Reset may succeed (a lost pod) or would fail the same way (a rejected request)."""

    def __init__(self, reason: str, message: str, *, retryable: bool, code: grpc.StatusCode | None = None,
                 pod: str = "") -> None:
        super().__init__(f"{reason}: {message}" + (f" (pod {pod})" if pod else ""))
        self.reason = reason
        self.message = message
        self.retryable = retryable
        self.code = code
        self.pod = pod

    @classmethod
    def from_error(cls, err: EnvCallError, pod: str = "") -> "EpisodeFailed":
        reason, retryable = _REASONS.get(err.code, ("server_error", False))
        return cls(reason, err.message, retryable=retryable, code=err.code, pod=pod)
