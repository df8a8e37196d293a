"""Scripted policies that need no model: the environment's oracle (through OracleAction) and uniform random."""

from __future__ import annotations

from trainer.policies.base import Turn
from trainer.policies.candidates import concrete_actions


class OraclePolicy:
    """Asks the server for its oracle's next action; the server must run with --enable-oracle."""

    name = "oracle"

    async def act(self, turn: Turn) -> str:
        return await turn.oracle()


class RandomPolicy:
    """A uniform choice among the actions choice mode offers (the valid actions shown, templates filled from the
    episode's text: trainer/policies/candidates.py); the floor of every table."""

    name = "random"

    async def act(self, turn: Turn) -> str:
        transcript = "\n".join(message.content for message in turn.messages)
        actions = concrete_actions(turn.observation.valid_actions, transcript, turn.observation.text)
        return turn.rng.choice(actions) if actions else "look"
