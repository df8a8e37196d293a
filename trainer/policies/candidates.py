"""Concrete candidates for choice mode: a template action (WebShop's `search[<query>]`, SearchQA's
`<answer><text></answer>`) is filled with spans of the text the policy has read, so that a choice can search and
answer where the environment lists only the form of those actions.

The fillers of a placeholder, in this order, without repeats:

- the clauses of the latest observation (text of two or more words between `[SEP]`, line breaks and `. ? ! ; : ,`
  before a space), as written and lowercased (WebShop's own queries are), at most MAX_CLAUSES of them;
- the names and numbers of the whole episode so far, latest first, at most MAX_NAMES: runs of capitalised words on
  one line that do not open a sentence, a line, a field or a bracket (`Keimzol Optics`, not `Question:`, `[SEP]` or
  `(Title`: an opening word is capitalised for grammar, not because it names something), and numbers (`1840`,
  `33,315`, `60.00`).

Every other action is left as listed; a template is replaced by its filled forms, so the literal placeholder (never
a sensible action) is not offered. The environment's interface is untouched: this is how the policy reads it.
"""

from __future__ import annotations

import re
from typing import Sequence

MAX_CLAUSES = 16
MAX_NAMES = 32
MAX_CLAUSE_CHARS = 160
_PLACEHOLDER = re.compile(r"<([A-Za-z_]\w*)>")  # as env_server/adapters/syntax.py: unless `</name>` closes it
_CLAUSE_BREAK = re.compile(r"\s*(?:\[SEP\]|\n|[.?!;:,](?=\s|$))\s*")
_NAME = re.compile(r"[A-Z][\w'’-]*(?: +[A-Z][\w'’-]*)*")
_NUMBER = re.compile(r"\d[\d,.]*\d|\d")
_OPENS_AFTER = frozenset(".?!:\n[](>")  # the last non-space character before a word that opens a sentence or field


def placeholder_span(action: str) -> tuple[int, int] | None:
    """Where the action's one placeholder is; None for a concrete action (or one with several placeholders)."""
    found = [m for m in _PLACEHOLDER.finditer(action) if f"</{m.group(1)}>" not in action[m.end():]]
    return (found[0].start(), found[0].end()) if len(found) == 1 else None


def clauses(text: str) -> list[str]:
    return [c for c in (part.strip() for part in _CLAUSE_BREAK.split(text))
            if " " in c and len(c) <= MAX_CLAUSE_CHARS]


def names(text: str) -> list[str]:
    """Names and numbers in the order they occur."""
    found = [(m.start(), m.group(0)) for m in _NUMBER.finditer(text)]
    for match in _NAME.finditer(text):
        before = text[:match.start()].rstrip(" \t")
        if before and before[-1] not in _OPENS_AFTER:
            found.append((match.start(), match.group(0)))
    return [name for _, name in sorted(found)]


def fillers(transcript: str, observation: str) -> list[str]:
    """What may stand for a placeholder: the latest observation's clauses, then the episode's names, latest first."""
    written = list(dict.fromkeys(clauses(observation)))[:MAX_CLAUSES]
    both = [form for clause in written for form in (clause, clause.lower())]
    named = list(dict.fromkeys(reversed(names(transcript))))[:MAX_NAMES]
    return list(dict.fromkeys(both + named))


def concrete_actions(valid_actions: Sequence[str], transcript: str, observation: str) -> list[str]:
    """The valid actions with every one-placeholder template replaced by its filled forms."""
    out: dict[str, None] = {}
    filling: list[str] | None = None
    for action in valid_actions:
        span = placeholder_span(action)
        if span is None:
            out.setdefault(action)
            continue
        if filling is None:
            filling = fillers(transcript, observation)
        if not filling:  # nothing read to fill it with: the form is all there is to offer
            out.setdefault(action)
        for filler in filling:
            out.setdefault(action[:span[0]] + filler + action[span[1]:])
    return list(out)
