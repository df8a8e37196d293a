"""Named interfaces: `original` (the environment's own, the default) and the main shifts, each a list of adapters.

A client asks for one with the pseudo-adapter `preset`, e.g. `interface=[("preset", {"name": "numbered"})]` from
Python or `"interface": [{"name": "preset", "params": {"name": "numbered"}}]` from grpcurl; it expands in place,
so more adapters may follow it. Metrics and results name the expanded adapters, never the preset.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from env_server.adapters.base import EXPANSIONS, AdapterContext, AdapterKind, AdapterParamInfo, AdapterSpec, register
from env_server.errors import InvalidRequest


def _one(name: str, **params: str) -> AdapterSpec:
    return AdapterSpec(name, params)


PRESETS: dict[str, tuple[AdapterSpec, ...]] = {
    "original": (),
    "json_obs": (_one("obs_format", format="json"),),
    "kv_obs": (_one("obs_format", format="kv"),),
    "listed_actions": (_one("action_list", show="every"),),
    "first_action_list": (_one("action_list", show="first"),),
    "no_action_list": (_one("action_list", show="never"),),
    "function_call": (_one("action_format", format="function_call"),),
    "numbered": (_one("action_format", format="numbered"),),
    "terse_feedback": (_one("feedback", verbosity="terse"),),
    "verbose_feedback": (_one("feedback", verbosity="verbose"),),
    "lexicon": (_one("lexicon"),),
    "react": (_one("prompt_style", style="react"),),
    # Every shift at once; the longest chain, and the one bench/adapters.py measures.
    "all_shifts": (
        _one("obs_format", format="json"),
        _one("lexicon"),
        _one("action_format", format="function_call"),
        _one("action_list", show="first"),
        _one("feedback", verbosity="terse"),
        _one("prompt_style", style="react"),
    ),
}
NEEDS_LEXICON = frozenset(n for n, specs in PRESETS.items() if any(s.name == "lexicon" for s in specs))


def presets_for(has_lexicon: bool) -> list[str]:
    """The presets an environment serves: those that rename entities only where it offers lexicon_words()."""
    return [n for n in PRESETS if has_lexicon or n not in NEEDS_LEXICON]


def _expand(params: Mapping[str, str]) -> Sequence[AdapterSpec]:
    name = params.get("name", "original")
    if set(params) - {"name"} or name not in PRESETS:
        raise InvalidRequest(f"preset needs exactly one param 'name', one of {', '.join(PRESETS)}; got {dict(params)}")
    return PRESETS[name]


def _not_built(params: Mapping[str, str], context: AdapterContext) -> None:
    raise AssertionError("a preset is expanded before the stack is built")  # pragma: no cover


EXPANSIONS["preset"] = _expand
KIND = register(AdapterKind(
    name="preset",
    description="A named interface standing for a list of adapters: " + "; ".join(
        f"{n} = [{', '.join(s.name + ''.join(f' {k}={v}' for k, v in s.params.items()) for s in specs)}]"
        for n, specs in PRESETS.items()),
    params=(AdapterParamInfo("name", "the preset; `lexicon` and `all_shifts` need an environment with entity words",
                             tuple(PRESETS), "original"),),
    build=_not_built,  # type: ignore[arg-type]
))
