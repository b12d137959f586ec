"""The open HSDS 3.1 API (web/hsds.py): off by default, public services only, HSDS-shaped pages.

Pages and records are checked against the standard's own compiled schemas with python
``jsonschema`` (skipped when ``shared/standards/hsds-3.1`` is absent).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest
from werkzeug.test import TestResponse

from tests.node.conftest import Federation, assert_problem, hsds_service
from tests.node.test_publication import official_validator, standard_example

if TYPE_CHECKING:  # imported by name, pytest would try to collect the Test* classes
    from tests.node.conftest import TestNode

PAGE_MEMBERS = {
    "total_items",
    "total_pages",
    "page_number",
    "size",
    "first_page",
    "last_page",
    "empty",
    "contents",
}


@pytest.fixture
def clinic(federation: Federation) -> TestNode:
    """A node with the open HSDS API on (the setting is read at start, so set on the node)."""
    clinic = federation.add("clinic")
    clinic.node.settings = replace(clinic.node.settings, public_hsds=True)
    return clinic


def get(test_node: TestNode, path: str) -> TestResponse:
    return test_node.client().get(path, base_url=test_node.url)


def names(response: TestResponse) -> list[str]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return [service["name"] for service in response.get_json()["contents"]]


def assert_valid(validator_name: str, instance: Any) -> None:
    errors = [error.message for error in official_validator(validator_name).iter_errors(instance)]
    assert errors == []


@pytest.mark.parametrize("path", ["/hsds/", "/hsds/services", "/hsds/services/anything"])
def test_api_is_off_by_default(federation: Federation, path: str) -> None:
    closed = federation.add("school", "school")
    closed.publish(public=True)
    response = get(closed, path)
    assert_problem(response, 404, "not_found")
    assert "max-age" not in response.headers.get("Cache-Control", "")


def test_root_describes_the_api(clinic: TestNode) -> None:
    response = get(clinic, "/hsds/")
    assert response.status_code == 200
    body = response.get_json()
    assert body["version"] == "3.1"
    assert body["openapi_url"].endswith("/3.1/schema/openapi.json")
    assert body["profile"].startswith("https://")


def test_lists_only_public_services(clinic: TestNode) -> None:
    clinic.publish(hsds_service("Shelter"), public=False)
    clinic.publish(hsds_service("Food bank"), public=True)
    clinic.publish(hsds_service("Advice"), public=True)
    response = get(clinic, "/hsds/services")

    assert names(response) == ["Advice", "Food bank"]
    body = response.get_json()
    assert set(body) == PAGE_MEMBERS
    assert (body["total_items"], body["total_pages"], body["size"]) == (2, 1, 2)
    assert (body["first_page"], body["last_page"], body["empty"]) == (True, True, False)


def test_open_to_browsers_and_cacheable(clinic: TestNode) -> None:
    response = get(clinic, "/hsds/services")
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert set(response.headers["Cache-Control"].split(", ")) == {"public", "max-age=300"}
    missing = get(clinic, "/hsds/services/unknown")
    assert missing.headers["Access-Control-Allow-Origin"] == "*"
    assert "public" not in missing.headers["Cache-Control"]


def test_pagination_numbers(clinic: TestNode) -> None:
    for number in range(5):
        clinic.publish(hsds_service(f"Service {number}"), public=True)

    first = get(clinic, "/hsds/services?per_page=2").get_json()
    last = get(clinic, "/hsds/services?per_page=2&page=3").get_json()
    beyond = get(clinic, "/hsds/services?per_page=2&page=4").get_json()

    assert [s["name"] for s in first["contents"]] == ["Service 0", "Service 1"]
    assert (first["total_items"], first["total_pages"], first["page_number"]) == (5, 3, 1)
    assert (first["size"], first["first_page"], first["last_page"]) == (2, True, False)
    assert [s["name"] for s in last["contents"]] == ["Service 4"]
    assert (last["page_number"], last["size"], last["first_page"], last["last_page"]) == (
        3,
        1,
        False,
        True,
    )
    assert (beyond["size"], beyond["empty"], beyond["last_page"]) == (0, True, True)


def test_empty_list(clinic: TestNode) -> None:
    body = get(clinic, "/hsds/services").get_json()
    assert body == {
        "total_items": 0,
        "total_pages": 0,
        "page_number": 1,
        "size": 0,
        "first_page": True,
        "last_page": True,
        "empty": True,
        "contents": [],
    }


def test_search_filters_on_name(clinic: TestNode) -> None:
    clinic.publish(hsds_service("Youth drop-in"), public=True)
    clinic.publish(hsds_service("Legal advice"), public=True)
    clinic.publish(hsds_service("100% youth"), public=True)
    assert names(get(clinic, "/hsds/services?search=YOUTH")) == ["100% youth", "Youth drop-in"]
    assert names(get(clinic, "/hsds/services?search=%25")) == ["100% youth"]


def test_list_items_are_hsds_service_list_items(clinic: TestNode) -> None:
    full = standard_example("service_full.json")
    clinic.publish(full, public=True)
    clinic.publish(hsds_service("Minimal"), public=True)
    body = get(clinic, "/hsds/services").get_json()

    for item in body["contents"]:
        assert_valid("service_list.json", item)
    listed = next(item for item in body["contents"] if item["id"] == full["id"])
    assert "capacities" not in listed  # one-to-one fields only, as HSDS lists services
    assert listed["organization"] == full["organization"]


def test_full_list_carries_whole_records(clinic: TestNode) -> None:
    full = standard_example("service_full.json")
    clinic.publish(full, public=True)
    body = get(clinic, "/hsds/services?full=true").get_json()
    assert body["contents"] == [full]
    assert_valid("service_with_definitions.json", body["contents"][0])


def test_item_is_the_whole_record_with_its_capacities(clinic: TestNode) -> None:
    full = standard_example("service_full.json")
    clinic.publish(full, public=True)
    response = get(clinic, f"/hsds/services/{full['id']}")

    assert response.status_code == 200
    assert response.get_json() == full
    assert response.get_json()["capacities"] == full["capacities"]
    assert_valid("service_with_definitions.json", response.get_json())


@pytest.mark.parametrize("kind", ["private", "unknown", "too long", "public with a suffix"])
def test_item_not_public_is_not_found(clinic: TestNode, kind: str) -> None:
    private = clinic.publish(hsds_service("Shelter"), public=False)
    public = clinic.publish(hsds_service("Food bank"), public=True)
    service_id = {
        "private": private,
        "unknown": "0b6f3c1e-2a4d-4e8f-9b1a-7c5d3e2f1a0b",
        "too long": "x" * 300,
        "public with a suffix": public + "x",
    }[kind]
    response = get(clinic, f"/hsds/services/{service_id}")
    assert_problem(response, 404, "not_found")
    assert response.get_json()["detail"] == "no public service with this id"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("page=0", "/page"),
        ("page=abc", "/page"),
        ("page=-1", "/page"),
        ("page=" + "9" * 5000, "/page"),
        ("per_page=0", "/per_page"),
        ("per_page=101", "/per_page"),
        ("per_page=1.5", "/per_page"),
        ("full=maybe", "/full"),
        ("search=" + "a" * 201, "/search"),
    ],
)
def test_bad_query_is_refused_with_the_field(clinic: TestNode, query: str, field: str) -> None:
    response = get(clinic, f"/hsds/services?{query}")
    assert_problem(response, 400, "invalid_request")
    assert list(response.get_json()["errors"]) == [field]


def test_bad_page_and_per_page_are_both_named(clinic: TestNode) -> None:
    response = get(clinic, "/hsds/services?page=0&per_page=1000")
    assert_problem(response, 400, "invalid_request")
    assert set(response.get_json()["errors"]) == {"/page", "/per_page"}
