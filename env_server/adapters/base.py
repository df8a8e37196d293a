"""Interface adapters: the Adapter protocol, the registry of adapter kinds, and the Stack that composes them.

An adapter changes one thing about how the model sees observations and writes actions. A Stack applies
its adapters to observations in order and to actions in reverse, so `parse(encode(a)) == a`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, ClassVar, Mapping, Protocol, Sequence

from env_server.errors import InvalidRequest, UnknownAdapter
from env_server.types import Observation


@dataclass(frozen=True, slots=True)
class Turn:
    """Where an observation falls in the episode: some adapters show things on the first turn only."""

    index: int = 0  # 0 for the observation Reset returns
    action_valid: bool = True  # whether the action that led to this observation was valid


@dataclass(frozen=True, slots=True)
class Rejected:
    """Model text an adapter could not understand, and why, in the interface's own words."""

    reason: str


class Adapter(Protocol):
    name: ClassVar[str]

    def render(self, obs: Observation, turn: Turn) -> Observation: ...

    def parse(self, text: str, obs: Observation) -> str | Rejected:
        """Model text -> the inner interface's action text; Rejected when it cannot be understood."""
        ...

    def encode(self, action: str, obs: Observation) -> str:
        """Inner interface's action text -> what the model would write."""
        ...


class RenderOnly:
    """For adapters that change only what the model reads: actions pass through both ways unchanged."""

    __slots__ = ()

    def parse(self, text: str, obs: Observation) -> str | Rejected:
        return text

    def encode(self, action: str, obs: Observation) -> str:
        return action


@dataclass(frozen=True, slots=True)
class AdapterParamInfo:
    name: str
    description: str
    choices: tuple[str, ...] = ()
    default: str = ""


@dataclass(frozen=True, slots=True)
class AdapterContext:
    """What an adapter may be built from besides its params: the episode seed and the env's optional hooks."""

    seed: int = 0
    # The environment's entity words (Environment.lexicon_words), or None when it offers none; called lazily.
    lexicon_words: Callable[[], Sequence[str]] | None = None


@dataclass(frozen=True, slots=True)
class AdapterKind:
    """How to build one kind of adapter from its params and the episode's context."""

    name: str
    description: str
    params: tuple[AdapterParamInfo, ...]
    build: Callable[[Mapping[str, str], AdapterContext], Adapter]


@dataclass(frozen=True, slots=True)
class AdapterSpec:
    name: str
    params: Mapping[str, str] = field(default_factory=dict)


# Adapter kinds by name; each adapter module adds its own entry (env_server/adapters/__init__.py imports them all).
KINDS: dict[str, AdapterKind] = {}
# Pseudo-adapters that stand for a list of adapters (the `preset` entry of presets.py).
EXPANSIONS: dict[str, Callable[[Mapping[str, str]], Sequence[AdapterSpec]]] = {}


def register(kind: AdapterKind) -> AdapterKind:
    KINDS[kind.name] = kind
    return kind


def resolved_params(kind: AdapterKind, params: Mapping[str, str]) -> dict[str, str]:
    """The params with defaults filled in; raises InvalidRequest for an unknown name or a value not offered."""
    allowed = {p.name: p for p in kind.params}
    for key, value in params.items():
        if key not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise InvalidRequest(f"adapter {kind.name!r} has no parameter {key!r} (known: {known})")
        choices = allowed[key].choices
        if choices and value not in choices:
            raise InvalidRequest(f"adapter {kind.name!r} parameter {key!r} must be one of {', '.join(choices)}; got {value!r}")
    return {p.name: params.get(p.name, p.default) for p in kind.params}


def label(name: str, params: Mapping[str, str]) -> str:
    """An adapter's name in metrics and results: `obs_format(format=json)`, or the bare name without params."""
    inner = ",".join(f"{k}={v}" for k, v in sorted(params.items()))
    return f"{name}({inner})" if inner else name


class Stack:
    """An ordered composition of adapters; empty means the environment's own interface."""

    def __init__(self, adapters: Sequence[Adapter] = (), name: str = "") -> None:
        self.adapters = tuple(adapters)
        self.name = name or "+".join(a.name for a in self.adapters) or "original"
        self._cache: tuple[Observation, Turn, list[Observation]] | None = None

    def render(self, obs: Observation, turn: Turn) -> Observation:
        views = self._views(obs, turn)
        return self.adapters[-1].render(views[-1], turn) if self.adapters else obs

    def parse(self, text: str, canonical_obs: Observation, turn: Turn) -> str | Rejected:
        """Model text -> canonical action. Each adapter parses against the observation it saw rendered."""
        views = self._views(canonical_obs, turn)
        for adapter, seen in zip(reversed(self.adapters), reversed(views)):
            parsed = adapter.parse(text, seen)
            if isinstance(parsed, Rejected):
                return parsed
            text = parsed
        return text

    def encode(self, action: str, canonical_obs: Observation, turn: Turn) -> str:
        views = self._views(canonical_obs, turn)
        for adapter, seen in zip(self.adapters, views):
            action = adapter.encode(action, seen)
        return action

    def _views(self, obs: Observation, turn: Turn) -> list[Observation]:
        # The observation as each adapter receives it: the output of the adapters before it. The last one is
        # kept, since a step renders, then parses and encodes against the same observation.
        if self._cache is not None and self._cache[0] is obs and self._cache[1] == turn:
            return self._cache[2]
        views = []
        current = obs
        for adapter in self.adapters:
            views.append(current)
            if len(views) < len(self.adapters):
                current = adapter.render(current, turn)
        self._cache = (obs, turn, views)
        return views


def expand(specs: Sequence[AdapterSpec]) -> list[AdapterSpec]:
    """Replace pseudo-adapters (`preset`) by the adapters they stand for."""
    out: list[AdapterSpec] = []
    for spec in specs:
        if spec.name in EXPANSIONS:
            out.extend(EXPANSIONS[spec.name](spec.params))
        else:
            out.append(spec)
    return out


def build_stack(specs: Sequence[AdapterSpec], context: AdapterContext | int = 0) -> Stack:
    """Validate an interface and build its Stack; raises UnknownAdapter / InvalidRequest with the reason."""
    if isinstance(context, int):
        context = AdapterContext(seed=context)
    adapters, labels = [], []
    for spec in expand(specs):
        kind = KINDS.get(spec.name)
        if kind is None:
            known = ", ".join(sorted(KINDS)) or "none: this server serves the original interface only"
            raise UnknownAdapter(f"unknown adapter {spec.name!r} (known: {known})")
        params = resolved_params(kind, spec.params)
        adapters.append(kind.build(params, context))
        labels.append(label(kind.name, params))
    return Stack(adapters, "+".join(labels))
