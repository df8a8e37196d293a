"""`prompt_style`: the answer format the first observation asks for: ReAct ("Thought: ... Action: ...", the action
is read from the last `Action:`) or the bare action. The server puts this header in the first observation, so a
trainer that renders its own prompt should leave this adapter out.
"""

from __future__ import annotations

import re
from functools import lru_cache
from dataclasses import dataclass
from typing import ClassVar

from env_server.adapters.base import AdapterKind, AdapterParamInfo, Rejected, Turn, register
from env_server.types import Observation

STYLES = ("react", "bare")
REACT_HEADER = ("Answer in two parts: first your reasoning, then the action, as\n"
                "Thought: <your reasoning>\nAction: <your action>")
BARE_HEADER = "Answer with the action only, nothing else."
_ACTION = re.compile(r"(?:^|\n)\s*\**action\**\s*:\s*", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class PromptStyle:
    name: ClassVar[str] = "prompt_style"
    style: str = "react"

    def render(self, obs: Observation, turn: Turn) -> Observation:
        # Valid actions are listed as they are written here (`Action: ...`), so adapters after this one that
        # number or wrap the listed actions still recognise what encode() produces.
        actions = _action_lines(obs.valid_actions) if self.style == "react" else obs.valid_actions
        if turn.index != 0:
            return obs.but(valid_actions=actions)
        header = REACT_HEADER if self.style == "react" else BARE_HEADER
        return obs.but(text=f"{header}\n\n{obs.text}", valid_actions=actions)

    def parse(self, text: str, obs: Observation) -> str | Rejected:
        if self.style == "bare":
            return text
        marks = list(_ACTION.finditer(text))
        if not marks:
            return Rejected("No action found: end your answer with a line 'Action: <your action>'.")
        return text[marks[-1].end():].strip()

    def encode(self, action: str, obs: Observation) -> str:
        # The thought is optional when parsing, so the encoded action is the action line alone.
        return f"Action: {action}" if self.style == "react" else action


@lru_cache(maxsize=4096)
def _action_lines(actions: tuple[str, ...]) -> tuple[str, ...]:
    # Valid-action lists repeat from turn to turn and across sessions: write each list once.
    return tuple(f"Action: {a}" for a in actions)


KIND = register(AdapterKind(
    name="prompt_style",
    description="The answer format asked for in the first observation: ReAct (Thought/Action) or the bare action.",
    params=(AdapterParamInfo("style", "react: 'Thought: ... Action: ...', the action read after the last 'Action:'; "
                             "bare: the action alone", STYLES, "react"),),
    build=lambda params, context: PromptStyle(params["style"]),
))
