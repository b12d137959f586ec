"""HSDS 3.1 service records from simple fields, and the gate every stored record passes.

For people and the command line, who do not write HSDS JSON, :class:`ServiceFields`
(name, languages, ages, areas, categories, the affirming-care attribute, contact
channels, locations ...) builds or changes a record; locations, safe ones included, are
built by :mod:`exchange_node.services.service_locations`. :func:`check_record` is the
one gate before storage: HSDS 3.1 validity, the protocol's rules for ``id`` and
``name``, a size cap. :func:`records_in` reads an import (one record, a list, or an HSDS
API page). Nothing here touches the database or the clock.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import date
from typing import Any

from exchange_node.errors import InvalidRequestError
from exchange_node.hsds import AFFIRMING_CODE, affirming_attribute, validate_service
from exchange_node.services.service_locations import (
    PhysicalLocation,
    SafeLocation,
    service_at_locations,
)

__all__ = [
    "MAX_IMPORT_BYTES",
    "MAX_NAME_LENGTH",
    "MAX_RECORD_BYTES",
    "Publisher",
    "ServiceFields",
    "Term",
    "apply_fields",
    "check_record",
    "organization_id",
    "parse_import",
    "records_in",
]

#: Largest record, as compact UTF-8 JSON.
MAX_RECORD_BYTES = 65_536
#: The protocol's limit on a service name (SPEC 4.2).
MAX_NAME_LENGTH = 500
#: Largest import file (HSDS JSON).
MAX_IMPORT_BYTES = 4 * 1_048_576
_LANGUAGE_CODE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*")


@dataclass(frozen=True)
class Publisher:
    """The organization a record names by default: this node's name, and its URL for the id."""

    name: str
    url: str


@dataclass(frozen=True)
class Term:
    """A code with an optional display name: a language (``ar``, Arabic) or a category."""

    code: str
    name: str | None = None

    @classmethod
    def parse(cls, text: str) -> Term:
        """``CODE`` or ``CODE=Name``."""
        code, _, name = text.partition("=")
        return cls(code.strip(), name.strip() or None)


@dataclass(frozen=True)
class ServiceFields:
    """Members to set; ``None`` leaves a member as it is, ``""`` or ``()`` removes it."""

    name: str | None = None
    description: str | None = None
    status: str | None = None
    organization: str | None = None
    languages: tuple[Term, ...] | None = None
    eligibility_description: str | None = None
    minimum_age: float | None = None
    maximum_age: float | None = None
    areas: tuple[str, ...] | None = None
    categories: tuple[Term, ...] | None = None
    affirming: bool | None = None
    email: str | None = None
    phone: str | None = None
    url: str | None = None
    assured_date: str | None = None
    locations: tuple[PhysicalLocation | SafeLocation, ...] | None = None


def organization_id(publisher: Publisher, name: str) -> str:
    """A stable id: from the node's URL, and the name too when it is not the node's own."""
    source = publisher.url if name == publisher.name else f"{publisher.url}#organization={name}"
    return str(uuid.uuid5(uuid.NAMESPACE_URL, source))


def apply_fields(
    record: Mapping[str, Any], changes: ServiceFields, publisher: Publisher
) -> dict[str, Any]:
    """A copy of ``record`` with the given fields set (the result is not yet checked).

    Raises:
        InvalidRequestError: a language code, address or contact route that cannot be.
    """
    result = copy.deepcopy(dict(record))
    for field in fields(changes):
        value = getattr(changes, field.name)
        if value is not None:
            _SETTERS[field.name](result, value, publisher)
    return result


def check_record(record: Any, where: str = "") -> dict[str, Any]:
    """The record as stored (its id in canonical lower case), if it may be stored.

    Raises:
        InvalidRequestError: not an object, too large, not valid HSDS 3.1, a name the
            protocol refuses, or an ``assured_date`` that is no real date.
    """
    if not isinstance(record, dict):
        raise InvalidRequestError(
            f"{where or '/'}: an HSDS service record is a JSON object", {where: "not an object"}
        )
    size = len(json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_RECORD_BYTES:
        raise InvalidRequestError(
            f"{where or '/'}: the record has {size} bytes; the most is {MAX_RECORD_BYTES}",
            {where: f"larger than {MAX_RECORD_BYTES} bytes"},
        )
    validate_service(record, where=where)
    name = record["name"].strip()
    if not 1 <= len(name) <= MAX_NAME_LENGTH:
        raise InvalidRequestError(
            f"{where}/name: a service name needs 1 to {MAX_NAME_LENGTH} characters",
            {f"{where}/name": "length"},
        )
    minimum, maximum = record.get("minimum_age"), record.get("maximum_age")
    if minimum is not None and maximum is not None and minimum > maximum:
        raise InvalidRequestError(
            f"{where}/maximum_age: the maximum age {maximum} is below the minimum {minimum}",
            {f"{where}/maximum_age": "below minimum_age"},
        )
    assured = record.get("assured_date")
    if isinstance(assured, str) and not _is_date(assured):
        raise InvalidRequestError(
            f"{where}/assured_date: {assured[:40]!r} is not a date (YYYY-MM-DD)",
            {f"{where}/assured_date": "not a date"},
        )
    return {**record, "id": str(uuid.UUID(record["id"])), "name": name}


def parse_import(data: bytes) -> Any:
    """The JSON of an import file, refused beyond :data:`MAX_IMPORT_BYTES`.

    Raises:
        InvalidRequestError: too large, or not UTF-8 JSON.
    """
    if len(data) > MAX_IMPORT_BYTES:
        raise InvalidRequestError(
            f"an import has at most {MAX_IMPORT_BYTES} bytes", {"": "too large"}
        )
    try:
        return json.loads(data)
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
        raise InvalidRequestError(f"not JSON: {e}", {"": "not JSON"}) from e


def records_in(document: Any, max_records: int) -> list[tuple[str, Any]]:
    """The records of an import, each with its JSON Pointer prefix.

    ``document`` is one HSDS service, a list of them, or an HSDS API page (``contents``).

    Raises:
        InvalidRequestError: none of these shapes, or more than ``max_records`` records.
    """
    if isinstance(document, dict) and isinstance(document.get("contents"), list):
        found = [(f"/contents/{i}", item) for i, item in enumerate(document["contents"])]
    elif isinstance(document, list):
        found = [(f"/{i}", item) for i, item in enumerate(document)]
    elif isinstance(document, dict):
        found = [("", document)]
    else:
        raise InvalidRequestError(
            "an import is an HSDS service, a list of services, or a page with 'contents'",
            {"": "not an object or a list"},
        )
    if len(found) > max_records:
        raise InvalidRequestError(
            f"the import has {len(found)} services; the most is {max_records}",
            {"": f"more than {max_records} services"},
        )
    return found


def _is_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return len(value) == 10


def _new_id() -> str:
    return str(uuid.uuid4())


def _member(name: str) -> Callable[[dict[str, Any], Any, Publisher], None]:
    """A setter of a plain member: ``""`` removes it."""

    def set_member(record: dict[str, Any], value: Any, _: Publisher) -> None:
        if isinstance(value, str):
            value = value.strip()
        if value == "":
            record.pop(name, None)
        else:
            record[name] = value

    return set_member


def _set_organization(record: dict[str, Any], name: str, publisher: Publisher) -> None:
    name = name.strip() or publisher.name
    identifier = organization_id(publisher, name)
    record["organization_id"] = identifier
    record["organization"] = {"id": identifier, "name": name, "description": name}


def _set_languages(record: dict[str, Any], terms: tuple[Term, ...], _: Publisher) -> None:
    for i, term in enumerate(terms):
        if not _LANGUAGE_CODE.fullmatch(term.code):
            raise InvalidRequestError(
                f"language {term.code[:40]!r} is not an ISO 639 code (such as 'en' or 'ar')",
                {f"/languages/{i}/code": "not an ISO 639 code"},
            )
    _replace_list(
        record,
        "languages",
        [{"id": _new_id(), "code": t.code.lower(), **_named(t.name)} for t in terms],
    )


def _set_areas(record: dict[str, Any], names: tuple[str, ...], _: Publisher) -> None:
    areas = [{"id": _new_id(), "name": name.strip()} for name in names if name.strip()]
    _replace_list(record, "service_areas", areas)


def _set_categories(record: dict[str, Any], terms: tuple[Term, ...], _: Publisher) -> None:
    kept = [a for a in record.get("attributes", []) if _is_affirming(a)]
    added = [_category_attribute(term) for term in terms if term.code]
    _replace_list(record, "attributes", kept + added)


def _set_affirming(record: dict[str, Any], affirming: bool, _: Publisher) -> None:
    others = [a for a in record.get("attributes", []) if not _is_affirming(a)]
    _replace_list(
        record, "attributes", others + ([affirming_attribute(_new_id())] if affirming else [])
    )


def _set_phone(record: dict[str, Any], number: str, _: Publisher) -> None:
    _replace_list(
        record, "phones", [{"id": _new_id(), "number": number.strip()}] if number.strip() else []
    )


def _category_attribute(term: Term) -> dict[str, Any]:
    name = term.name or term.code
    term_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:exchange-node:category:{term.code.lower()}"))
    return {
        "id": _new_id(),
        "taxonomy_term_id": term_id,
        "taxonomy_term": {"id": term_id, "code": term.code, "name": name, "description": name},
        "label": name,
    }


def _is_affirming(attribute: Any) -> bool:
    term = attribute.get("taxonomy_term") if isinstance(attribute, dict) else None
    return isinstance(term, dict) and str(term.get("code")).lower() == AFFIRMING_CODE


def _named(name: str | None) -> dict[str, str]:
    return {"name": name} if name else {}


def _replace_list(record: dict[str, Any], name: str, items: list[Any]) -> None:
    if items:
        record[name] = items
    else:
        record.pop(name, None)


def _set_locations(
    record: dict[str, Any], locations: tuple[PhysicalLocation | SafeLocation, ...], _: Publisher
) -> None:
    _replace_list(record, "service_at_locations", service_at_locations(locations))


_SETTERS: dict[str, Callable[[dict[str, Any], Any, Publisher], None]] = {
    "name": _member("name"),
    "description": _member("description"),
    "status": _member("status"),
    "organization": _set_organization,
    "languages": _set_languages,
    "eligibility_description": _member("eligibility_description"),
    "minimum_age": _member("minimum_age"),
    "maximum_age": _member("maximum_age"),
    "areas": _set_areas,
    "categories": _set_categories,
    "affirming": _set_affirming,
    "email": _member("email"),
    "phone": _set_phone,
    "url": _member("url"),
    "assured_date": _member("assured_date"),
    "locations": _set_locations,
}
