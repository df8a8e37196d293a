"""Interface adapters: the Adapter protocol, the registry of adapter kinds, and the Stack that composes them.

An adapter changes one thing about how the model sees observations and writes actions. A Stack applies
its adapters to observations in order and to actions in reverse, so `parse(encode(a)) == a`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar, Mapping, Protocol, Sequence

from env_server.errors import InvalidRequest, UnknownAdapter
from env_server.types import Observation


class Adapter(Protocol):
    name: ClassVar[str]

    def render(self, obs: Observation) -> Observation: ...

    def parse(self, text: str, obs: Observation) -> str | None:
        """Model text -> the inner interface's action text; None when it cannot be understood."""
        ...

    def encode(self, action: str, obs: Observation) -> str:
        """Inner interface's action text -> what the model would write."""
        ...


@dataclass(frozen=True, slots=True)
class AdapterParamInfo:
    name: str
    description: str
    choices: tuple[str, ...] = ()
    default: str = ""


@dataclass(frozen=True, slots=True)
class AdapterKind:
    """How to build one kind of adapter from its params and the episode seed."""

    name: str
    description: str
    params: tuple[AdapterParamInfo, ...]
    build: Callable[[Mapping[str, str], int], Adapter]


@dataclass(frozen=True, slots=True)
class AdapterSpec:
    name: str
    params: Mapping[str, str]


# Adapter kinds by name; each adapter module adds its own entry.
KINDS: dict[str, AdapterKind] = {}


def _check_params(kind: AdapterKind, params: Mapping[str, str]) -> None:
    allowed = {p.name: p for p in kind.params}
    for key, value in params.items():
        if key not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise InvalidRequest(f"adapter {kind.name!r} has no parameter {key!r} (known: {known})")
        choices = allowed[key].choices
        if choices and value not in choices:
            raise InvalidRequest(f"adapter {kind.name!r} parameter {key!r} must be one of {', '.join(choices)}; got {value!r}")


class Stack:
    """An ordered composition of adapters; empty means the environment's own interface."""

    def __init__(self, adapters: Sequence[Adapter] = ()) -> None:
        self.adapters = tuple(adapters)
        self.name = "+".join(a.name for a in self.adapters) or "original"

    def render(self, obs: Observation) -> Observation:
        for adapter in self.adapters:
            obs = adapter.render(obs)
        return obs

    def parse(self, text: str, canonical_obs: Observation) -> str | None:
        """Model text -> canonical action. Each adapter parses against the observation it saw rendered."""
        views = self._views(canonical_obs)
        for adapter, seen in zip(reversed(self.adapters), reversed(views)):
            parsed = adapter.parse(text, seen)
            if parsed is None:
                return None
            text = parsed
        return text

    def encode(self, action: str, canonical_obs: Observation) -> str:
        views = self._views(canonical_obs)
        for adapter, seen in zip(self.adapters, views):
            action = adapter.encode(action, seen)
        return action

    def _views(self, obs: Observation) -> list[Observation]:
        # The observation as each adapter receives it: the output of the adapters before it.
        views = []
        for adapter in self.adapters:
            views.append(obs)
            obs = adapter.render(obs)
        return views


def build_stack(specs: Sequence[AdapterSpec], seed: int) -> Stack:
    """Validate an interface and build its Stack; raises UnknownAdapter / InvalidRequest with the reason."""
    adapters = []
    for spec in specs:
        kind = KINDS.get(spec.name)
        if kind is None:
            known = ", ".join(sorted(KINDS)) or "none: this server serves the original interface only"
            raise UnknownAdapter(f"unknown adapter {spec.name!r} (known: {known})")
        _check_params(kind, spec.params)
        adapters.append(kind.build(spec.params, seed))
    return Stack(adapters)
