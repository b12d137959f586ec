"""Validation of claims received from peers against the normative JSON Schemas.

The files in the repository's ``schemas/`` folder (shipped in the package as
``json_schemas/``) are the normative shape of every wire document. Received
claims are checked against those very files, compiled once by ``jsonschema-rs``,
so the implementation cannot drift from the specification (and a referral's
claims validate in microseconds, which keeps the inbox fast).

Error details name the JSON Pointer and the rule broken, never the value:
a refused document may hold personal data, and errors end up in logs.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from importlib import resources
from typing import Any, Final

import jsonschema_rs

from exchange_node.protocol.errors import SchemaError

_RULES: Final = {
    "AdditionalProperties": "unknown member",
    "UnevaluatedProperties": "unknown member",
    "Type": "wrong type",
    "Enum": "not an allowed value",
    "Constant": "not the allowed value",
    "Pattern": "does not have the required format",
    "MaxLength": "too long",
    "MinLength": "too short",
    "Maximum": "too large",
    "Minimum": "too small",
    "MaxItems": "too many items",
    "MinItems": "too few items",
    "UniqueItems": "items must be unique",
    "MinProperties": "too few members",
    "MaxProperties": "too many members",
}


@functools.cache
def _validators() -> dict[str, Any]:
    folder = resources.files("exchange_node.protocol") / "json_schemas"
    documents = {
        entry.name: json.loads(entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".schema.json")
    }
    registry = jsonschema_rs.Registry([(doc["$id"], doc) for doc in documents.values()])
    return {
        name: jsonschema_rs.validator_for(document, registry=registry)
        for name, document in documents.items()
    }


def schema_names() -> list[str]:
    """The schema files available, e.g. ``referral.schema.json``."""
    return sorted(_validators())


def validate_claims(schema_file: str, claims: Mapping[str, Any], what: str) -> None:
    """Check received ``claims`` against ``schemas/<schema_file>``.

    Raises:
        SchemaError: with ``fields`` mapping JSON Pointers to the rules broken.
    """
    validator = _validators()[schema_file]
    try:
        if validator.is_valid(claims):
            return
        problems: dict[str, list[str]] = {}
        for error in validator.iter_errors(claims):
            pointer, rule = _describe(error)
            problems.setdefault(pointer, []).append(rule)
    except (ValueError, TypeError, OverflowError) as e:
        raise SchemaError(f"{what} holds values JSON cannot carry", {"": ["not JSON"]}) from e
    first = next(iter(problems))
    raise SchemaError(f"{what} does not match {schema_file} (first problem at {first!r})", problems)


def _describe(error: Any) -> tuple[str, str]:
    path = [str(part).replace("~", "~0").replace("/", "~1") for part in error.instance_path]
    kind = type(error.kind).__name__
    if kind == "Required":
        path.append(str(error.kind.property))
        return _pointer(path), "required"
    return _pointer(path), _RULES.get(kind, "does not match the schema")


def _pointer(path: list[str]) -> str:
    """RFC 6901 JSON Pointer ("" is the whole document)."""
    return "".join("/" + part for part in path)
