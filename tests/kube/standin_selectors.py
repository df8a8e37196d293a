"""Label and field selectors and JSON merge / JSON Patch, as the Kubernetes API server applies them.

Part of the stand-in API server (tests/kube_apiserver.py); pure functions over plain dict objects.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any, Callable

Obj = dict[str, Any]


class SelectorError(ValueError):
    """A selector the real server would refuse with 400 BadRequest."""


@dataclass(frozen=True)
class _Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "=":
            return present and value == self.values[0]
        if self.op == "!=":
            return not present or value != self.values[0]
        if self.op == "in":
            return present and value in self.values
        if self.op == "notin":
            return not present or value not in self.values
        if self.op == "exists":
            return present
        return not present  # "!"


_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_SET_TERM = re.compile(rf"^\s*(?P<key>{_KEY})\s+(?P<op>in|notin)\s*\((?P<values>[^)]*)\)\s*$")
_EQ_TERM = re.compile(rf"^\s*(?P<key>{_KEY})\s*(?P<op>==|=|!=)\s*(?P<value>{_VALUE})\s*$")
_EXISTS_TERM = re.compile(rf"^\s*(?P<neg>!?)\s*(?P<key>{_KEY})\s*$")


def _split_terms(selector: str) -> list[str]:
    """Split on the commas that are not inside an `in (...)` value list."""
    terms, depth, start = [], 0, 0
    for i, char in enumerate(selector):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            terms.append(selector[start:i])
            start = i + 1
    terms.append(selector[start:])
    return [term for term in terms if term.strip()]


def parse_label_selector(selector: str | None) -> Callable[[dict[str, str]], bool]:
    """`app=x,tier!=db,env in (a,b),release,!canary` -> a predicate over a labels dict."""
    requirements: list[_Requirement] = []
    for term in _split_terms(selector or ""):
        if found := _SET_TERM.match(term):
            values = tuple(v.strip() for v in found["values"].split(",") if v.strip())
            requirements.append(_Requirement(found["key"], found["op"], values))
        elif found := _EQ_TERM.match(term):
            op = "=" if found["op"] in ("=", "==") else "!="
            requirements.append(_Requirement(found["key"], op, (found["value"],)))
        elif found := _EXISTS_TERM.match(term):
            requirements.append(_Requirement(found["key"], "!" if found["neg"] else "exists"))
        else:
            raise SelectorError(f"unable to parse requirement: {term.strip()!r}")
    return lambda labels: all(req.matches(labels or {}) for req in requirements)


def _field(obj: Obj, path: str) -> str | None:
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return str(value).lower() if isinstance(value, bool) else str(value)


def parse_field_selector(selector: str | None) -> Callable[[Obj], bool]:
    """`metadata.name=x,status.phase!=Failed` -> a predicate over an object (equality forms only, as the server)."""
    checks: list[tuple[str, bool, str]] = []
    for term in _split_terms(selector or ""):
        found = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*?)\s*$", term)
        if not found:
            raise SelectorError(f"invalid field selector: {term.strip()!r}")
        checks.append((found[1], found[2] != "!=", found[3]))
    return lambda obj: all((_field(obj, path) == value) == equal for path, equal, value in checks)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: dicts merge key by key, null removes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise SelectorError(f"invalid JSON pointer {path!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _parent(doc: Any, parts: list[str]) -> Any:
    for part in parts[:-1]:
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


def json_patch(target: Obj, operations: list[Obj]) -> Obj:
    """RFC 6902 JSON Patch (add, remove, replace, test); a failing operation raises SelectorError."""
    doc = copy.deepcopy(target)
    for operation in operations:
        op, parts = operation.get("op"), _pointer(operation.get("path", ""))
        try:
            parent, last = _parent(doc, parts), parts[-1]
            if op == "test":
                current = parent[int(last)] if isinstance(parent, list) else parent[last]
                if current != operation.get("value"):
                    raise SelectorError(f"test operation failed at {operation['path']}")
            elif op in ("add", "replace"):
                value = copy.deepcopy(operation.get("value"))
                if isinstance(parent, list):
                    index = len(parent) if last == "-" else int(last)
                    if op == "add":
                        parent.insert(index, value)
                    else:
                        parent[index] = value
                else:
                    if op == "replace" and last not in parent:
                        raise SelectorError(f"replace operation does not apply: {operation['path']} is missing")
                    parent[last] = value
            elif op == "remove":
                if isinstance(parent, list):
                    del parent[int(last)]
                else:
                    del parent[last]
            else:
                raise SelectorError(f"unsupported JSON Patch operation {op!r}")
        except (KeyError, IndexError, ValueError, TypeError) as err:
            raise SelectorError(f"JSON Patch {op} at {operation.get('path')!r} does not apply: {err}") from err
    return doc
