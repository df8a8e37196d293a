"""The environment contract: an Environment lists tasks and starts Episodes; an Episode steps on canonical text.

Conventions the interface adapters (env_server/adapters/) rely on:

- `Observation.fields` holds everything the text says, as JSON values (the `obs_format` adapter renders the
  observation from them alone), including the answer to the last action under `message`.
- A valid action holding a placeholder such as `<query>` (WebShop's `search[<query>]`) is a template: any text may
  stand for the placeholder. Free-text actions are listed this way so that every action format can express them.
- Canonical actions take one of three shapes: `verb[argument]`, `<verb>argument</verb>` or `verb argument...`
  (the `function_call` format maps the verb to the tool name and the rest to its "input").
- Optional hook: `Environment.lexicon_words() -> Sequence[str]`, the entity names (items, colors, product words;
  multi-word names allowed) the `lexicon` adapter renames. Called once per server; without it, `lexicon` is refused
  at Reset with INVALID_ARGUMENT.
"""

from __future__ import annotations

from typing import Protocol, Sequence

from env_server.types import EnvSpec, Observation, StepResult, TaskInfo


class Episode(Protocol):
    task: TaskInfo

    def observe(self) -> Observation: ...

    def step(self, action: str) -> StepResult:
        """Act with canonical action text. An invalid action is an observation with action_valid=False."""
        ...

    def oracle_action(self) -> str:
        """The next action on a winning path from the current state."""
        ...

    def close(self) -> None: ...


class Environment(Protocol):
    spec: EnvSpec

    def tasks(self, split: str, difficulty: str) -> Sequence[TaskInfo]:
        """Every task of a split and difficulty, in a fixed order. Unknown names raise UnknownTask."""
        ...

    def reset(self, task_id: str, seed: int) -> Episode:
        """Start an episode. The same task_id and seed give the same episode, byte for byte.

        Raises UnknownTask for an id this environment does not serve.
        """
        ...
