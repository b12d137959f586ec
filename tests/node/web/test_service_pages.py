"""This node's services in the web app: add, edit, remove, the one-screen capacity update."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select

from exchange_node.db.models import AuditEntry, Service, User
from exchange_node.protocol.capacity import CapacityDocument, verify_capacity_document
from exchange_node.protocol.messages import format_timestamp
from exchange_node.services import catalog, publication
from tests.node.web.conftest import PageClient

if TYPE_CHECKING:
    from tests.node.conftest import TestClock, TestNode

LEGAL_CLINIC = {
    "name": "Legal clinic",
    "description": "Free advice on housing and immigration law",
    "status": "active",
    "languages": "en, ar=Arabic",
    "minimum_age": "16",
    "areas": "Leeds\nBradford",
    "categories": "legal=Legal advice",
    "affirming": "yes",
    "email": "intake@legal.example",
    "location_name": "Town hall",
    "address_1": "1 High Street",
    "city": "Leeds",
    "state_province": "West Yorkshire",
    "postal_code": "LS1 1AA",
    "country": "GB",
    "latitude": "53.8",
    "longitude": "-1.55",
    "public": "yes",
}
CAPACITY = {
    "status": "capacity",
    "accepting": "yes",
    "open_places": "3",
    "unit": "appointments",
    "wait_days": "2",
    "notes": "Call before referring on Fridays",
    "intake_fields": ["given_name", "phone"],
}


def services(test_node: TestNode) -> list[Service]:
    with test_node.node.database.session() as session:
        return catalog.list_services(session)


def document(test_node: TestNode) -> CapacityDocument:
    """The capacity document the node serves now, verified as a peer would."""
    node = test_node.node
    with node.database.session() as session:
        token = publication.current_document(node, session).token
    keys = [test_node.signing_key.public()]
    return verify_capacity_document(token, issuer=test_node.url, issuer_keys=keys, now=node.now())


def add(client: PageClient, **changes: Any) -> str:
    """Add the legal clinic through the form; its id."""
    response = client.post("/services/new", LEGAL_CLINIC | changes)
    assert response.status_code == 303, response.get_data(as_text=True)
    service_id = response.headers["Location"].split("/")[-2]
    assert response.headers["Location"] == f"/services/{service_id}/capacity"
    return service_id


def test_staff_add_and_edit_a_service_without_rewriting_what_they_left(
    staff: PageClient, community: TestNode
) -> None:
    assert "Add a service" in staff.get("/services").get_data(as_text=True)
    service_id = add(staff)
    (added,) = services(community)
    assert (added.name, added.public) == ("Legal clinic", True)
    assert [language["code"] for language in added.record["languages"]] == ["en", "ar"]
    assert added.record["minimum_age"] == 16
    (place,) = added.record["service_at_locations"]
    assert place["location"]["addresses"][0]["city"] == "Leeds"
    assert place["location"]["latitude"] == 53.8

    form = staff.get(f"/services/{service_id}/edit").get_data(as_text=True)
    assert 'value="en, ar=Arabic"' in form
    assert "Leeds\nBradford</textarea>" in form
    assert 'value="LS1 1AA"' in form
    version = form.split('name="version" value="')[1].split('"')[0]
    edited = LEGAL_CLINIC | {
        "description": "Free legal advice",
        "areas": "Leeds\r\nBradford",  # as a browser sends a textarea
        "version": version,
    }
    assert staff.post(f"/services/{service_id}/edit", edited).status_code == 303
    (after,) = services(community)
    assert after.record["description"] == "Free legal advice"
    assert after.record["languages"] == added.record["languages"]  # untouched, same ids
    assert after.record["service_areas"] == added.record["service_areas"]
    assert after.record["service_at_locations"] == added.record["service_at_locations"]
    with community.node.database.session() as session:
        user_id = session.scalars(select(User.id)).one()
        actions = session.execute(
            select(AuditEntry.action, AuditEntry.actor).where(AuditEntry.subject == service_id)
        ).all()
    assert actions == [("service.added", f"user:{user_id}"), ("service.changed", f"user:{user_id}")]

    stale = staff.post(f"/services/{service_id}/edit", edited | {"name": "Renamed"})
    assert stale.status_code == 409  # the form started from an older version
    assert 'value="Renamed"' in stale.get_data(as_text=True)
    assert services(community)[0].name == "Legal clinic"


def test_bad_service_input_is_kept_with_the_errors(staff: PageClient, community: TestNode) -> None:
    response = staff.post("/services/new", LEGAL_CLINIC | {"minimum_age": "sixteen"})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Give an age in whole years from 0 to 200." in page
    assert 'value="sixteen"' in page
    assert 'value="Legal clinic"' in page

    response = staff.post("/services/new", LEGAL_CLINIC | {"email": "not an address"})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Give an e-mail address" in page
    assert 'href="#f-email"' in page
    assert 'value="not an address"' in page

    response = staff.post("/services/new", LEGAL_CLINIC | {"city": ""})
    assert response.status_code == 400
    assert "An address needs a street, city" in response.get_data(as_text=True)
    assert services(community) == []


def test_capacity_is_updated_on_one_screen_and_published(
    staff: PageClient, community: TestNode, clock: TestClock
) -> None:
    service_id = add(staff)
    before = document(community).version
    page = staff.get(f"/services/{service_id}/capacity").get_data(as_text=True)
    assert "Update capacity" in page
    assert "Never verified" in page

    response = staff.post(f"/services/{service_id}/capacity", CAPACITY)
    assert response.status_code == 303
    assert response.headers["Location"] == "/services"
    listing = staff.get("/services").get_data(as_text=True)
    assert "The capacity is saved." in listing
    assert "Open places" in listing
    assert "3 appointments" in listing
    assert staff.post("/language", {"lang": "ar", "next": "/"}).status_code == 303
    assert 'dir="rtl"' in staff.get(f"/services/{service_id}/capacity").get_data(as_text=True)
    assert staff.post("/language", {"lang": "en", "next": "/"}).status_code == 303

    published = document(community)
    assert published.version > before
    entry = published.service(service_id)
    assert entry is not None
    assert (entry.status, entry.accepting_referrals, entry.wait_days) == ("capacity", True, 2)
    assert entry.intake_fields == ("given_name", "phone")
    assert entry.notes == "Call before referring on Fridays"
    assert entry.verified_at == format_timestamp(clock())
    assert entry.service["capacities"][0]["available"] == 3

    clock.advance(3_600)
    assert staff.post(f"/services/{service_id}/verify").status_code == 303
    confirmed = document(community)
    assert confirmed.version > published.version
    entry = confirmed.service(service_id)
    assert entry is not None
    assert entry.verified_at == format_timestamp(clock())
    assert entry.updated_at == format_timestamp(clock() - 3_600)  # nothing else changed


def test_bad_capacity_input_is_kept_and_nothing_changes(
    staff: PageClient, community: TestNode
) -> None:
    service_id = add(staff)
    bad = CAPACITY | {"wait_days": "a week", "open_places": "-1", "status": "open"}
    response = staff.post(f"/services/{service_id}/capacity", bad)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Give the wait in whole days" in page
    assert "Give the open places as a whole number" in page
    assert "Choose whether the service can take people now." in page
    assert '<fieldset id="f-status" class="has-error" aria-describedby="f-status-error">' in page
    assert '<p class="error" id="f-status-error">' in page
    assert 'href="#f-status"' in page
    assert 'value="a week"' in page
    assert "Call before referring on Fridays</textarea>" in page
    (service,) = services(community)
    assert (service.capacity_status, service.accepting_referrals) == ("no-capacity", False)
    assert service.verified_at is None


@pytest.mark.parametrize("number", ["²", "٣", "9" * 5000])
def test_numbers_that_python_alone_would_take_are_refused_as_input(
    staff: PageClient, community: TestNode, number: str
) -> None:
    """Superscript and Arabic-Indic digits pass str.isdigit(); 5,000 digits overflow int()."""
    response = staff.post("/services/new", LEGAL_CLINIC | {"minimum_age": number})
    assert response.status_code == 400
    assert "Give an age in whole years from 0 to 200." in response.get_data(as_text=True)
    service_id = add(staff)
    for name in ("wait_days", "open_places"):
        response = staff.post(f"/services/{service_id}/capacity", CAPACITY | {name: number})
        assert response.status_code == 400, name


def test_removing_a_service_asks_first(
    admin: PageClient, staff: PageClient, community: TestNode
) -> None:
    service_id = add(staff)
    page = admin.get(f"/services/{service_id}/remove").get_data(as_text=True)
    assert "Remove Legal clinic?" in page
    assert admin.post(f"/services/{service_id}/remove", csrf=False).status_code == 400
    assert len(services(community)) == 1
    response = admin.post(f"/services/{service_id}/remove")
    assert response.status_code == 303
    assert services(community) == []
    assert document(community).service(service_id) is None
    assert admin.get(f"/services/{service_id}/edit").status_code == 404
