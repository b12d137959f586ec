"""Each schema file is a valid, described draft 2020-12 schema shaped like its ``wire.py`` mirror.

The shape walk compares members, required members and closed objects between a
marshmallow schema and its JSON Schema; whether they give the same verdicts on
documents is ``test_agreement``'s job.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from marshmallow import RAISE, Schema, fields

from exchange_node.protocol import messages, wire
from tests.schemas.engines import BASE_URI, NAMES, REGISTRY, SCHEMAS


def test_one_schema_file_per_wire_schema() -> None:
    assert set(SCHEMAS) == {*wire.SCHEMA_FILES, "common.schema.json"}
    for name, kind in messages.MESSAGE_TYPES.items():
        assert wire.SCHEMA_FILES[f"{name}.schema.json"] is kind.claims_schema


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_schema_file_is_a_valid_2020_12_schema(name: str) -> None:
    schema = SCHEMAS[name]
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == BASE_URI + name
    assert schema["title"]
    assert schema["description"]


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_every_property_is_described(name: str) -> None:
    undescribed = [path for path, sub in _properties(SCHEMAS[name], "") if "description" not in sub]
    assert undescribed == []


def _properties(schema: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(schema, dict):
        for name, sub in schema.get("properties", {}).items():
            yield f"{where}/{name}", sub
        for key, value in schema.items():
            if key not in ("if", "properties"):
                yield from _properties(value, f"{where}/{key}")
        for name, sub in schema.get("properties", {}).items():
            yield from _properties(sub, f"{where}/{name}")
    elif isinstance(schema, list):
        for item in schema:
            yield from _properties(item, where)


@pytest.mark.parametrize("name", NAMES)
def test_members_required_and_closed_objects_match_wire(name: str) -> None:
    resolver = REGISTRY.resolver(BASE_URI + name)
    assert list(_shape_differences(wire.SCHEMA_FILES[name](), SCHEMAS[name], resolver, "")) == []


def _shape_differences(
    schema: Schema, json_schema: dict[str, Any], resolver: Any, where: str
) -> Iterator[str]:
    """Where an object's members, required members or closedness differ between the two."""
    json_schema, resolver = _dereferenced(json_schema, resolver)
    members = json_schema.get("properties", {})
    if set(schema.fields) != set(members):
        yield f"{where or '/'}: members {sorted(schema.fields)} != {sorted(members)}"
    required = {name for name, field in schema.fields.items() if field.required}
    if required != set(json_schema.get("required", [])):
        yield f"{where or '/'}: required {sorted(required)} != {json_schema.get('required')}"
    if (schema.opts.unknown == RAISE) != (
        json_schema.get("additionalProperties") is False
    ):  # closed
        yield f"{where or '/'}: closed in only one of them"
    for name, field in schema.fields.items():
        inner, sub = field, members.get(name, {})
        if isinstance(field, fields.List):
            inner, sub = field.inner, _dereferenced(sub, resolver)[0].get("items", {})
        if isinstance(inner, fields.Nested):
            yield from _shape_differences(inner.schema, sub, resolver, f"{where}/{name}")


def _dereferenced(json_schema: dict[str, Any], resolver: Any) -> tuple[dict[str, Any], Any]:
    while "$ref" in json_schema:
        resolved = resolver.lookup(json_schema["$ref"])
        json_schema, resolver = resolved.contents, resolved.resolver
    return json_schema, resolver
