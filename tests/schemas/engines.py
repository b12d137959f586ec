"""The schema files of ``schemas/`` loaded offline, and the verdicts of every engine on claims.

Loads each ``*.schema.json`` into one registry and compiles it with ``jsonschema`` (with
ECMA-262 pattern anchors) and, when installed, ``jsonschema-rs``; ``wire.py``'s marshmallow
schemas are the other side. Holds no examples and no tests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators
from referencing import Registry, Resource

try:
    import jsonschema_rs
except ImportError:  # pragma: no cover - the Rust engine is a second opinion, not a need
    jsonschema_rs = None

from exchange_node.protocol import wire
from exchange_node.protocol.errors import SchemaError

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = ROOT / "schemas"
BASE_URI = "https://exchange-node.example/schemas/"
NAMES = sorted(wire.SCHEMA_FILES)


def _load_schemas() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text()) for path in SCHEMA_DIR.glob("*.schema.json")}


def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    """``pattern`` as JSON Schema defines it (ECMA-262), where ``$`` is the very end.

    ``jsonschema`` runs patterns through Python's ``re``, whose ``$`` also matches
    before a final newline: it would accept ``"r-1\\n"`` as an identifier, which
    ``wire.py``, JavaScript, Go and Rust validators all refuse.
    """
    python_pattern = pattern[:-1] + r"\Z" if pattern.endswith("$") else pattern
    if validator.is_type(instance, "string") and not re.search(python_pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


SCHEMAS = _load_schemas()
REGISTRY: Registry[Any] = Registry().with_resources(
    (schema["$id"], Resource.from_contents(schema)) for schema in SCHEMAS.values()
)
EcmaValidator = validators.extend(Draft202012Validator, {"pattern": _ecma_pattern})
VALIDATORS = {name: EcmaValidator(SCHEMAS[name], registry=REGISTRY) for name in NAMES}


def _rust_validators() -> dict[str, Any]:
    """The same schemas compiled by ``jsonschema-rs``, which the node uses on received claims."""
    if jsonschema_rs is None:
        return {}
    registry = jsonschema_rs.Registry([(schema["$id"], schema) for schema in SCHEMAS.values()])
    return {name: jsonschema_rs.validator_for(SCHEMAS[name], registry=registry) for name in NAMES}


RUST_VALIDATORS = _rust_validators()


def json_schema_errors(name: str, claims: Any) -> list[str]:
    return [error.message for error in VALIDATORS[name].iter_errors(claims)]


def marshmallow_errors(name: str, claims: Any) -> dict[str, Any]:
    try:
        wire.load_claims(wire.SCHEMA_FILES[name], claims, "x")
    except SchemaError as e:
        return e.fields or {"": [str(e)]}
    return {}


def verdicts(name: str, claims: Any) -> dict[str, bool]:
    """Whether each implementation accepts ``claims``."""
    accepted = {
        "jsonschema": VALIDATORS[name].is_valid(claims),
        "marshmallow": not marshmallow_errors(name, claims),
    }
    if RUST_VALIDATORS:
        accepted["jsonschema-rs"] = RUST_VALIDATORS[name].is_valid(claims)
    return accepted


def explain(name: str, claims: Any) -> str:
    return (
        f"jsonschema: {json_schema_errors(name, claims)}, wire: {marshmallow_errors(name, claims)}"
    )


def stem(name: str) -> str:
    """A schema file's name without ``.schema.json``, to prefix test ids."""
    return name.removesuffix(".schema.json")
