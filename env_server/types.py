"""In-process values of the environment service: specs, tasks, observations and step results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping


@dataclass(frozen=True, slots=True)
class SplitSpec:
    """A split and how many tasks it holds per difficulty level."""

    name: str
    task_counts: Mapping[str, int]  # difficulty -> number of tasks


@dataclass(frozen=True, slots=True)
class EnvSpec:
    name: str
    version: str
    difficulties: tuple[str, ...]
    splits: tuple[SplitSpec, ...]
    default_max_turns: int
    max_turns_limit: int
    reward_range: tuple[float, float] = (0.0, 1.0)
    success_definition: str = ""
    score_definition: str = ""
    difficulty_definition: str = ""
    # False when the environment's code keeps global state that concurrent calls would corrupt (a parser, a C
    # library): the server then runs all of its calls, one at a time, on a single thread.
    thread_safe: bool = True

    def split(self, name: str) -> SplitSpec | None:
        return next((s for s in self.splits if s.name == name), None)


@dataclass(frozen=True, slots=True)
class TaskInfo:
    """One task. `task_id` is a stable string such as `babyai/test/easy/GoToRedBall-00042`."""

    task_id: str
    split: str
    difficulty: str
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Observation:
    """What the model reads, the valid actions, and structured fields adapters may re-render."""

    text: str
    valid_actions: tuple[str, ...] = ()
    fields: Mapping[str, Any] = field(default_factory=dict)  # JSON-compatible values only
    # Set by an interface that hides the list from the client (action_list); adapters still parse against it.
    actions_hidden: bool = False

    # How an adapter rendered `text` from `fields` (obs_format), so an adapter that renames fields re-renders the
    # text instead of rewriting it word by word; None once the text is anything else.
    text_of_fields: Callable[[Mapping[str, Any]], str] | None = field(default=None, compare=False, repr=False)

    def but(self, *, text: str | None = None, valid_actions: tuple[str, ...] | None = None,
            fields: Mapping[str, Any] | None = None, actions_hidden: bool | None = None,
            text_of_fields: Callable[[Mapping[str, Any]], str] | None = None) -> "Observation":
        """A copy with the given parts changed: dataclasses.replace at a third of its cost, for per-step adapters.
        A new text or new fields drop text_of_fields unless it is given again."""
        same_text = text is None and fields is None
        return Observation(self.text if text is None else text,
                           self.valid_actions if valid_actions is None else valid_actions,
                           self.fields if fields is None else fields,
                           self.actions_hidden if actions_hidden is None else actions_hidden,
                           self.text_of_fields if same_text else text_of_fields)


@dataclass(frozen=True, slots=True)
class Outcome:
    """Set once an episode is over: `success` is the env's own win flag, `score` lies in the reward range."""

    success: bool
    score: float


@dataclass(frozen=True, slots=True)
class StepResult:
    observation: Observation
    reward: float
    done: bool  # the episode is over, for any reason
    truncated: bool  # over because the turn limit was reached
    action_valid: bool
    outcome: Outcome | None = None  # set once done


@dataclass(frozen=True, slots=True)
class TaskSelector:
    """A task by id, or by position in `tasks(split, difficulty)`."""

    task_id: str = ""
    split: str = ""
    difficulty: str = ""
    index: int = 0


@dataclass(frozen=True, slots=True)
class Opened:
    """A freshly reset episode: its session, task, first observation and interface name."""

    session_id: str
    task: TaskInfo
    result: StepResult
    interface: str
