"""A Gymnasium view of a remote ShiftGym environment, so classic RL code can use any env server.

Observations and actions are text; `info` carries the valid actions, the task and the outcome.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import gymnasium as gym
from gymnasium import spaces

from trainer.client.env_client import EnvClient

MAX_TEXT_CHARS = 65_536
_CHARSET = frozenset(chr(c) for c in range(32, 127)) | {"\n", "\t"}


class RemoteTextEnv(gym.Env):
    """`gymnasium.Env` over one env server. `reset(seed=..., options={"task_id": ...})` picks the task;
    without a task id, tasks of `split`/`difficulty` are drawn with the reset seed."""

    metadata = {"render_modes": ["ansi"]}

    def __init__(
        self,
        target: str,
        split: str = "test",
        difficulty: str = "",
        interface: Sequence[tuple[str, Mapping[str, str]]] = (),
        max_turns: int = 0,
        timeout_s: float = 30.0,
    ) -> None:
        self._client = EnvClient(target, timeout_s)
        info = self._client.describe()
        self.split = split
        self.difficulty = difficulty or info.spec.difficulties[0]
        self.interface = tuple(interface)
        self.max_turns = max_turns
        self._task_count = info.spec.split(split).task_counts[self.difficulty] if info.spec.split(split) else 0
        if not self._task_count:
            raise ValueError(f"server {target} has no tasks for split {split!r} difficulty {self.difficulty!r}")
        self.observation_space = spaces.Text(max_length=MAX_TEXT_CHARS, charset=_CHARSET)
        # The charset is ASCII, so characters are bytes and the server's action limit applies as is.
        self.action_space = spaces.Text(max_length=info.max_action_bytes, charset=_CHARSET)
        self._session: str | None = None
        self._last_text = ""

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        self._close_session()
        options = options or {}
        episode_seed = seed if seed is not None else int(self.np_random.integers(0, 2**31 - 1))
        if "task_id" in options:
            opened = self._client.reset(options["task_id"], seed=episode_seed, interface=self.interface,
                                        max_turns=self.max_turns)
        else:
            index = int(self.np_random.integers(0, self._task_count))
            opened = self._client.reset(split=self.split, difficulty=self.difficulty, index=index, seed=episode_seed,
                                        interface=self.interface, max_turns=self.max_turns)
        self._session = opened.session_id
        self._last_text = opened.result.observation.text
        return self._last_text, {"task_id": opened.task.task_id, "valid_actions": opened.result.observation.valid_actions}

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if self._session is None:
            raise RuntimeError("call reset() before step()")
        result, turn = self._client.step(self._session, action)
        self._last_text = result.observation.text
        info: dict[str, Any] = {"valid_actions": result.observation.valid_actions, "action_valid": result.action_valid,
                                "turn": turn}
        if result.outcome is not None:
            info["success"], info["score"] = result.outcome.success, result.outcome.score
        if result.done:
            self._close_session()
        return self._last_text, result.reward, result.done and not result.truncated, result.truncated, info

    def render(self) -> str:
        return self._last_text

    def close(self) -> None:
        self._close_session()
        self._client.close_channel()

    def _close_session(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            self._client.close(session)
