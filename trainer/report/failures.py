"""Failure-mode tags for unsuccessful trajectories, by rules that read only what the results store keeps.

A failed trajectory (success false) gets every tag whose rule holds; its *primary* tag is the first of them in
this order, which is the order the rules are listed:

1. `env_error`: the episode ended `failed` (an environment, transport or policy error; the reason is stored).
2. `invalid_loop`: three or more invalid actions in a row.
3. `repeated_action`: the same action three or more times in a row, or the last six actions cycling among at most
   two distinct actions (the agent is stuck, whether or not the actions are valid).
4. `unverified_commit`: the study's "confirmation bias": the episode ended on a committing action without any
   checking action before it. Committing and checking actions per environment (matched case-insensitively as
   substrings, so a JSON function call naming the verb matches too; numbered actions cannot be read and never
   match): SearchQA commits with `<answer>` / `answer`, checks with `<search>` / `search`; WebShop commits with
   `buy now`, checks with `description`, `features`, `reviews` or a page turn (`next >`, `< prev`). Environments
   without a committing action (BabyAI, TextCraft, ALFWorld) never get this tag.
5. `truncation`: the turn limit or the token budget ended the episode.
6. `wrong_outcome`: none of the above: the episode ended on its own, unsuccessfully.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

TAGS = ("env_error", "invalid_loop", "repeated_action", "unverified_commit", "truncation", "wrong_outcome")

COMMIT = {"searchqa": ("answer",), "webshop": ("buy now",)}
CHECK = {"searchqa": ("search",), "webshop": ("description", "features", "reviews", "next >", "< prev")}
LOOP = 3  # consecutive invalid (or identical) actions that make a loop
CYCLE_WINDOW, CYCLE_DISTINCT = 6, 2


@dataclass(frozen=True, slots=True)
class Episode:
    """The fields of a stored trajectory the rules read."""

    env: str
    status: str  # completed | truncated | failed
    success: bool
    actions: Sequence[str]
    valid: Sequence[bool]


def _run_length(flags: Sequence[bool]) -> int:
    best = run = 0
    for flag in flags:
        run = run + 1 if flag else 0
        best = max(best, run)
    return best


def _repeats(actions: Sequence[str]) -> bool:
    run = 1
    for previous, action in zip(actions, actions[1:]):
        run = run + 1 if action == previous else 1
        if run >= LOOP:
            return True
    tail = actions[-CYCLE_WINDOW:]
    return len(tail) == CYCLE_WINDOW and len(set(tail)) <= CYCLE_DISTINCT


def _matches(action: str, words: Sequence[str]) -> bool:
    lowered = action.lower()
    return any(w in lowered for w in words)


def _unverified_commit(episode: Episode) -> bool:
    commit, check = COMMIT.get(episode.env), CHECK.get(episode.env)
    if not commit or not check or not episode.actions or episode.status != "completed":
        return False
    *before, last = episode.actions
    if not _matches(last, commit):
        return False
    # "search" is inside "<search>" and in WebShop's own search[...] too; in SearchQA only a search checks.
    return not any(_matches(a, check) for a in before)


def tags(episode: Episode) -> tuple[str, ...]:
    """Every tag whose rule holds, in priority order; () for a successful episode."""
    if episode.success:
        return ()
    found = []
    if episode.status == "failed":
        found.append("env_error")
    if _run_length([not v for v in episode.valid]) >= LOOP:
        found.append("invalid_loop")
    if _repeats(list(episode.actions)):
        found.append("repeated_action")
    if _unverified_commit(episode):
        found.append("unverified_commit")
    if episode.status == "truncated":
        found.append("truncation")
    if not found:
        found.append("wrong_outcome")
    return tuple(found)


def primary(episode: Episode) -> str | None:
    found = tags(episode)
    return found[0] if found else None
