"""``GET /api/v1/directory``: scope, query parameters, the answer's shape, nothing logged."""

from __future__ import annotations

import logging
import uuid

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from exchange_node.hsds import affirming_attribute
from exchange_node.services import clients
from tests.node.conftest import TestNode, assert_problem
from tests.node.test_directory_search import DAY, language, located, offer, stock

PATH = "/api/v1/directory"


def token_for(test_node: TestNode, scopes: list[str]) -> str:
    with test_node.node.database.session() as session:
        client, secret = clients.add_client(session, "Case system", scopes, test_node.node.now())
    response = test_node.client().post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client.client_id, secret),
    )
    assert response.status_code == 200, response.json
    return str(response.json["access_token"])  # type: ignore[index]


@pytest.fixture
def directory(community: TestNode, clinic: TestNode) -> TestNode:
    now = community.node.now()
    stock(
        community,
        clinic.url,
        [
            offer(
                "Youth sexual health drop-in",
                description="Confidential care.",
                languages=[language("Arabic", "ar")],
                attributes=[affirming_attribute(str(uuid.uuid4()))],
                service_at_locations=located(51.5074, -0.1278),
                verified_days_ago=3,
                wait_days=2,
                now=now,
            ),
            offer("Legal clinic", status="waitlist", now=now),
            offer("Food bank", status="no-capacity", accepting=False, now=now),
        ],
    )
    return community


@pytest.fixture
def http(directory: TestNode) -> FlaskClient:
    return directory.client()


@pytest.fixture
def reader(directory: TestNode) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(directory, ['directory:read'])}"}


def get(http: FlaskClient, headers: dict[str, str], query: str = "") -> TestResponse:
    return http.get(f"{PATH}?{query}", headers=headers)


def test_search_answers_ranked_results_with_peer_capacity_and_freshness(
    http: FlaskClient, reader: dict[str, str], directory: TestNode
) -> None:
    response = get(http, reader)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json
    assert body is not None
    assert (body["total"], body["limit"], body["offset"]) == (3, 20, 0)
    assert [r["service"]["name"] for r in body["results"]] == [
        "Youth sexual health drop-in",
        "Legal clinic",
        "Food bank",
    ]
    first = body["results"][0]
    now = directory.node.now()
    assert first == {
        "peer": {"entity_id": "https://clinic.example", "organization": "Clinic", "kind": "clinic"},
        "service": {
            "id": first["service"]["id"],
            "name": "Youth sexual health drop-in",
            "organization": "Clinic",
            "description": "Confidential care.",
            "status": "active",
        },
        "capacity": {
            "status": "capacity",
            "accepting_referrals": True,
            "wait_days": 2,
            "notes": None,
            "intake_fields": ["given_name", "phone"],
            "verified_at": "2026-12-29T00:00:00Z",
            "updated_at": "2027-01-01T00:00:00Z",
        },
        "verified_days_ago": 3,
        "stale": False,
        "stale_since": None,
        "distance_km": None,
    }
    assert now == 1_798_761_600  # the timestamps above are relative to the test clock


def test_parameters_filter(http: FlaskClient, reader: dict[str, str]) -> None:
    queries = {
        "q=youth+care": ["Youth sexual health drop-in"],
        "q=&language=": ["Youth sexual health drop-in", "Legal clinic", "Food bank"],
        "language=Arabic&affirming=true&age=16": ["Youth sexual health drop-in"],
        "status=waitlist&status=no-capacity": ["Legal clinic", "Food bank"],
        "accepting=false": ["Food bank"],
        "peer_kind=clinic&limit=1&offset=1": ["Legal clinic"],
        "near=51.5,-0.12&radius_km=5": ["Youth sexual health drop-in"],
        "category=legal": [],
    }
    for query, found in queries.items():
        response = get(http, reader, query)
        assert response.status_code == 200, (query, response.json)
        assert [r["service"]["name"] for r in response.json["results"]] == found, query  # type: ignore[index]
    near = get(http, reader, "near=51.5,-0.12").json
    assert near["results"][0]["distance_km"] == pytest.approx(0.98, abs=0.01)  # type: ignore[index]


BAD_QUERIES = {
    "age=twelve": {"/age": ["Not a valid integer."]},
    "age=-1": {"/age": ["must be from 0 to 200"]},
    "limit=500": {"/limit": ["must be from 1 to 100"]},
    "accepting=yes": {"/accepting": ["Not a valid boolean."]},
    "status=open": {
        "/status": [
            "unknown open: one of capacity, no-capacity, waitlist, additional-assessment-required"
        ]
    },
    "near=51.5": {"/near": ["must be two numbers: latitude,longitude"]},
    "near=north,west": {"/near": ["must be two numbers: latitude,longitude"]},
    "near=91,0": {"/near": ["must be from -90 to 90"]},
    "radius_km=5": {"/radius_km": ["only with near"]},
    "near=1,1&radius_km=nan": {
        "/radius_km": ["Special numeric values (nan or infinity) are not permitted."]
    },
    "langauge=ar": {"/langauge": ["Unknown field."]},
    "age=3&age=4": {"/age": ["give it once"]},
    "q=%22*%22": {"/q": ["has no letters or digits to search for"]},
    "q=" + "a" * 201: {"/q": ["at most 200 characters"]},
}


def test_bad_parameters_are_400_naming_each(http: FlaskClient, reader: dict[str, str]) -> None:
    for query, errors in BAD_QUERIES.items():
        response = get(http, reader, query)
        assert_problem(response, 400, "invalid_request")
        assert response.json["errors"] == errors, query  # type: ignore[index]


def test_a_token_with_directory_read_is_needed(directory: TestNode, http: FlaskClient) -> None:
    assert_problem(http.get(PATH), 401, "unauthorized")
    assert_problem(get(http, {"Authorization": "Bearer nope"}), 401, "unauthorized")
    writer = token_for(directory, ["capacity:write", "referrals:read"])
    refused = get(http, {"Authorization": f"Bearer {writer}"})
    assert_problem(refused, 403, "insufficient_scope")


def test_search_criteria_are_not_logged(
    http: FlaskClient, reader: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert get(http, reader, "q=youthword&language=Arabic").status_code == 200
    assert get(http, reader, "q=youthword&age=secretage").status_code == 400
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "invalid_request" in logged  # the refusal is logged, by code
    for criterion in ("youthword", "secretage", "Arabic"):
        assert criterion not in logged


def test_stale_services_say_so(
    http: FlaskClient, reader: dict[str, str], directory: TestNode, clinic: TestNode, clock: object
) -> None:
    stock(directory, clinic.url, [offer("Old", now=directory.node.now())], expires_in=-DAY)
    [result] = get(http, reader).json["results"]  # type: ignore[index]
    assert result["stale"] is True
    assert result["stale_since"] == "2026-12-31T00:00:00Z"
