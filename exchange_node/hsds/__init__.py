"""Open Referral HSDS 3.1 service records: validation against the official schema, and facets.

Every record this node stores, exports or publishes is checked against the
official compiled ``service`` schema (vendored beside this module, formats
included), so what other Open Referral tools read from us is valid HSDS.
:func:`service_facets` reads what search filters on (languages, taxonomy terms,
ages, areas, points, the affirming-care attribute) out of a record; it never
fails on a peer's odd but valid record. Nothing here does I/O besides loading the schema.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import jsonschema_rs

from exchange_node.errors import InvalidRequestError

HSDS_VERSION = "3.1"
SCHEMA_FILE = "service_with_definitions.json"

#: The taxonomy of this project's own attributes, and the affirming-care term in it.
EXCHANGE_TAXONOMY = "exchange-node"
AFFIRMING_CODE = "affirming-care"
AFFIRMING_TERM = {
    "id": "5d3a7c1e-0b8f-5d0e-9a34-6f1f0c2b7a11",
    "code": AFFIRMING_CODE,
    "name": "Affirming care",
    "description": "Staff are trained in and committed to LGBTQ+ affirming care.",
    "taxonomy": EXCHANGE_TAXONOMY,
}
_FALSE_VALUES = frozenset({"false", "no", "0", "off"})


@cache
def _validator() -> Any:
    text = resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    return jsonschema_rs.validator_for(json.loads(text), validate_formats=True)


def schema_problems(record: Any) -> dict[str, list[str]]:
    """What makes ``record`` invalid HSDS 3.1: JSON Pointer -> reasons (empty if valid)."""
    validator = _validator()
    if validator.is_valid(record):
        return {}
    problems: dict[str, list[str]] = {}
    for error in validator.iter_errors(record):
        path = [str(part) for part in error.instance_path]
        reason = str(error.message)[:300]
        if type(error.kind).__name__ == "Required":  # point at the missing member itself
            path.append(str(error.kind.property))
            reason = "required"
        pointer = "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in path)
        problems.setdefault(pointer, []).append(reason)
    return problems


def validate_service(record: Any, *, where: str = "") -> None:
    """Refuse a record that is not a valid HSDS 3.1 service, naming each field and reason.

    ``where`` prefixes the pointers (``/3`` for the fourth record of an import).

    Raises:
        InvalidRequestError: with ``fields`` mapping JSON Pointers to reasons.
    """
    problems = schema_problems(record)
    if problems:
        first = next(iter(problems))
        raise InvalidRequestError(
            f"not a valid HSDS {HSDS_VERSION} service: {where + first or '/'}: "
            f"{problems[first][0]}",
            {where + pointer: reasons for pointer, reasons in problems.items()},
        )


@dataclass(frozen=True)
class ServiceFacets:
    """What search filters and ranks on, read from one HSDS service record."""

    organization_name: str
    description: str
    languages: frozenset[str]
    taxonomy: frozenset[str]
    affirming: bool
    minimum_age: int | None
    maximum_age: int | None
    area_text: str
    points: tuple[tuple[float, float], ...]
    search_text: str


def service_facets(record: Mapping[str, Any]) -> ServiceFacets:
    """Facets of a record; absent or odd members give empty facets, never an error."""
    organization = _mapping(record.get("organization"))
    languages = {
        value.strip().lower()
        for language in _items(record, "languages")
        for value in (_text(language.get("code")), _text(language.get("name")))
        if value.strip()
    }
    terms = [_mapping(attribute.get("taxonomy_term")) for attribute in _items(record, "attributes")]
    taxonomy = {
        value.strip().lower()
        for term in terms
        for value in (_text(term.get("code")), _text(term.get("name")))
        if value.strip()
    }
    names = [_text(term.get("name")) for term in terms]
    return ServiceFacets(
        organization_name=_text(organization.get("name"))[:500],
        description=_text(record.get("description")),
        languages=frozenset(value[:255] for value in languages),
        taxonomy=frozenset(value[:255] for value in taxonomy),
        affirming=_is_affirming(record),
        minimum_age=_age(record.get("minimum_age"), math.floor),
        maximum_age=_age(record.get("maximum_age"), math.ceil),
        area_text=" ".join(_area_texts(record)),
        points=tuple(_points(record)),
        search_text=" ".join(
            part
            for part in (
                _text(record.get("alternate_name")),
                _text(record.get("description")),
                _text(record.get("eligibility_description")),
                _text(organization.get("name")),
                *names,
                *(_text(language.get("name")) for language in _items(record, "languages")),
            )
            if part
        ),
    )


def affirming_attribute(attribute_id: str) -> dict[str, Any]:
    """The HSDS attribute that marks a service as offering affirming care."""
    return {
        "id": attribute_id,
        "taxonomy_term_id": AFFIRMING_TERM["id"],
        "taxonomy_term": dict(AFFIRMING_TERM),
        "value": "true",
        "label": AFFIRMING_TERM["name"],
    }


def _is_affirming(record: Mapping[str, Any]) -> bool:
    for attribute in _items(record, "attributes"):
        term = _mapping(attribute.get("taxonomy_term"))
        if _text(term.get("code")).lower() == AFFIRMING_CODE:
            return _text(attribute.get("value")).strip().lower() not in _FALSE_VALUES
    return False


def _area_texts(record: Mapping[str, Any]) -> Iterator[str]:
    areas = list(_items(record, "service_areas"))
    for service_at_location in _items(record, "service_at_locations"):
        areas.extend(_items(service_at_location, "service_areas"))
        location = _mapping(service_at_location.get("location"))
        for address in _items(location, "addresses"):
            for name in ("city", "locality", "region", "state_province", "postal_code"):
                if _text(address.get(name)):
                    yield _text(address.get(name))
    for area in areas:
        for name in ("name", "description"):
            if _text(area.get(name)):
                yield _text(area.get(name))


def _points(record: Mapping[str, Any]) -> Iterator[tuple[float, float]]:
    for service_at_location in _items(record, "service_at_locations"):
        location = _mapping(service_at_location.get("location"))
        latitude, longitude = _number(location.get("latitude")), _number(location.get("longitude"))
        if (
            latitude is not None
            and longitude is not None
            and -90 <= latitude <= 90
            and -180 <= longitude <= 180
        ):
            yield latitude, longitude


def _age(value: Any, rounding: Any) -> int | None:
    if not _is_number(value) or not 0 <= value <= 200:
        return None
    return int(rounding(value))


def _number(value: Any) -> float | None:
    return float(value) if _is_number(value) else None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _items(container: Mapping[str, Any], name: str) -> Iterator[Mapping[str, Any]]:
    value = container.get(name)
    if isinstance(value, list):
        yield from (item for item in value if isinstance(item, Mapping))


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


__all__ = [
    "AFFIRMING_CODE",
    "AFFIRMING_TERM",
    "EXCHANGE_TAXONOMY",
    "HSDS_VERSION",
    "ServiceFacets",
    "affirming_attribute",
    "schema_problems",
    "service_facets",
    "validate_service",
]
