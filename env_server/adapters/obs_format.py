"""`obs_format`: the observation as the environment's prose, or as JSON or key-value lines of its structured
fields (Observation.fields). It replaces the text it receives, so adapters that add text belong after it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar, Iterator, Mapping

from env_server.adapters.base import AdapterKind, AdapterParamInfo, RenderOnly, Turn, register
from env_server.types import Observation

FORMATS = ("prose", "json", "kv")


def _content(obs: Observation) -> Mapping[str, Any]:
    # An environment without structured fields still gets a structured rendering: its text as one field.
    return obs.fields if obs.fields else {"text": obs.text}


# One encoder for all: json.dumps with any non-default option builds a new encoder on every call.
json_text = json.JSONEncoder(ensure_ascii=False).encode


def _lines(prefix: str, value: Any) -> Iterator[str]:
    if isinstance(value, Mapping):
        if not value:
            yield f"{prefix}: (none)"
        for key, inner in value.items():
            yield from _lines(f"{prefix}.{key}" if prefix else str(key), inner)
    elif isinstance(value, list) and any(isinstance(v, (Mapping, list)) for v in value):
        for i, inner in enumerate(value):
            yield from _lines(f"{prefix}[{i}]", inner)
    elif isinstance(value, list):
        yield f"{prefix}: " + (", ".join(map(_scalar, value)) if value else "(none)")
    else:
        yield f"{prefix}: {_scalar(value)}"


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value.replace("\n", " / ")
    return json.dumps(value)


def kv_text(content: Mapping[str, Any]) -> str:
    return "\n".join(_lines("", content))


_RENDERERS = {"json": json_text, "kv": kv_text}


@dataclass(frozen=True, slots=True)
class ObsFormat(RenderOnly):
    name: ClassVar[str] = "obs_format"
    format: str = "json"

    def render(self, obs: Observation, turn: Turn) -> Observation:
        if self.format == "prose":
            return obs
        render = _RENDERERS[self.format]
        # With fields, the text is theirs alone: an adapter that renames them (lexicon) renders it again.
        return obs.but(text=render(_content(obs)), text_of_fields=render if obs.fields else None)


KIND = register(AdapterKind(
    name="obs_format",
    description="Renders the observation as the env's prose, or as JSON / key-value lines of its structured fields.",
    params=(AdapterParamInfo("format", "prose: the environment's own text; json: Observation.fields as one JSON "
                             "object; kv: one `key.path: value` line per field", FORMATS, "json"),),
    build=lambda params, context: ObsFormat(params["format"]),
))
