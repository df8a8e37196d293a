"""`feedback`: what the model reads after an invalid action: a terse "Invalid action." or the reason with the
actions it could have taken. Valid turns pass through unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from env_server.adapters.base import AdapterKind, AdapterParamInfo, RenderOnly, Turn, register
from env_server.types import Observation

TERSE_TEXT = "Invalid action."
VERBOSITY = ("terse", "verbose")


@dataclass(frozen=True, slots=True)
class Feedback(RenderOnly):
    name: ClassVar[str] = "feedback"
    verbosity: str = "verbose"

    def render(self, obs: Observation, turn: Turn) -> Observation:
        if turn.action_valid:
            return obs
        if self.verbosity == "terse":
            # Nothing changed in the world; the previous observation still holds.
            return obs.but(text=TERSE_TEXT, fields={"message": TERSE_TEXT})
        parts = [obs.text, "That action was not valid here."]
        message = obs.fields.get("message")
        if isinstance(message, str) and message and message not in obs.text:
            parts.append(message)
        if obs.valid_actions:
            parts.append("Valid actions: " + "; ".join(obs.valid_actions))
        return obs.but(text="\n".join(parts))


KIND = register(AdapterKind(
    name="feedback",
    description="Feedback on an invalid action: terse ('Invalid action.') or verbose (the reason and the valid actions).",
    params=(AdapterParamInfo("verbosity", "terse: only 'Invalid action.'; verbose: the observation, the reason, and "
                             "the valid actions in this interface", VERBOSITY, "verbose"),),
    build=lambda params, context: Feedback(params["verbosity"]),
))
