"""The services REST API: scope capacity:write, HSDS bodies, capacity, import, problems."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from exchange_node.db.models import CapacityPublication, OAuthClient
from exchange_node.services import audit, clients
from tests.node.conftest import assert_problem, hsds_service
from tests.node.test_oauth import get_token
from tests.test_hsds import assert_official

if TYPE_CHECKING:
    from tests.node.conftest import Federation, TestClock, TestNode

SERVICES = "/api/v1/services"


@pytest.fixture
def clinic_node(federation: Federation) -> TestNode:
    return federation.add("clinic")


def token_for(test_node: TestNode, *scopes: str) -> str:
    with test_node.node.database.session() as session:
        client, secret = clients.add_client(session, "Bed board", scopes, test_node.node.now())
        client_id = client.client_id
    return get_token(test_node.client(), client_id, secret)


class Api:
    """A test client that sends a bearer token."""

    def __init__(self, http: FlaskClient, token: str) -> None:
        self.http, self.headers = http, {"Authorization": f"Bearer {token}"}

    def __call__(self, method: str, path: str, body: Any = None, **kwargs: Any) -> TestResponse:
        if body is not None:
            kwargs["json"] = body
        return self.http.open(path, method=method, headers=self.headers, **kwargs)


@pytest.fixture
def api(clinic_node: TestNode) -> Api:
    return Api(clinic_node.client(), token_for(clinic_node, "capacity:write"))


def version(test_node: TestNode) -> int:
    with test_node.node.database.session() as session:
        return session.get_one(CapacityPublication, 1).version


def test_every_route_needs_the_capacity_write_scope(clinic_node: TestNode) -> None:
    service_id = str(uuid.uuid4())
    routes = [
        ("GET", SERVICES),
        ("POST", SERVICES),
        ("GET", f"{SERVICES}/{service_id}"),
        ("PUT", f"{SERVICES}/{service_id}"),
        ("DELETE", f"{SERVICES}/{service_id}"),
        ("PUT", f"{SERVICES}/{service_id}/capacity"),
        ("POST", f"{SERVICES}/import"),
    ]
    http = clinic_node.client()
    reader = Api(http, token_for(clinic_node, "directory:read"))
    for method, path in routes:
        assert_problem(http.open(path, method=method, json={}), 401, "unauthorized")
        refused = reader(method, path, {})
        assert_problem(refused, 403, "insufficient_scope")
        assert 'scope="capacity:write"' in refused.headers["WWW-Authenticate"]


def test_add_show_list_replace_remove(api: Api, clinic_node: TestNode) -> None:
    start = version(clinic_node)
    record = hsds_service("Counselling", description="Talking therapy")
    created = api("POST", SERVICES, record, query_string={"public": "true"})
    assert created.status_code == 201, created.json
    location = f"https://clinic.example{SERVICES}/{record['id']}"
    assert created.headers["Location"] == location
    assert created.json is not None
    assert created.json["service"] == record
    assert created.json["public"] is True
    assert created.json["capacity"]["status"] == "no-capacity"
    assert version(clinic_node) == start + 1

    shown = api("GET", f"{SERVICES}/{record['id']}")
    assert shown.status_code == 200
    assert shown.json == created.json
    listed = api("GET", SERVICES)
    assert listed.json == {"services": [created.json]}

    replaced = api("PUT", f"{SERVICES}/{record['id']}", {"name": "Therapy", "status": "active"})
    assert replaced.status_code == 200, replaced.json
    assert replaced.json is not None
    assert replaced.json["service"] == {"id": record["id"], "name": "Therapy", "status": "active"}
    assert replaced.json["public"] is True  # no query parameter: unchanged

    assert api("DELETE", f"{SERVICES}/{record['id']}").status_code == 204
    assert_problem(api("GET", f"{SERVICES}/{record['id']}"), 404, "not_found")
    assert version(clinic_node) == start + 3


def test_a_record_without_id_gets_one(api: Api) -> None:
    created = api("POST", SERVICES, {"name": "Meals", "status": "active"})
    assert created.status_code == 201
    assert created.json is not None
    service_id = created.json["service"]["id"]
    assert created.headers["Location"].endswith(f"/{uuid.UUID(service_id)}")


@pytest.mark.parametrize(
    ("body", "pointer", "reason"),
    [
        ({"name": "Meals"}, "/status", "required"),
        ({"name": "Meals", "status": "active", "email": "nobody"}, "/email", "email"),
        ({"id": "42", "name": "Meals", "status": "active"}, "/id", "uuid"),
        (["not", "a", "record"], "/", "not an object"),
    ],
)
def test_invalid_records_get_field_pointers(api: Api, body: Any, pointer: str, reason: str) -> None:
    refused = api("POST", SERVICES, body)
    assert_problem(refused, 400, "invalid_request")
    assert refused.json is not None
    assert reason in " ".join(refused.json["errors"][pointer])
    assert api("GET", SERVICES).json == {"services": []}


def test_bodies_that_are_not_json_and_bad_query_parameters(api: Api) -> None:
    not_json = api("POST", SERVICES, data="name=x", content_type="text/plain")
    assert_problem(not_json, 400, "invalid_request")
    broken = api("POST", SERVICES, data="{", content_type="application/json")
    assert_problem(broken, 400, "invalid_request")
    odd = api("POST", SERVICES, hsds_service("A"), query_string={"public": "yes"})
    assert_problem(odd, 400, "invalid_request")
    assert odd.json is not None
    assert "/query/public" in odd.json["errors"]


def test_replace_refuses_another_id_and_unknown_services(api: Api) -> None:
    record = hsds_service("Counselling")
    api("POST", SERVICES, record)
    other = api("PUT", f"{SERVICES}/{record['id']}", hsds_service("Other"))
    assert_problem(other, 400, "invalid_request")
    assert other.json is not None
    assert "/id" in other.json["errors"]
    missing = api("PUT", f"{SERVICES}/{uuid.uuid4()}", {"name": "A", "status": "active"})
    assert_problem(missing, 404, "not_found")
    assert_problem(api("DELETE", f"{SERVICES}/not-an-id"), 404, "not_found")
    assert_problem(api("POST", SERVICES, record), 409, "conflict")


def test_capacity_is_replaced_and_verified_only_when_asked(
    api: Api, clinic_node: TestNode, clock: TestClock
) -> None:
    record = hsds_service("Shelter beds")
    api("POST", SERVICES, record)
    path = f"{SERVICES}/{record['id']}/capacity"
    clock.advance(60)
    body = {
        "status": "capacity",
        "accepting_referrals": True,
        "wait_days": 2,
        "notes": "Ring the bell",
        "intake_fields": ["given_name", "phone"],
        "capacities": [{"unit": "beds", "available": 3, "maximum": 12}],
    }
    changed = api("PUT", path, body)
    assert changed.status_code == 200, changed.json
    assert changed.json is not None
    assert changed.json["capacity"] == {
        "status": "capacity",
        "accepting_referrals": True,
        "wait_days": 2,
        "notes": "Ring the bell",
        "intake_fields": ["given_name", "phone"],
        "verified_at": None,
        "updated_at": "2027-01-01T00:01:00Z",
    }
    (beds,) = changed.json["service"]["capacities"]
    assert (beds["available"], beds["maximum"], beds["updated"]) == (3, 12, "2027-01-01T00:01:00Z")
    assert_official(changed.json["service"])
    clock.advance(60)
    verified = api(
        "PUT", path, {"status": "waitlist", "accepting_referrals": False, "verified": True}
    )
    assert verified.json is not None
    capacity = verified.json["capacity"]
    assert capacity["verified_at"] == "2027-01-01T00:02:00Z"
    assert (capacity["wait_days"], capacity["notes"], capacity["intake_fields"]) == (None, None, [])
    assert verified.json["service"]["capacities"] == changed.json["service"]["capacities"]


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"accepting_referrals": True}, "/status"),
        ({"status": "full", "accepting_referrals": True}, "/status"),
        ({"status": "capacity", "accepting_referrals": "yes"}, "/accepting_referrals"),
        ({"status": "capacity", "accepting_referrals": True, "wait_days": -1}, "/wait_days"),
        ({"status": "capacity", "accepting_referrals": True, "notes": "x" * 1001}, "/notes"),
        (
            {"status": "capacity", "accepting_referrals": True, "intake_fields": ["x"]},
            "/intake_fields/0",
        ),
        (
            {"status": "capacity", "accepting_referrals": True, "capacities": [{"unit": "b"}]},
            "/capacities/0/available",
        ),
        ({"status": "capacity", "accepting_referrals": True, "acepting": True}, "/acepting"),
    ],
)
def test_bad_capacity_bodies_get_field_pointers(api: Api, body: Any, pointer: str) -> None:
    record = hsds_service("Beds")
    api("POST", SERVICES, record)
    refused = api("PUT", f"{SERVICES}/{record['id']}/capacity", body)
    assert_problem(refused, 400, "invalid_request")
    assert refused.json is not None
    assert pointer in refused.json["errors"]


def test_capacity_of_an_unknown_service(api: Api) -> None:
    body = {"status": "capacity", "accepting_referrals": True}
    assert_problem(api("PUT", f"{SERVICES}/{uuid.uuid4()}/capacity", body), 404, "not_found")


def test_import_is_all_or_nothing(api: Api, clinic_node: TestNode) -> None:
    first = hsds_service("Food")
    imported = api("POST", f"{SERVICES}/import", {"contents": [first, hsds_service("Legal")]})
    assert imported.status_code == 200, imported.json
    assert imported.json is not None
    assert imported.json["added"][0] == first["id"]
    assert imported.json["updated"] == []
    before = version(clinic_node)
    refused = api("POST", f"{SERVICES}/import", [{**first, "name": "Food bank"}, {"name": "X"}])
    assert_problem(refused, 400, "invalid_request")
    assert refused.json is not None
    assert "/1/status" in refused.json["errors"]
    assert version(clinic_node) == before
    names = [entry["service"]["name"] for entry in api("GET", SERVICES).json["services"]]  # type: ignore[index]
    assert names == ["Food", "Legal"]


def test_changes_are_audited_as_the_client(api: Api, clinic_node: TestNode) -> None:
    created = api("POST", SERVICES, hsds_service("Meals"))
    service_id = created.json["service"]["id"] if created.json else ""
    capacity = {"status": "waitlist", "accepting_referrals": True, "verified": True}
    assert api("PUT", f"{SERVICES}/{service_id}/capacity", capacity).status_code == 200
    assert api("DELETE", f"{SERVICES}/{service_id}").status_code == 204
    with clinic_node.node.database.session() as session:
        [client_id] = session.scalars(select(OAuthClient.client_id)).all()
        logged = [
            (entry.actor, entry.action, entry.subject, entry.details)
            for entry in audit.entries(session)
            if entry.action.startswith(("service.", "capacity."))
        ]
        assert audit.verify(session).ok
    actor = f"api:{client_id}"
    assert logged == [
        (actor, "service.added", service_id, {}),
        (
            actor,
            "capacity.changed",
            service_id,
            {"status": "waitlist", "accepting_referrals": True},
        ),
        (actor, "service.removed", service_id, {}),
    ]
