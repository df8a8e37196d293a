"""Environment name -> "module:Class", imported lazily so one env's image never imports another's packages."""

from __future__ import annotations

import importlib

from env_server.envs.base import Environment
from env_server.errors import UnknownEnvironment

_ENTRY_POINTS = {
    "null": "env_server.envs.null:NullEnv",
    "babyai": "env_server.envs.babyai:BabyAIEnv",
    "textcraft": "env_server.envs.textcraft:TextCraftEnv",
    "alfworld": "env_server.envs.alfworld:AlfWorldEnv",
    "webshop": "env_server.envs.webshop:WebShopEnv",
    "searchqa": "env_server.envs.searchqa:SearchQAEnv",
}

# Environments served to users and checked by the conformance suite; `null` only measures transport.
_BENCH_ONLY = {"null"}


def names(include_bench_only: bool = False) -> list[str]:
    return sorted(n for n in _ENTRY_POINTS if include_bench_only or n not in _BENCH_ONLY)


def load(name: str) -> Environment:
    if name not in _ENTRY_POINTS:
        known = ", ".join(sorted(_ENTRY_POINTS))
        raise UnknownEnvironment(f"unknown env {name!r} (known: {known})")
    module, _, attr = _ENTRY_POINTS[name].partition(":")
    return getattr(importlib.import_module(module), attr)()
