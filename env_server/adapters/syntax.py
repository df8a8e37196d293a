"""The shapes canonical actions take, shared by the action adapters: `verb[arg]`, `<verb>arg</verb>`, `verb arg`,
and templates: a valid action holding a placeholder such as `<query>` stands for any text in its place.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterable, Literal

Style = Literal["bracket", "tag", "words"]

_BRACKET = re.compile(r"^([A-Za-z_][\w-]*)\[(.*)\]$", re.DOTALL)
_TAG = re.compile(r"^<([A-Za-z_][\w-]*)>(.*)</\1>$", re.DOTALL)
_PLACEHOLDER = re.compile(r"<([A-Za-z_]\w*)>")


def split_action(action: str) -> tuple[str, str, Style]:
    """`search[red shoes]` -> ("search", "red shoes", "bracket"); `get 1 oak log` -> ("get", "1 oak log", "words")."""
    match = _BRACKET.match(action)
    if match:
        return match.group(1), match.group(2), "bracket"
    match = _TAG.match(action)
    if match:
        return match.group(1), match.group(2), "tag"
    verb, _, rest = action.partition(" ")
    return verb, rest, "words"


def join_action(verb: str, argument: str, style: Style) -> str:
    if style == "bracket":
        return f"{verb}[{argument}]"
    if style == "tag":
        return f"<{verb}>{argument}</{verb}>"
    return f"{verb} {argument}" if argument else verb


@lru_cache(maxsize=4096)
def style_for(verb: str, actions: tuple[str, ...]) -> Style:
    """The shape `verb` takes among these actions; else the shape most of them take; else words."""
    counts: dict[Style, int] = {}
    for action in actions:
        name, _, style = split_action(action)
        if name == verb:
            return style
        counts[style] = counts.get(style, 0) + 1
    bracket_or_tag = {s: n for s, n in counts.items() if s != "words"}
    return max(bracket_or_tag, key=lambda s: bracket_or_tag[s]) if bracket_or_tag else "words"


def is_template(action: str) -> bool:
    return template_regex(action) is not None


@lru_cache(maxsize=4096)
def template_regex(action: str) -> re.Pattern[str] | None:
    """A regex for the actions a template stands for, or None when `action` has no placeholder.

    `<name>` is a placeholder unless a `</name>` closes it (then it is a tag, as in `<search>...</search>`).
    """
    parts, last, found = [], 0, False
    for match in _PLACEHOLDER.finditer(action):
        if f"</{match.group(1)}>" in action[match.end():]:
            continue
        parts += [re.escape(action[last:match.start()]), "(.+)"]
        last, found = match.end(), True
    if not found:
        return None
    parts.append(re.escape(action[last:]))
    return re.compile("^" + "".join(parts) + "$", re.DOTALL)


def matches_template(text: str, actions: Iterable[str]) -> bool:
    for action in actions:
        pattern = template_regex(action)
        if pattern is not None and pattern.match(text):
            return True
    return False
