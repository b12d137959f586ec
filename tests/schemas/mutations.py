"""Hypothesis strategies for random one-member mutations of a valid JSON document.

The kinds of change both schema implementations must judge alike: an unknown member,
a deleted member, a value of another type, another value of the same type near the
patterns and bounds, a duplicated or dropped list item. No tests here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hypothesis import strategies as st

from exchange_node.protocol.intake import INTAKE_FIELDS
from tests.schemas.engines import SCHEMAS
from tests.schemas.variants import JsonPath, replaced

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)
BY_TYPE = {
    "null": st.none(),
    "boolean": st.booleans(),
    "integer": st.integers() | st.sampled_from([0, -1, 1, 2**31, 2**53, 253_402_300_800]),
    "number": st.floats(allow_nan=False, allow_infinity=False),
    "string": st.text(max_size=12),
    "array": st.lists(JSON_VALUES, max_size=3),
    "object": st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=3),
}


def _schema_strings(schema: Any) -> Iterator[str]:
    """Every enum and const string in the schemas: the values most likely to be accepted."""
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key in ("enum", "const"):
                yield from (v for v in (value if key == "enum" else [value]) if isinstance(v, str))
            else:
                yield from _schema_strings(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _schema_strings(item)


#: Strings near the patterns (identifier and base64url characters, separators, a newline),
#: the schemas' own enum values, and a few well-formed values.
NEAR_STRINGS = (
    st.text(alphabet="aZ09._~:-+/= T\nZ", max_size=140)
    | st.sampled_from(sorted(set(_schema_strings(list(SCHEMAS.values())))))
    | st.sampled_from(["", "12:00", "2027-01-01T00:00:00Z", "2027-01-01T00:00:00.1234567Z"])
)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    for python_type, name in ((float, "number"), (str, "string"), (list, "array")):
        if isinstance(value, python_type):
            return name
    return "object"


def _locations(value: Any, path: JsonPath = ()) -> Iterator[tuple[JsonPath, Any]]:
    yield path, value
    if isinstance(value, dict):
        items: Iterator[tuple[Any, Any]] = iter(value.items())
    else:
        items = enumerate(value) if isinstance(value, list) else iter(())
    for key, child in items:
        yield from _locations(child, (*path, key))


def _strings_in(value: Any) -> list[str]:
    return [v for _, v in _locations(value) if isinstance(v, str)]


UNKNOWN_KEYS = st.text(max_size=10) | st.sampled_from(sorted(INTAKE_FIELDS))
OTHER_TYPE = {kind: st.sampled_from(sorted(set(BY_TYPE) - {kind})) for kind in BY_TYPE}


def mutate(data: st.DataObject, claims: dict[str, Any]) -> dict[str, Any]:
    """One random change somewhere in ``claims``: the kinds the JSON Schemas must judge alike.

    Strategies are built once and choices drawn as indices: building strategies per
    draw would cost more than both validators together.
    """
    locations = list(_locations(claims))
    path, target = locations[data.draw(st.integers(0, len(locations) - 1), label="location")]
    kinds = ["add-unknown"] if isinstance(target, dict) else []
    if path:
        kinds += ["delete", "other-type", "same-type"]
    if isinstance(target, list) and target:
        kinds += ["duplicate-item", "drop-item"]
    kind = kinds[data.draw(st.integers(0, len(kinds) - 1), label="mutation")]
    if kind == "add-unknown":
        key = data.draw(UNKNOWN_KEYS, label="key")
        return replaced(claims, (*path, key), data.draw(JSON_VALUES, label="value"))
    if kind == "delete":
        return replaced(claims, path)
    if kind == "other-type":
        other = data.draw(OTHER_TYPE[_json_type(target)], label="type")
        return replaced(claims, path, data.draw(BY_TYPE[other], label="value"))
    if kind == "same-type":
        return replaced(claims, path, _same_type(data, target, claims))
    index = data.draw(st.integers(0, len(target) - 1), label="index")
    if kind == "duplicate-item":
        return replaced(claims, path, [*target, target[index]])
    return replaced(claims, path, target[:index] + target[index + 1 :])


def _same_type(data: st.DataObject, target: Any, claims: dict[str, Any]) -> Any:
    """Another value of ``target``'s type: near the patterns, the bounds, or the document."""
    if isinstance(target, str):
        strings = _strings_in(claims)
        source = data.draw(st.integers(0, 2), label="source")
        if source == 2:
            return strings[data.draw(st.integers(0, len(strings) - 1), label="string")]
        return data.draw(NEAR_STRINGS if source == 0 else BY_TYPE["string"], label="string")
    if isinstance(target, int) and not isinstance(target, bool):
        offset = data.draw(st.integers(-2, 3), label="offset")
        return float(target) if offset == 3 else target + offset
    return data.draw(BY_TYPE[_json_type(target)], label="value")
