"""This node's services: storage, versions, capacity, import and export (services.catalog)."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import func, select

from exchange_node.db.models import CapacityPublication, Service
from exchange_node.errors import ConflictError, InvalidRequestError, NotFoundError
from exchange_node.protocol.limits import Limits
from exchange_node.services import catalog, service_capacity
from exchange_node.services.service_capacity import KEEP, CapacityChange, CapacityNumbers
from exchange_node.services.service_records import ServiceFields, Term
from tests.node.conftest import hsds_service
from tests.test_hsds import STANDARD, assert_official, full_fields

if TYPE_CHECKING:
    from tests.node.conftest import Federation, TestClock, TestNode


@pytest.fixture
def node(federation: Federation) -> TestNode:
    return federation.add("clinic")


def version(node: TestNode) -> int:
    with node.node.database.session() as session:
        return session.get_one(CapacityPublication, 1).version


def add(node: TestNode, record: Any = None, **options: Any) -> str:
    with node.node.database.session() as session:
        added = catalog.add_service(node.node, session, record or hsds_service("Food"), **options)
        return added.id


def set_capacity(node: TestNode, service_id: str, **change: Any) -> Service:
    with node.node.database.session() as session:
        return service_capacity.set_capacity(
            session, service_id, CapacityChange(**change), node.node.now()
        )


def test_every_change_raises_the_version_once(node: TestNode) -> None:
    start = version(node)
    service_id = add(node)
    assert version(node) == start + 1
    with node.node.database.session() as session:
        catalog.edit_service(node.node, session, service_id, ServiceFields(description="Meals"))
    assert version(node) == start + 2
    set_capacity(node, service_id, status="capacity", accepting_referrals=True)
    assert version(node) == start + 3
    with node.node.database.session() as session:
        catalog.import_services(node.node, session, [hsds_service("A"), hsds_service("B")])
    assert version(node) == start + 4
    with node.node.database.session() as session:
        catalog.remove_service(session, service_id, node.node.now())
    assert version(node) == start + 5


def test_a_new_service_has_no_capacity_until_it_is_set(node: TestNode, clock: TestClock) -> None:
    with node.node.database.session() as session:
        added = catalog.add_service_from_fields(
            node.node, session, ServiceFields(name=" Food bank ", languages=(Term("ar"),))
        )
        shown = catalog.describe_service(added)
    assert shown["capacity"] == {
        "status": "no-capacity",
        "accepting_referrals": False,
        "wait_days": None,
        "notes": None,
        "intake_fields": [],
        "verified_at": None,
        "updated_at": "2027-01-01T00:00:00Z",
    }
    assert shown["public"] is False
    assert shown["service"]["name"] == "Food bank"
    assert shown["service"]["status"] == "active"
    assert shown["service"]["organization"]["name"] == "Clinic"
    assert_official(shown["service"])


def test_capacity_is_set_and_verified_apart_from_updated(node: TestNode, clock: TestClock) -> None:
    service_id = add(node)
    clock.advance(60)
    changed = set_capacity(
        node,
        service_id,
        status="waitlist",
        accepting_referrals=True,
        wait_days=14,
        notes=" Call first ",
        intake_fields=("given_name", "phone", "phone"),
        verified=True,
    )
    assert (changed.capacity_status, changed.accepting_referrals) == ("waitlist", True)
    assert (changed.wait_days, changed.notes) == (14, "Call first")
    assert changed.intake_fields == ["given_name", "phone"]
    assert changed.verified_at == changed.capacity_updated_at == clock.now
    clock.advance(60)
    before = version(node)
    with node.node.database.session() as session:
        verified = service_capacity.verify_capacity(session, service_id, node.node.now())
        assert verified.verified_at == clock.now
        assert verified.capacity_updated_at == clock.now - 60
    assert version(node) == before + 1
    clock.advance(60)
    unchanged = set_capacity(node, service_id, status="waitlist")
    assert unchanged.capacity_updated_at == clock.now - 120
    assert version(node) == before + 1  # nothing changed, nothing verified: same document
    kept = set_capacity(node, service_id, status="capacity", notes=None, wait_days=KEEP)
    assert (kept.wait_days, kept.notes, kept.verified_at) == (14, None, clock.now - 60)


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        ({"status": "full"}, "/status"),
        ({"wait_days": 3651}, "/wait_days"),
        ({"notes": "x" * 1001}, "/notes"),
        ({"intake_fields": ("given_name", "shoe_size")}, "/intake_fields/1"),
        ({"numbers": (CapacityNumbers("", 1),)}, "/capacities/0"),
        ({"numbers": (CapacityNumbers("beds", -1),)}, "/capacities/0"),
    ],
)
def test_bad_capacity_is_refused(node: TestNode, change: dict[str, Any], pointer: str) -> None:
    service_id = add(node)
    with pytest.raises(InvalidRequestError) as caught:
        set_capacity(node, service_id, **change)
    assert pointer in caught.value.fields


def test_hsds_capacity_numbers_are_matched_by_unit(node: TestNode, clock: TestClock) -> None:
    service_id = add(node)
    set_capacity(node, service_id, numbers=(CapacityNumbers("Beds", 3, 10),))
    clock.advance(60)
    changed = set_capacity(
        node, service_id, numbers=(CapacityNumbers("beds", 2), CapacityNumbers("Cots", 1, 2))
    )
    beds, cots = changed.record["capacities"]
    assert (beds["unit"]["name"], beds["available"], beds["updated"]) == (
        "Beds",
        2,
        "2027-01-01T00:01:00Z",
    )
    assert "maximum" not in beds
    assert (cots["available"], cots["maximum"]) == (1, 2)
    assert changed.capacity_updated_at == clock.now
    assert_official(changed.record)


def test_unknown_services_and_taken_ids(node: TestNode) -> None:
    record = hsds_service("Food")
    add(node, record)
    with pytest.raises(ConflictError):
        add(node, dict(record))
    with node.node.database.session() as session, pytest.raises(NotFoundError):
        catalog.get_service(session, str(uuid.uuid4()))
    with pytest.raises(NotFoundError):
        set_capacity(node, "nope", status="capacity")


def test_find_by_id_or_unambiguous_name(node: TestNode) -> None:
    first = add(node, hsds_service("Food"))
    add(node, hsds_service("Legal advice"))
    add(node, hsds_service("Legal advice"))
    with node.node.database.session() as session:
        assert catalog.find_service(session, first.upper()).id == first
        assert catalog.find_service(session, "food").id == first
        with pytest.raises(InvalidRequestError, match="2 services have this name"):
            catalog.find_service(session, "Legal advice")


def test_replacing_a_record_keeps_its_id_and_capacities(node: TestNode) -> None:
    service_id = add(node)
    set_capacity(node, service_id, numbers=(CapacityNumbers("beds", 3),))
    with node.node.database.session() as session:
        replaced = catalog.replace_service(
            node.node, session, service_id, {"name": "Meals", "status": "inactive"}, public=True
        )
        assert (replaced.name, replaced.public) == ("Meals", True)
        assert replaced.record["capacities"][0]["available"] == 3
        with pytest.raises(InvalidRequestError, match="must be the service's id") as caught:
            catalog.replace_service(node.node, session, service_id, hsds_service("Other"))
        assert "/id" in caught.value.fields


def test_an_import_is_all_or_nothing_with_a_pointer_per_record(node: TestNode) -> None:
    existing = hsds_service("Food")
    add(node, existing)
    before = version(node)
    bad = [
        hsds_service("Fine"),
        {"name": "No status"},
        {**existing, "name": "Food, updated"},
        hsds_service("Bad email", email="nobody"),
        {**existing},
    ]
    with node.node.database.session() as session:
        with pytest.raises(InvalidRequestError, match="nothing was imported") as caught:
            catalog.import_services(node.node, session, bad)
        assert {"/1/status", "/3/email", "/4/id"} <= set(caught.value.fields)
    assert version(node) == before
    with node.node.database.session() as session:
        assert session.scalar(select(func.count()).select_from(Service)) == 1
        result = catalog.import_services(
            node.node, session, {"contents": [{"name": "New", "status": "active"}, bad[2]]}
        )
    assert result.updated == (existing["id"],)
    assert len(result.added) == 1
    uuid.UUID(result.added[0])  # an id was made
    with node.node.database.session() as session:
        assert catalog.get_service(session, existing["id"]).name == "Food, updated"


def test_the_number_of_services_is_capped(node: TestNode) -> None:
    node.node.settings = replace(node.node.settings, limits=Limits(max_services=2))
    small = node
    add(small)
    with small.node.database.session() as session:
        with pytest.raises(InvalidRequestError, match="the import has 3 services; the most is 2"):
            catalog.import_services(small.node, session, [hsds_service(n) for n in "ABC"])
        with pytest.raises(InvalidRequestError, match="has 1 services and a capacity document"):
            catalog.import_services(small.node, session, [hsds_service("A"), hsds_service("B")])


@pytest.mark.skipif(not STANDARD.is_dir(), reason="the HSDS 3.1 standard is not in ../shared")
def test_the_standards_examples_import_and_export_unchanged(node: TestNode) -> None:
    examples = STANDARD / "examples"
    full = json.loads((examples / "service_full.json").read_text(encoding="utf-8"))
    page = json.loads((examples / "service_list.json").read_text(encoding="utf-8"))
    with node.node.database.session() as session:
        assert catalog.import_services(node.node, session, full).added == (full["id"],)
        assert catalog.import_services(node.node, session, page).updated == (full["id"],)
    set_capacity(node, full["id"], status="capacity", numbers=(CapacityNumbers("Beds", 4),))
    with node.node.database.session() as session:
        exported = catalog.export_services(session)
    assert [record["id"] for record in exported] == [full["id"]]
    assert exported[0] == {**page["contents"][0], "capacities": exported[0]["capacities"]}
    assert exported[0]["capacities"][-1]["available"] == 4
    for record in exported:
        assert_official(record)


def test_built_and_exported_records_are_valid_hsds(node: TestNode) -> None:
    with node.node.database.session() as session:
        added = catalog.add_service_from_fields(node.node, session, full_fields(), public=True)
        service_id = added.id
    set_capacity(node, service_id, numbers=(CapacityNumbers("appointments", 5, 20),))
    with node.node.database.session() as session:
        exported = catalog.export_services(session)
    assert len(exported) == 1
    assert_official(exported[0])
    assert exported[0]["capacities"][0]["unit"]["name"] == "appointments"
