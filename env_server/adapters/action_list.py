"""`action_list`: whether the valid actions appear (in the text and in Observation.valid_actions) on every turn,
on the first turn only, or never. The list stays on the observation for the adapters that parse against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from env_server.adapters.base import AdapterKind, AdapterParamInfo, RenderOnly, Turn, register
from env_server.types import Observation

SHOW = ("every", "first", "never")


@dataclass(frozen=True, slots=True)
class ActionList(RenderOnly):
    name: ClassVar[str] = "action_list"
    show: str = "every"

    def render(self, obs: Observation, turn: Turn) -> Observation:
        if self.show == "never" or (self.show == "first" and turn.index != 0):
            return obs.but(actions_hidden=True)
        if not obs.valid_actions:
            return obs.but(actions_hidden=False)
        listing = "\n".join(obs.valid_actions)
        return obs.but(text=f"{obs.text}\n\nValid actions:\n{listing}", actions_hidden=False)


KIND = register(AdapterKind(
    name="action_list",
    description="Shows the valid actions in the text and in valid_actions on every turn, the first turn only, or never.",
    params=(AdapterParamInfo("show", "every: listed each turn; first: on the first observation only; never: hidden "
                             "(valid_actions comes back empty)", SHOW, "every"),),
    build=lambda params, context: ActionList(params["show"]),
))
