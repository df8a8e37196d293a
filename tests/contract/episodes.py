"""Episode drivers for the conformance suite, over the real client."""

from __future__ import annotations

from dataclasses import dataclass

from env_server.types import Outcome
from trainer.client.env_client import EnvClient


@dataclass(frozen=True)
class Transcript:
    task_id: str
    turns: tuple[tuple[str, str, tuple[str, ...], float, bool], ...]  # action, observation, valid actions, reward, done
    first_observation: str
    outcome: Outcome | None


def play_oracle(client: EnvClient, task_id: str, seed: int, **reset_kwargs: object) -> Transcript:
    """Reset, then follow OracleAction until the episode is over; closes the session."""
    opened = client.reset(task_id, seed=seed, **reset_kwargs)
    turns, result = [], opened.result
    while not result.done:
        action = client.oracle_action(opened.session_id)
        result, turn = client.step(opened.session_id, action, step_index=len(turns))
        turns.append((action, result.observation.text, result.observation.valid_actions, result.reward, result.done))
    client.close(opened.session_id)
    return Transcript(task_id, tuple(turns), opened.result.observation.text, result.outcome)
