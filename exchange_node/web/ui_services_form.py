"""The service form of the web app: an HSDS record shown as fields, and fields read back.

The same fields as ``exchange-node service add|edit`` (name, description, languages,
ages, areas, categories, affirming care, contact, one physical and one safe location,
public). :func:`form_values` shows a record as the form's strings, :func:`posted_values`
reads a posted form the same way, and :func:`changes` turns what differs between the
two into :class:`ServiceFields`, so an edit never rewrites members it did not touch
(such as a second location an import brought); :func:`record_version` tells whether
the record changed meanwhile. :func:`field_errors` maps the catalog's JSON Pointers
back to the form's fields. Nothing here touches the database.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from flask_babel import lazy_gettext

from exchange_node.errors import InvalidRequestError
from exchange_node.hsds import AFFIRMING_CODE, service_facets
from exchange_node.services.service_locations import PhysicalLocation, SafeLocation
from exchange_node.services.service_records import ServiceFields, Term

__all__ = [
    "HSDS_STATUSES",
    "changes",
    "field_errors",
    "form_values",
    "posted_values",
    "record_version",
]

HSDS_STATUSES = ("active", "inactive", "temporarily closed", "defunct")
MAX_TEXT = 10_000
MAX_AGE = 200
SIMPLE = (
    "name",
    "description",
    "status",
    "organization",
    "eligibility_description",
    "email",
    "phone",
    "url",
    "assured_date",
)
PLACE = (
    "location_name",
    "address_1",
    "address_2",
    "city",
    "state_province",
    "postal_code",
    "country",
    "latitude",
    "longitude",
)
SAFE = ("safe_location", "safe_phone", "safe_email", "safe_url")
LISTS = ("languages", "areas", "categories")
NUMBERS = ("minimum_age", "maximum_age")
TEXT_FIELDS = SIMPLE + LISTS + NUMBERS + PLACE + SAFE
ADDRESS = PLACE[1:7]
TOO_LONG = "too long"
FLAGS = ("affirming", "public")
#: A member given as "" is removed by the record's setters, numbers included.
_REMOVE: Any = ""
#: Record member (first JSON Pointer segment) -> form field.
_MEMBERS = {
    **{name: name for name in (*SIMPLE, *NUMBERS)},
    "organization_id": "organization",
    "languages": "languages",
    "service_areas": "areas",
    "attributes": "categories",
    "phones": "phone",
}
#: What to say about a refused field (the catalog's own words for anything else).
MESSAGES = {
    "name": lazy_gettext("Give the service a name of 1 to 500 characters."),
    "status": lazy_gettext("Choose a status from the list."),
    "languages": lazy_gettext("Give ISO 639 codes separated by commas, for example: en, ar=Arabic"),
    "categories": lazy_gettext("Give one category per line, as CODE or CODE=Name."),
    "minimum_age": lazy_gettext("Give an age in whole years from 0 to 200."),
    "maximum_age": lazy_gettext("Give an age from 0 to 200, not below the youngest age."),
    "email": lazy_gettext("Give an e-mail address, for example: intake@example.org"),
    "url": lazy_gettext("Give a full web address, starting with https://"),
    "assured_date": lazy_gettext("Give a date as YYYY-MM-DD."),
    "latitude": lazy_gettext("Give both latitude and longitude in decimal degrees, or neither."),
    "longitude": lazy_gettext("Give both latitude and longitude in decimal degrees, or neither."),
    "address_1": lazy_gettext("An address needs a street, city, region, postal code and country."),
    "safe_location": lazy_gettext(
        "A safe location needs a name and a phone, an e-mail address or a web page."
    ),
}


def form_values(record: Mapping[str, Any], public: bool) -> dict[str, Any]:
    """The form's fields for ``record``: strings, and booleans for the checkboxes."""
    values: dict[str, Any] = {name: _text(record.get(name)) for name in SIMPLE}
    values["organization"] = _text(_mapping(record.get("organization")).get("name"))
    values["phone"] = _text(_first(record, "phones").get("number"))
    values["languages"] = ", ".join(
        _term(language.get("code"), language.get("name"))
        for language in _items(record, "languages")
    )
    values["areas"] = "\n".join(_text(area.get("name")) for area in _items(record, "service_areas"))
    values["categories"] = "\n".join(
        _term(term.get("code"), term.get("name"))
        for term in (_mapping(a.get("taxonomy_term")) for a in _items(record, "attributes"))
        if term and _text(term.get("code")).lower() != AFFIRMING_CODE
    )
    for name in NUMBERS:
        values[name] = _number(record.get(name))
    values |= _location_values(record)
    values["affirming"] = service_facets(record).affirming
    values["public"] = public
    return values


def record_version(record: Mapping[str, Any], public: bool) -> str:
    """A fingerprint of what an edit form started from: it changes with any change."""
    shown = json.dumps([record, public], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(shown.encode()).hexdigest()[:32]


def posted_values(form: Mapping[str, str]) -> dict[str, Any]:
    """The posted form as :func:`form_values` shows it (to show again, or to read)."""
    values: dict[str, Any] = {
        name: form.get(name, "").replace("\r\n", "\n").strip() for name in TEXT_FIELDS
    }
    return values | {name: form.get(name) == "yes" for name in FLAGS}


def changes(
    values: Mapping[str, Any], shown: Mapping[str, Any]
) -> tuple[ServiceFields, bool | None]:
    """The record fields where ``values`` differ from ``shown``, and ``public`` if it changed.

    Raises:
        InvalidRequestError: a field too long, or an age or coordinate that is no number.
    """
    problems = {name: TOO_LONG for name in TEXT_FIELDS if len(values[name]) > MAX_TEXT}
    ages = {name: whole_number(values[name], MAX_AGE, name, problems) for name in NUMBERS}
    point = {name: _coordinate(values[name], problems, name) for name in ("latitude", "longitude")}
    if problems:
        raise InvalidRequestError("some fields cannot be used as they are", problems)
    changed = {name for name in (*TEXT_FIELDS, *FLAGS) if values[name] != shown.get(name)}
    given: dict[str, Any] = {name: values[name] for name in SIMPLE if name in changed}
    for name in NUMBERS:
        if name in changed:
            given[name] = _REMOVE if ages[name] is None else ages[name]
    fields = ServiceFields(
        **given,
        languages=_terms(values["languages"].split(",")) if "languages" in changed else None,
        areas=_lines(values["areas"]) if "areas" in changed else None,
        categories=_terms(values["categories"].splitlines()) if "categories" in changed else None,
        affirming=values["affirming"] if "affirming" in changed else None,
        locations=_locations(values, point) if changed & {*PLACE, *SAFE} else None,
    )
    return fields, values["public"] if "public" in changed else None


def field_errors(error: InvalidRequestError) -> dict[str, str]:
    """Form field -> what to fix, from the error's JSON Pointers (``form``: not one field)."""
    errors: dict[str, str] = {}
    for pointer, reasons in error.fields.items():
        name = _field_of(pointer)
        if reasons == [TOO_LONG]:
            message = lazy_gettext("At most %(count)s characters.", count=MAX_TEXT)
        else:
            message = MESSAGES.get("address_1" if name in ADDRESS else name)
        errors.setdefault(name, str(message) if message else _detail(name, error, reasons))
    return errors or {"form": error.detail}


def _detail(name: str, error: InvalidRequestError, reasons: list[str]) -> str:
    """The catalog's own words: its whole message for the form, else the field's reason."""
    return error.detail if name == "form" or not reasons else reasons[0]


def _field_of(pointer: str) -> str:
    segments = pointer.strip("/").split("/")
    if segments[0] in TEXT_FIELDS and len(segments) == 1:
        return segments[0]  # the form's own checks name its fields
    if segments[0] != "service_at_locations":
        return _MEMBERS.get(segments[0], "form")
    if "addresses" in segments:
        part = segments[-1]
        return part if part in ADDRESS else "address_1"
    if "latitude" in segments or "longitude" in segments:
        return "latitude"
    return "safe_location" if "contacts" in segments else "location_name"


def _locations(
    values: Mapping[str, Any], point: Mapping[str, float | None]
) -> tuple[PhysicalLocation | SafeLocation, ...]:
    found: list[PhysicalLocation | SafeLocation] = []
    if any(values[name] for name in PLACE):
        found.append(
            PhysicalLocation(
                name=values["location_name"] or None,
                **{name: values[name] or None for name in ADDRESS},
                latitude=point["latitude"],
                longitude=point["longitude"],
            )
        )
    if any(values[name] for name in SAFE):
        if not values["safe_location"]:
            raise InvalidRequestError(
                "a safe location needs a name", {"safe_location": "a name is needed"}
            )
        found.append(
            SafeLocation(
                name=values["safe_location"],
                phone=values["safe_phone"] or None,
                email=values["safe_email"] or None,
                url=values["safe_url"] or None,
            )
        )
    return tuple(found)


def _location_values(record: Mapping[str, Any]) -> dict[str, str]:
    places = [_mapping(item.get("location")) for item in _items(record, "service_at_locations")]
    place = next((p for p in places if p.get("location_type") != "virtual"), {})
    safe = next((p for p in places if p.get("location_type") == "virtual"), {})
    address = _first(place, "addresses")
    values = {name: _text(address.get(name)) for name in ADDRESS}
    values["location_name"] = _text(place.get("name"))
    values["latitude"], values["longitude"] = (
        _number(place.get(n)) for n in ("latitude", "longitude")
    )
    values["safe_location"] = _text(safe.get("name"))
    values["safe_phone"] = _text(_first(safe, "phones").get("number"))
    values["safe_email"] = _text(_first(safe, "contacts").get("email"))
    values["safe_url"] = _text(safe.get("url"))
    return values


def whole_number(text: str, most: int, name: str, problems: dict[str, str]) -> int | None:
    """``text`` as a whole number from 0 to ``most`` (None when empty); else a problem.

    ASCII digits only (``str.isdigit`` also takes "²" and "٣", which ``int`` refuses or
    reads), and at most 9 of them (``int`` refuses more than 4,300).
    """
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 9 or int(text) > most:
        problems[name] = f"a whole number from 0 to {most}"
        return None
    return int(text)


def _coordinate(text: str, problems: dict[str, str], name: str) -> float | None:
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        problems[name] = "not a number"
        return None


def _terms(parts: list[str]) -> tuple[Term, ...]:
    return tuple(Term.parse(part) for part in parts if part.strip())


def _lines(text: str) -> tuple[str, ...]:
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def _term(code: Any, name: Any) -> str:
    code, name = _text(code), _text(name)
    return code if not name or name == code else f"{code}={name}"


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return ""
    return str(int(value)) if float(value).is_integer() else str(value)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _items(record: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    items = record.get(name)
    return [item for item in items if isinstance(item, Mapping)] if isinstance(items, list) else []


def _first(record: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    items = _items(record, name)
    return items[0] if items else {}
