"""Pydantic validation errors as one line each, naming the field (`axes.sequential.orders.1`) and what is allowed."""

from __future__ import annotations

import types
import typing
from typing import Any, Union

from pydantic import BaseModel, ValidationError


def _unwrap(annotation: Any) -> list[Any]:
    """The model classes an annotation may hold (through Optional, list, dict values)."""
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _unwrap(arg)]
    if origin in (list, tuple):
        return [m for arg in typing.get_args(annotation) for m in _unwrap(arg)]
    if origin is dict:
        return [("dict", m) for m in _unwrap(typing.get_args(annotation)[1])]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def _model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that holds the last part of `loc` (for listing its allowed fields)."""
    current: Any = root
    for part in loc[:-1]:
        if isinstance(current, tuple):  # a dict's values: the key is any name
            current = current[1]
            continue
        if isinstance(part, int) or not (isinstance(current, type) and part in current.model_fields):
            continue
        found = _unwrap(current.model_fields[part].annotation)
        if not found:
            return None
        current = found[0]
    return current if isinstance(current, type) else None


def describe_errors(err: ValidationError, root: type[BaseModel]) -> str:
    """One line per error: the field's dotted path and what is wrong or allowed there."""
    lines = []
    for error in err.errors():
        loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and p.startswith(("function-", "tagged"))))
        where = ".".join(str(p) for p in loc) or "(spec)"
        if error["type"] == "extra_forbidden":
            model = _model_at(root, loc)
            allowed = ", ".join(model.model_fields) if model else "see trainer/grid/spec.py"
            lines.append(f"{where}: unknown field (allowed here: {allowed})")
        elif error["type"] == "missing":
            lines.append(f"{where}: required field missing")
        else:
            message = error["msg"].removeprefix("Value error, ")
            lines += [f"{where}: {line}" if where != "(spec)" else line for line in message.splitlines()]
    return "\n".join(lines)
