"""HSDS 3.1 validity: the vendored schema is the official one, built records validate
against it (checked again with the independent ``jsonschema``), the standard's own
examples are read, and invalid records are refused with the field and the reason.

Import and export through a node's database are in tests/node/test_catalog.py.
"""

from __future__ import annotations

import copy
import json
import uuid
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from exchange_node import hsds
from exchange_node.errors import InvalidRequestError
from exchange_node.services.service_locations import PhysicalLocation, SafeLocation
from exchange_node.services.service_records import (
    MAX_RECORD_BYTES,
    Publisher,
    ServiceFields,
    Term,
    apply_fields,
    check_record,
    organization_id,
    records_in,
)

STANDARD = Path(__file__).resolve().parents[2] / "shared" / "standards" / "hsds-3.1"
NO_STANDARD = "the HSDS 3.1 standard is not in ../shared/standards/hsds-3.1"
PUBLISHER = Publisher("Clinic", "https://clinic.example")


def official_validator() -> jsonschema.protocols.Validator:
    """The vendored schema, read by ``jsonschema`` (not the library the node uses)."""
    text = resources.files(hsds).joinpath(hsds.SCHEMA_FILE).read_text(encoding="utf-8")
    schema = json.loads(text)
    validator = jsonschema.Draft202012Validator  # its format checker knows "uuid"
    return validator(schema, format_checker=validator.FORMAT_CHECKER)


def assert_official(record: Any) -> None:
    errors = sorted(official_validator().iter_errors(record), key=str)
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]


def full_fields() -> ServiceFields:
    return ServiceFields(
        name="Youth sexual health drop-in",
        description="Confidential, affirming sexual health care.",
        status="active",
        organization="",
        languages=(Term("ar", "Arabic"), Term("EN")),
        eligibility_description="People aged 13 to 25.",
        minimum_age=13,
        maximum_age=25,
        areas=("Leeds", "Bradford"),
        categories=(Term("sexual-health", "Sexual health"), Term("youth")),
        affirming=True,
        email="clinic@example.org",
        phone="+44 113 000 0000",
        url="https://clinic.example/drop-in",
        assured_date="2026-12-01",
        locations=(
            PhysicalLocation(
                name="Main clinic",
                address_1="1 Park Row",
                city="Leeds",
                state_province="West Yorkshire",
                postal_code="LS1 5AB",
                country="GB",
                latitude=53.797,
                longitude=-1.548,
            ),
            SafeLocation("Night shelter", phone="+44 113 000 0001", email="safe@example.org"),
        ),
    )


def build(fields: ServiceFields) -> dict[str, Any]:
    base = {"id": str(uuid.uuid4()), "name": "", "status": "active"}
    return check_record(apply_fields(base, fields, PUBLISHER))


@pytest.mark.skipif(not STANDARD.is_dir(), reason=NO_STANDARD)
def test_vendored_schema_is_the_official_one() -> None:
    official = STANDARD / "schema" / "compiled" / "service_with_definitions.json"
    vendored = resources.files(hsds).joinpath(hsds.SCHEMA_FILE).read_bytes()
    assert json.loads(vendored) == json.loads(official.read_bytes())


def test_a_record_built_from_every_simple_field_is_valid_hsds() -> None:
    record = build(full_fields())
    assert_official(record)
    facets = hsds.service_facets(record)
    assert facets.affirming
    assert {"ar", "arabic", "en"} <= facets.languages
    assert {"sexual-health", "sexual health", "youth"} <= facets.taxonomy
    assert (facets.minimum_age, facets.maximum_age) == (13, 25)
    assert facets.points == ((53.797, -1.548),)
    assert record["organization"]["name"] == "Clinic"
    assert record["organization_id"] == organization_id(PUBLISHER, "Clinic")


def test_the_organization_id_is_stable_and_differs_by_name() -> None:
    assert organization_id(PUBLISHER, "Clinic") == organization_id(PUBLISHER, "Clinic")
    assert organization_id(PUBLISHER, "Clinic") == str(
        uuid.uuid5(uuid.NAMESPACE_URL, "https://clinic.example")
    )
    assert organization_id(PUBLISHER, "Other") != organization_id(PUBLISHER, "Clinic")


def test_a_safe_location_has_a_contact_route_and_no_address_or_coordinates() -> None:
    record = build(full_fields())
    safe = record["service_at_locations"][1]["location"]
    assert safe["location_type"] == "virtual"
    assert "addresses" not in safe
    assert "latitude" not in safe
    assert "longitude" not in safe
    assert safe["phones"][0]["number"] == "+44 113 000 0001"
    assert safe["contacts"][0]["email"] == "safe@example.org"
    with pytest.raises(InvalidRequestError, match="needs a contact route") as caught:
        build(ServiceFields(name="Shelter", locations=(SafeLocation("Shelter"),)))
    assert "/service_at_locations/0/location/contacts" in caught.value.fields


def test_an_address_needs_every_part_hsds_requires() -> None:
    place = PhysicalLocation(address_1="1 Park Row", city="Leeds")
    with pytest.raises(InvalidRequestError, match="state_province, postal_code, country") as caught:
        build(ServiceFields(name="Clinic", locations=(place,)))
    assert "/service_at_locations/0/location/addresses/0/country" in caught.value.fields


def test_editing_fields_keeps_the_others_and_removes_with_empty_values() -> None:
    record = build(full_fields())
    changed = check_record(
        apply_fields(record, ServiceFields(email="", affirming=False, minimum_age=16), PUBLISHER)
    )
    assert "email" not in changed
    assert not hsds.service_facets(changed).affirming
    assert changed["minimum_age"] == 16
    assert changed["languages"] == record["languages"]
    assert [a["taxonomy_term"]["code"] for a in changed["attributes"]] == ["sexual-health", "youth"]
    assert_official(changed)


@pytest.mark.skipif(not STANDARD.is_dir(), reason=NO_STANDARD)
@pytest.mark.parametrize("example", ["service_full.json", "service_list.json"])
def test_the_standards_examples_are_read_and_kept_as_they_are(example: str) -> None:
    document = json.loads((STANDARD / "examples" / example).read_text(encoding="utf-8"))
    found = records_in(document, 2000)
    assert found
    for where, record in found:
        assert check_record(record, where) == record
        assert_official(record)


@pytest.mark.parametrize(
    ("change", "pointer", "reason"),
    [
        ({"id": "not-a-uuid"}, "/id", "uuid"),
        ({"status": "open"}, "/status", "is not one of"),
        ({"email": "nobody"}, "/email", "email"),
        ({"name": "   "}, "/name", "1 to 500 characters"),
        ({"name": "x" * 501}, "/name", "1 to 500 characters"),
        ({"assured_date": "2026-02-30"}, "/assured_date", "not a date"),
        ({"minimum_age": 30, "maximum_age": 12}, "/maximum_age", "below"),
        ({"capacities": [{"id": str(uuid.uuid4())}]}, "/capacities/0/unit", "required"),
    ],
)
def test_invalid_records_are_refused_with_the_field_and_the_reason(
    change: dict[str, Any], pointer: str, reason: str
) -> None:
    record = {"id": str(uuid.uuid4()), "name": "Counselling", "status": "active"} | change
    with pytest.raises(InvalidRequestError) as caught:
        check_record(record, "/3")
    assert "/3" + pointer in caught.value.fields
    assert reason in caught.value.detail + " ".join(caught.value.fields["/3" + pointer])


def test_records_that_are_not_objects_or_too_large_are_refused() -> None:
    with pytest.raises(InvalidRequestError, match="is a JSON object"):
        check_record(["not", "a", "record"])
    huge = {"id": str(uuid.uuid4()), "name": "Big", "status": "active"}
    huge["description"] = "x" * MAX_RECORD_BYTES
    with pytest.raises(InvalidRequestError, match=f"the most is {MAX_RECORD_BYTES}"):
        check_record(huge)


def test_an_uppercase_id_is_stored_in_canonical_form() -> None:
    identifier = uuid.uuid4()
    record = {"id": str(identifier).upper(), "name": "Counselling", "status": "active"}
    assert check_record(copy.deepcopy(record))["id"] == str(identifier)


def test_imports_are_one_record_a_list_or_a_page_and_capped() -> None:
    one = {"id": str(uuid.uuid4()), "name": "A", "status": "active"}
    assert records_in(one, 5) == [("", one)]
    assert records_in([one, one], 5) == [("/0", one), ("/1", one)]
    assert records_in({"total_items": 1, "contents": [one]}, 5) == [("/contents/0", one)]
    with pytest.raises(InvalidRequestError, match="the import has 6 services; the most is 5"):
        records_in([one] * 6, 5)
    with pytest.raises(InvalidRequestError, match="an import is an HSDS service"):
        records_in("services", 5)


def test_the_independent_check_can_fail() -> None:
    with pytest.raises(AssertionError, match="uuid"):
        assert_official({"id": "not-a-uuid", "name": "A", "status": "active"})
    with pytest.raises(AssertionError, match="'status' is a required property"):
        assert_official({"id": str(uuid.uuid4()), "name": "A"})
