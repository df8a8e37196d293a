"""Scripted policies that need no model: the environment's oracle (through OracleAction) and uniform random."""

from __future__ import annotations

import random
from typing import Protocol

from env_server.types import Observation


class EpisodeAPI(Protocol):
    async def oracle_action(self, session_id: str) -> str: ...


class OraclePolicy:
    """Asks the server for its oracle's next action; the server must run with --enable-oracle."""

    name = "oracle"

    def __init__(self, api: EpisodeAPI) -> None:
        self._api = api

    async def act(self, session_id: str, observation: Observation, rng: random.Random) -> str:
        return await self._api.oracle_action(session_id)


class RandomPolicy:
    """A uniform choice among the valid actions shown; the floor of every table."""

    name = "random"

    async def act(self, session_id: str, observation: Observation, rng: random.Random) -> str:
        return rng.choice(observation.valid_actions) if observation.valid_actions else "look"
