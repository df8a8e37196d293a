"""Scripted policies that need no model: the environment's oracle (through OracleAction) and uniform random."""

from __future__ import annotations

from trainer.policies.base import Turn


class OraclePolicy:
    """Asks the server for its oracle's next action; the server must run with --enable-oracle."""

    name = "oracle"

    async def act(self, turn: Turn) -> str:
        return await turn.oracle()


class RandomPolicy:
    """A uniform choice among the valid actions shown; the floor of every table."""

    name = "random"

    async def act(self, turn: Turn) -> str:
        actions = turn.observation.valid_actions
        return turn.rng.choice(actions) if actions else "look"
