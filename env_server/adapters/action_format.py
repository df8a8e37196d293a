"""`action_format`: the action syntax the model writes: the environment's own verbs, a JSON function call, or the
number of a listed action. Free-text actions (templates such as `search[<query>]`) stay writable in every format.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

from env_server.adapters.base import AdapterKind, AdapterParamInfo, Rejected, Turn, register
from env_server.adapters.syntax import is_template, join_action, matches_template, split_action, style_for
from env_server.types import Observation

ARGUMENT = "input"  # the one argument of every tool: the action's text after its verb
_NUMBER = re.compile(r"^[(#]?\s*(\d{1,9})\s*[.):]?$")  # bounded: int() refuses strings of over 4300 digits
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


def _forgive(text: str, listed: tuple[str, ...]) -> str:
    """Drop surrounding whitespace and one trailing period; a listed action written in another case is that action."""
    text = text.strip()
    if text.endswith(".") and text not in listed:
        text = text[:-1].rstrip()
    if text not in listed:
        folded = {a.casefold(): a for a in listed}
        text = folded.get(text.casefold(), text)
    return text


@dataclass(frozen=True, slots=True)
class Verbs:
    """The environment's own action text, parsed forgivingly."""

    name: ClassVar[str] = "action_format"

    def render(self, obs: Observation, turn: Turn) -> Observation:
        return obs

    def parse(self, text: str, obs: Observation) -> str | Rejected:
        return _forgive(text, obs.valid_actions)

    def encode(self, action: str, obs: Observation) -> str:
        return action


@dataclass(frozen=True, slots=True)
class NumberedChoice:
    """Listed actions by number (1-based); templates (`search[<query>]`) are written out as before."""

    name: ClassVar[str] = "action_format"

    def render(self, obs: Observation, turn: Turn) -> Observation:
        choices = _choices(obs)
        if not choices:
            return obs
        templates = [a for a in obs.valid_actions if is_template(a)]
        menu = "\n".join(f"{i}. {a}" for i, a in enumerate(choices, 1))
        text = f"{obs.text}\n\nChoose an action by its number:\n{menu}"
        if templates:
            text += "\nOr write an action of the form: " + " or ".join(templates)
        numbers = tuple(str(i) for i in range(1, len(choices) + 1))
        return obs.but(text=text, valid_actions=numbers + tuple(templates))

    def parse(self, text: str, obs: Observation) -> str | Rejected:
        choices = _choices(obs)
        stripped = text.strip()
        number = _NUMBER.match(stripped)
        if number and choices:
            index = int(number.group(1))
            if 1 <= index <= len(choices):
                return choices[index - 1]
            return Rejected(f"There is no choice {index}: answer with a number from 1 to {len(choices)}.")
        if matches_template(stripped, obs.valid_actions):
            return stripped
        folded = {a.casefold(): a for a in choices}
        if stripped.rstrip(".").casefold() in folded:  # the action copied instead of its number
            return folded[stripped.rstrip(".").casefold()]
        if not choices:
            return stripped  # nothing is listed (free-text environment): the text is the action
        templates = [a for a in obs.valid_actions if is_template(a)]
        also = f", or an action of the form {' or '.join(templates)}" if templates else ""
        return Rejected(f"Answer with the number of one of the choices, from 1 to {len(choices)}{also}.")

    def encode(self, action: str, obs: Observation) -> str:
        choices = _choices(obs)
        return str(choices.index(action) + 1) if action in choices else action


def _choices(obs: Observation) -> list[str]:
    return [a for a in obs.valid_actions if not is_template(a)]


@dataclass(frozen=True, slots=True)
class FunctionCall:
    """`{"name": <verb>, "arguments": {"input": <rest of the action>}}`; the tool list comes with the first observation."""

    name: ClassVar[str] = "action_format"

    def render(self, obs: Observation, turn: Turn) -> Observation:
        calls = _calls(obs.valid_actions)
        if turn.index != 0:
            return obs.but(valid_actions=calls)
        return obs.but(text=f"{tool_header(obs.valid_actions)}\n\n{obs.text}", valid_actions=calls)

    def parse(self, text: str, obs: Observation) -> str | Rejected:
        call = _load_call(text)
        if isinstance(call, Rejected):
            return call
        name, argument = call
        verbs = _verbs(obs.valid_actions)
        if name not in verbs and name.lower() in verbs:
            name = name.lower()
        return join_action(name, argument, style_for(name, obs.valid_actions))

    def encode(self, action: str, obs: Observation) -> str:
        return _call_text(action)


# Valid-action lists repeat from turn to turn and across sessions: convert each list once.
@lru_cache(maxsize=4096)
def _calls(actions: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(_call_text(a) for a in actions)


@lru_cache(maxsize=4096)
def _verbs(actions: tuple[str, ...]) -> frozenset[str]:
    return frozenset(split_action(a)[0] for a in actions)


@lru_cache(maxsize=65536)
def _call_text(action: str) -> str:
    verb, argument, _ = split_action(action)
    return json.dumps({"name": verb, "arguments": {ARGUMENT: argument} if argument else {}})


def tool_header(actions: tuple[str, ...]) -> str:
    """The tool schema: one tool per verb among the first observation's actions, with an example each."""
    tools: dict[str, dict[str, Any]] = {}
    for action in actions:
        verb, argument, _ = split_action(action)
        tool = tools.setdefault(verb, {"name": verb, "arguments": {}})
        if argument and ARGUMENT not in tool["arguments"]:
            tool["arguments"][ARGUMENT] = f"string, e.g. {json.dumps(argument)}"
    lines = [json.dumps(t) for t in tools.values()]
    return (
        'Act by calling one tool per turn, written as JSON: {"name": <tool>, "arguments": {"input": <text>}}. '
        'An action is its first word as the name and the rest as "input"; actions that appear later take the same '
        "form. Tools:\n" + "\n".join(lines)
    )


def _load_call(text: str) -> tuple[str, str] | Rejected:
    usage = 'Write one JSON function call: {"name": <tool>, "arguments": {"input": <text>}}.'
    raw = text.strip()
    fenced = _FENCE.match(raw)
    if fenced:
        raw = fenced.group(1)
    try:
        call = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the interpreter's stack allows
        return Rejected(f"That is not JSON. {usage}")
    if not isinstance(call, dict) or not isinstance(call.get("name"), str) or set(call) - {"name", "arguments"}:
        return Rejected(f'A call is an object with a string "name" and an "arguments" object. {usage}')
    arguments = call.get("arguments", {})
    if isinstance(arguments, str):  # OpenAI-style arguments given as a JSON string
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except (ValueError, RecursionError):
            return Rejected(f'"arguments" is a string that is not JSON. {usage}')
    if not isinstance(arguments, dict) or set(arguments) - {ARGUMENT}:
        return Rejected(f'The only argument is "input". {usage}')
    argument = arguments.get(ARGUMENT, "")
    if not isinstance(argument, str):
        return Rejected(f'"input" must be a string. {usage}')
    return call["name"].strip(), argument


_FORMATS = {"verbs": Verbs(), "numbered": NumberedChoice(), "function_call": FunctionCall()}

KIND = register(AdapterKind(
    name="action_format",
    description="The action syntax: the environment's own verbs, a JSON function call, or a numbered choice.",
    params=(AdapterParamInfo("format", "verbs: the env's own action text (forgiving on whitespace, a trailing "
                             "period, case of a listed action); function_call: {\"name\", \"arguments\"} JSON with the "
                             "tool list in the first observation; numbered: the number of a listed action",
                             tuple(_FORMATS), "verbs"),),
    build=lambda params, context: _FORMATS[params["format"]],
))


