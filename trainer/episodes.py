"""The episode runner: reset -> (policy turn -> step)* -> Trajectory, over an env pool.

Token policies get their trajectory assembled as token ids: the actions exactly as sampled, observations and
chat-template glue as masked ids (trainer/chat.py). Every episode ends as completed, truncated or failed with
a reason: an environment or policy failure is data, not an exception.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field, replace
from typing import Any, AsyncContextManager, Protocol

from env_server.types import StepResult
from trainer.chat import ChatGlue
from trainer.client.errors import EnvCallError
from trainer.client.pool import EpisodeFailed, EpisodeRequest
from trainer.policies.base import Generation, Message, TextPolicy, TokenPolicy, Turn
from trainer.shaping import Shaping
from trainer.trajectory import Status, Trajectory, TurnRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EpisodeSpec:
    env: str
    task_id: str
    seed: int
    interface: tuple[tuple[str, dict[str, str]], ...] = ()
    interface_name: str = ""  # how results name the interface ("" -> the name the server reports)
    max_turns: int = 0  # 0: the environment's default
    episode_id: str = ""  # a client-chosen id, echoed in server logs


@dataclass(frozen=True, slots=True)
class Budget:
    """Tokens a policy may produce in one turn, inside the tokens a whole trajectory may hold."""

    turn_tokens: int = 64
    trajectory_tokens: int = 4096

    def __post_init__(self) -> None:
        if not 0 < self.turn_tokens < self.trajectory_tokens:
            raise ValueError(f"need 0 < turn_tokens < trajectory_tokens, got {self.turn_tokens}, "
                             f"{self.trajectory_tokens}")


class PooledEpisode(Protocol):
    pod: str

    @property
    def opened(self) -> Any: ...

    async def step(self, action: str) -> StepResult: ...

    async def oracle_action(self) -> str: ...


class EpisodeSource(Protocol):
    def episode(self, request: EpisodeRequest) -> AsyncContextManager[PooledEpisode]: ...


@dataclass(slots=True)
class _Assembly:
    """Token ids of the trajectory so far and the spans the policy sampled."""

    token_ids: list[int] = field(default_factory=list)
    log_probs: list[float] = field(default_factory=list)
    action_ranges: list[tuple[int, int]] = field(default_factory=list)

    def add_context(self, ids: list[int]) -> None:
        self.token_ids += ids
        self.log_probs += [0.0] * len(ids)

    def add_action(self, generation: Generation) -> None:
        start = len(self.token_ids)
        self.token_ids += generation.token_ids
        self.log_probs += generation.log_probs
        self.action_ranges.append((start, len(self.token_ids)))


class EpisodeRunner:
    def __init__(
        self,
        source: EpisodeSource,
        *,
        budget: Budget = Budget(),
        shaping: Shaping = Shaping(),
        system_prompt: str = "",
        episode_timeout_s: float = 600.0,
    ) -> None:
        self.source = source
        self.budget = budget
        self.shaping = shaping
        self.system_prompt = system_prompt
        self.episode_timeout_s = episode_timeout_s
        # Episode outcomes go to the pool's rollout metrics (shiftgym_rollout_episodes_total).
        self.metrics = getattr(source, "rollout_metrics", None)
        self._glue: dict[int, ChatGlue] = {}

    def glue(self, tokenizer: Any) -> ChatGlue:
        key = id(tokenizer)
        if key not in self._glue:
            self._glue[key] = ChatGlue(tokenizer, self.system_prompt)
        return self._glue[key]

    async def run(self, spec: EpisodeSpec, policy: TextPolicy | TokenPolicy, sample_seed: int = 0) -> Trajectory:
        """Play one episode. `sample_seed` seeds the policy's sampling (k samples of a task differ by it)."""
        trajectory = await self._run(spec, policy, sample_seed)
        if self.metrics is not None:
            self.metrics.episode_over(spec.env, trajectory.interface or "original", trajectory.status)
        return trajectory

    async def _run(self, spec: EpisodeSpec, policy: TextPolicy | TokenPolicy, sample_seed: int) -> Trajectory:
        base = Trajectory(env=spec.env, task_id=spec.task_id, seed=spec.seed, interface=spec.interface_name,
                          status="failed")
        try:
            async with asyncio.timeout(self.episode_timeout_s):
                return await self._play(spec, policy, random.Random(sample_seed), base)
        except TimeoutError:
            return self._failed(base, f"episode exceeded {self.episode_timeout_s:g} s")
        except EpisodeFailed as err:
            return self._failed(replace(base, retryable=err.retryable), str(err))
        except EnvCallError as err:
            return self._failed(base, f"env call failed: {err.code.name}: {err.message}")

    def _failed(self, base: Trajectory, reason: str) -> Trajectory:
        log.warning("episode failed", extra={"task_id": base.task_id, "reason": reason})
        return replace(base, status="failed", reason=reason)

    async def _play(self, spec: EpisodeSpec, policy: TextPolicy | TokenPolicy, rng: random.Random,
                    base: Trajectory) -> Trajectory:
        request = EpisodeRequest(task_id=spec.task_id, seed=spec.seed, interface=spec.interface,
                                 max_turns=spec.max_turns, client_episode_id=spec.episode_id)
        async with self.source.episode(request) as episode:
            opened = episode.opened
            base = replace(base, interface=spec.interface_name or opened.interface, pod=episode.pod)
            if isinstance(policy, TokenPolicy):
                return await self._play_tokens(episode, opened.result, policy, rng, base)
            return await self._play_text(episode, opened.result, policy, rng, base)

    async def _play_text(self, episode: PooledEpisode, result: StepResult, policy: TextPolicy,
                         rng: random.Random, base: Trajectory) -> Trajectory:
        messages = [Message("system", self.system_prompt)] if self.system_prompt else []
        messages.append(Message("user", result.observation.text))
        turns: list[TurnRecord] = []
        while not result.done:
            try:
                action = await policy.act(Turn(tuple(messages), result.observation, rng, episode.oracle_action))
            except (EpisodeFailed, EnvCallError):
                raise
            except Exception as err:  # a policy bug or a dead model endpoint ends this episode, not the run
                return self._failed(replace(base, turns=tuple(turns)), f"policy error: {err!r}")
            result = await episode.step(action)
            turns.append(TurnRecord(action, result.action_valid, result.reward))
            messages += [Message("assistant", action), Message("user", result.observation.text)]
        return self._finish(base, result, turns, budget_hit=False)

    async def _play_tokens(self, episode: PooledEpisode, result: StepResult, policy: TokenPolicy,
                           rng: random.Random, base: Trajectory) -> Trajectory:
        glue = self.glue(policy.tokenizer)
        tokens = _Assembly()
        tokens.add_context(glue.first_prompt(result.observation.text))
        turns: list[TurnRecord] = []
        budget_hit = False
        while not result.done:
            room = self.budget.trajectory_tokens - len(tokens.token_ids)
            if room <= 0:
                budget_hit = True
                break
            try:
                generation = await policy.act_tokens(
                    tuple(tokens.token_ids), result.observation, min(self.budget.turn_tokens, room), rng)
            except Exception as err:  # see _play_text
                return self._failed(self._with_tokens(base, turns, tokens), f"policy error: {err!r}")
            tokens.add_action(generation)
            action = glue.action_text(generation.token_ids)
            result = await episode.step(action)
            turns.append(TurnRecord(action, result.action_valid, result.reward, len(generation.token_ids),
                                    cut=generation.finish_reason == "length"))
            if result.done:
                break
            following = glue.next_prompt(generation.token_ids, result.observation.text)
            if len(tokens.token_ids) + len(following) >= self.budget.trajectory_tokens:
                budget_hit = True  # the next observation does not fit: stop here, the episode is cut
                break
            tokens.add_context(following)
        return self._with_tokens(self._finish(base, result, turns, budget_hit), turns, tokens)

    def _finish(self, base: Trajectory, result: StepResult, turns: list[TurnRecord], budget_hit: bool) -> Trajectory:
        outcome = result.outcome if result.done else None
        truncated = budget_hit or result.truncated
        status: Status = "truncated" if truncated else "completed"
        reason = "token budget" if budget_hit else ("turn limit" if result.truncated else "")
        success = bool(outcome and outcome.success)
        score = outcome.score if outcome else 0.0
        reward = self.shaping.reward(success=success, score=score, turns=tuple(turns), truncated=truncated)
        return replace(base, status=status, reason=reason, success=success, score=score, reward=reward,
                        turns=tuple(turns))

    @staticmethod
    def _with_tokens(base: Trajectory, turns: list[TurnRecord], tokens: _Assembly) -> Trajectory:
        return replace(base, turns=tuple(turns), token_ids=tuple(tokens.token_ids),
                        log_probs=tuple(tokens.log_probs), action_ranges=tuple(tokens.action_ranges))

