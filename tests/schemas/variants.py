"""Copies of a JSON document with one member, named by a dotted path, replaced or deleted."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

#: Stands for "delete the member" where a replacement value would go.
DELETE = object()
JsonPath = tuple[str | int, ...]


def variant(claims: Mapping[str, Any], path: str, value: Any = DELETE) -> dict[str, Any]:
    """A deep copy of ``claims`` with the member at dotted ``path`` replaced (or deleted)."""
    return replaced(claims, _steps(path), value)


def _steps(path: str) -> JsonPath:
    return tuple(int(step) if step.isdigit() else step for step in path.split("."))


def replaced(claims: Mapping[str, Any], steps: JsonPath, value: Any = DELETE) -> dict[str, Any]:
    changed: dict[str, Any] = json.loads(json.dumps(claims))  # a copy that shares nothing
    parent: Any = changed
    for step in steps[:-1]:
        parent = parent[step]
    if value is DELETE:
        del parent[steps[-1]]
    else:
        parent[steps[-1]] = value
    return changed
