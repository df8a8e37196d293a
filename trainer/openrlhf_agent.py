"""ShiftGym's agent executor for OpenRLHF 0.11: `train_ppo_ray --train.agent_func_path trainer/openrlhf_agent.py`.

OpenRLHF loads this file in every vLLM rollout actor, builds `AgentExecutor()` and awaits
`execute(prompt, label, sampling_params, max_length, hf_tokenizer, llm_engine)` once per sample. The label is an
episode spec (trainer/datasets.py); the episode is played against the env servers by the episode runner, with the
vLLM engine OpenRLHF passes as the policy's TokenEngine. Settings come from SHIFTGYM_* variables
(trainer/launch.py: AgentSettings); env pools open lazily in the actor's event loop, once per process.

Unlike OpenRLHF's stock MultiTurnAgentExecutor, a turn samples at most the per-turn cap (never the whole remaining
budget) and execute() never raises: an episode the environments could not finish comes back as a failed sample
with reward 0, no trainable token, and a log entry. `trainer` must be importable on the Ray workers (installed in
the trainer image).

With SHIFTGYM_METRICS_PORT set, the executor serves its `shiftgym_rollout_*` series on that port; several actors of
one pod share it through PROMETHEUS_MULTIPROC_DIR (trainer/client/metrics_endpoint.py). A metrics problem is
logged, never raised.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from dataclasses import replace
from typing import Any

from openrlhf.utils.agent import AgentExecutorBase

from trainer.chat import ChatGlue
from trainer.client.errors import EnvCallError
from trainer.client.metrics_endpoint import MetricsAddress, serve_pod_metrics, shared_directory, stop_serving
from trainer.client.pool import Deadlines, EnvPool
from trainer.client.rollout_metrics import RolloutMetrics
from trainer.datasets import EpisodeLabel
from trainer.episodes import Budget, EpisodeRunner
from trainer.launch import AgentSettings
from trainer.policies.base import Sampling
from trainer.policies.lm import LMPolicy
from trainer.policies.vllm import VLLMEngine
from trainer.trajectory import Trajectory

log = logging.getLogger("shiftgym.openrlhf_agent")

DEFAULT_TURN_TOKENS = 512  # when neither SHIFTGYM_TURN_TOKENS nor --rollout.max_new_tokens says
# Every sample carries the same keys: OpenRLHF turns each into a per-sample tensor of its Experience.info.
EXTRA_LOG_KEYS = ("env_success", "env_score", "env_failed", "env_truncated", "env_turns", "env_invalid_actions",
                  "env_action_tokens", "env_attempts")


class AgentExecutor(AgentExecutorBase):
    def __init__(self) -> None:
        self.settings = AgentSettings.from_environ(os.environ)  # a bad setting stops the actor at start, loudly
        self.metrics = RolloutMetrics()
        self.metrics_server = self._serve_metrics()  # None: not asked for, or another actor of the pod serves
        self._rng = random.Random(self.settings.sample_seed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pools: dict[str, EnvPool] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._runners: dict[tuple[str, int, int], EpisodeRunner] = {}
        self._tokenizers: dict[tuple[str, int], Any] = {}

    async def execute(self, prompt: str, label: str, sampling_params: Any, max_length: int, hf_tokenizer: Any,
                      llm_engine: Any, images: Any = None) -> dict[str, Any]:
        tokenizer = hf_tokenizer
        try:
            tokenizer = self._tokenizer(hf_tokenizer)
            trajectory, attempts = await self._play(label, sampling_params, max_length, tokenizer, llm_engine)
        except Exception as err:  # the last line of defence: one sample never stops a training run
            log.exception("agent executor error", extra={"label": str(label)[:200]})
            trajectory, attempts = self._not_played("", f"executor error: {err!r}"), 1
        return self._response(prompt, label, images, trajectory, attempts, tokenizer)

    async def aclose(self) -> None:
        """Close the env pools and stop serving metrics (OpenRLHF never does; a test or a standalone user may)."""
        pools, self._pools = list(self._pools.values()), {}
        await asyncio.gather(*(pool.aclose() for pool in pools), return_exceptions=True)
        server, self.metrics_server = self.metrics_server, None
        stop_serving(server)

    def _serve_metrics(self) -> Any:
        try:
            shared = shared_directory(os.environ)
            address = MetricsAddress.from_environ(os.environ)
            return None if address is None else serve_pod_metrics(self.metrics.registry, address, shared)
        except Exception as err:  # a training run goes on without its metrics
            log.warning("rollout metrics are not served: %s", err, exc_info=True)
            return None

    async def _play(self, label: str, sampling_params: Any, max_length: int, tokenizer: Any,
                    llm_engine: Any) -> tuple[Trajectory, int]:
        try:
            episode = EpisodeLabel.from_json(label)
        except ValueError as err:
            return self._failed("", "", 0, f"bad label: {err}"), 1
        max_turns = self.settings.max_turns.get(episode.env, 0)
        if episode.interface is None and self.settings.interface is not None:
            episode = replace(episode, interface=self.settings.interface)
        pool, why = await self._pool(episode.env)
        if pool is None:
            return self._failed(episode.env, episode.task_id, episode.seed, why), 1
        turn_tokens = self.settings.turn_tokens or getattr(sampling_params, "max_tokens", None) or DEFAULT_TURN_TOKENS
        budget = Budget(turn_tokens=max(1, min(turn_tokens, max_length - 1)), trajectory_tokens=max_length)
        runner = self._runner(episode.env, pool, budget)
        sampling = Sampling(temperature=float(getattr(sampling_params, "temperature", 1.0)),
                            top_p=float(getattr(sampling_params, "top_p", 1.0)), max_tokens=budget.turn_tokens)
        policy = LMPolicy(VLLMEngine(llm_engine, tokenizer, sampling_params), mode=self.settings.mode,
                          sampling=sampling, name="vllm")
        sample_seed = self._rng.getrandbits(63)
        attempts = 0
        while True:
            attempts += 1
            spec = episode.spec(max_turns=max_turns, episode_id=f"orlhf-{sample_seed:016x}-{attempts}")
            trajectory = await runner.run(spec, policy, sample_seed=sample_seed)
            if trajectory.status != "failed":
                return trajectory, attempts
            log.warning("episode failed", extra={"env": episode.env, "task_id": episode.task_id,
                                                 "reason": trajectory.reason, "attempt": attempts})
            if not trajectory.retryable or attempts >= self.settings.episode_attempts:
                return trajectory, attempts

    def _failed(self, env: str, task_id: str, seed: int, reason: str) -> Trajectory:
        log.warning("episode failed", extra={"env": env, "task_id": task_id, "reason": reason})
        return self._not_played(env, reason, task_id, seed)

    def _not_played(self, env: str, reason: str, task_id: str = "", seed: int = 0) -> Trajectory:
        """A failed sample that never reached the episode runner. The runner counts every episode it plays in
        shiftgym_rollout_episodes_total; these are counted here, so that each is counted once."""
        self.metrics.episode_over(env or "unknown", "unknown", "failed")
        return Trajectory(env=env, task_id=task_id, seed=seed, interface="", status="failed", reason=reason)

    async def _pool(self, env: str) -> tuple[EnvPool | None, str]:
        """The env's pool, started on first use in this event loop; (None, why) when it cannot be had."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # OpenRLHF keeps one loop per actor; a new loop (tests) starts afresh
            self._loop, self._pools, self._locks = loop, {}, {}
        if env not in self.settings.endpoints:
            known = ", ".join(sorted(self.settings.endpoints)) or "none"
            return None, f"no endpoints for env {env!r}: set SHIFTGYM_ENDPOINTS_{env.upper()} (configured: {known})"
        async with self._locks.setdefault(env, asyncio.Lock()):
            if env not in self._pools:
                s = self.settings
                pool = EnvPool(s.endpoints[env], env=env, max_episodes=s.max_episodes, metrics=self.metrics,
                               deadlines=Deadlines(s.call_timeout_s, s.turn_timeout_s, s.episode_timeout_s))
                try:
                    await pool.start()
                except (OSError, ValueError, EnvCallError) as err:  # retried by the next episode of this env
                    return None, f"env pool for {env!r} did not start: {err}"
                self._pools[env] = pool
        return self._pools[env], ""

    def _runner(self, env: str, pool: EnvPool, budget: Budget) -> EpisodeRunner:
        key = (env, budget.turn_tokens, budget.trajectory_tokens)
        if key not in self._runners or self._runners[key].source is not pool:
            self._runners[key] = EpisodeRunner(pool, budget=budget, shaping=self.settings.shaping,
                                               system_prompt=self.settings.system_prompt,
                                               episode_timeout_s=self.settings.episode_timeout_s)
        return self._runners[key]

    def _tokenizer(self, tokenizer: Any) -> Any:
        """One tokenizer object per model: Ray hands every call a fresh copy, and the runner keeps chat glue per
        tokenizer object."""
        key = (str(getattr(tokenizer, "name_or_path", "")), len(tokenizer))
        return self._tokenizers.setdefault(key, tokenizer)

    def _response(self, prompt: str, label: str, images: Any, trajectory: Trajectory, attempts: int,
                  tokenizer: Any) -> dict[str, Any]:
        """OpenRLHF's sample dict (the keys its MultiTurnAgentExecutor returns). A failed episode keeps no action
        range, so nothing in it is trained on; its tokens are whatever was assembled, else the prompt."""
        failed = trajectory.status == "failed"
        tokens = list(trajectory.token_ids) or self._fallback_tokens(prompt, tokenizer)
        log_probs = list(trajectory.log_probs) if trajectory.token_ids else [0.0] * len(tokens)
        ranges = [] if failed else [tuple(r) for r in trajectory.action_ranges]
        cut = trajectory.reason == "token budget" or bool(trajectory.turns and trajectory.turns[-1].cut)
        extra = dict(zip(EXTRA_LOG_KEYS, (
            float(trajectory.success), float(trajectory.score), float(failed), float(trajectory.truncated),
            float(len(trajectory.turns)), float(trajectory.invalid_actions),
            float(sum(end - start for start, end in ranges)), float(attempts))))
        reward = 0.0 if failed else float(trajectory.reward)
        return {
            "prompt": prompt,
            "label": label,
            "images": images,
            "mm_train_inputs": None,
            "reward": reward,
            "scores": float(trajectory.success),
            "observation_tokens": tokens,
            "action_ranges": ranges,
            "rollout_log_probs": log_probs,
            "truncated": cut,
            "extra_logs": extra,
        }

    def _fallback_tokens(self, prompt: str, tokenizer: Any) -> list[int]:
        """Tokens for a sample that has none of its own (it is never trained on; they only have to exist)."""
        try:
            return list(ChatGlue(tokenizer, self.settings.system_prompt).first_prompt(prompt))
        except Exception:  # a template ChatGlue cannot read, or no usable tokenizer at all
            try:
                return list(tokenizer(prompt, add_special_tokens=False)["input_ids"]) or [0]
            except Exception:
                return [0]

