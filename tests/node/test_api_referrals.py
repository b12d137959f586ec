"""The referrals REST API: scopes, validation with pointers, create, list, show, status,
withdrawal, consent receipts, unknown ids, and answers true to the OpenAPI document.

The community network sends (its referrals are made through the API); a referral the
clinic received is stored straight in its tables, so these tests need no delivery.
Every test runs on SQLite and, with ``EXCHANGE_TEST_DATABASE_URL``, on PostgreSQL.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select
from werkzeug.test import TestResponse

from exchange_node.db.models import OutboxState, Peer, Referral
from exchange_node.openapi import build_openapi
from exchange_node.services import audit, referral_store
from tests.node.conftest import assert_problem
from tests.node.test_api_services import Api, token_for
from tests.node.test_referrals_support import (
    CONTACT_NOTES,
    DAY,
    GIVEN_NAME,
    PHONE,
    SAFE_CONTACT,
    list_service,
    outbox_rows,
    service_id,
)
from tests.test_openapi import check_documented

if TYPE_CHECKING:
    from tests.node.conftest import TestNode

__all__ = ["service_id"]  # the fixture, used by name

REFERRALS = "/api/v1/referrals"
NOTE = "Prefers afternoons, ask for Quillmarrow"


@pytest.fixture
def api(community: TestNode) -> Api:
    return Api(community.client(), token_for(community, "referrals:read", "referrals:write"))


def body(clinic: TestNode, sid: str, **changes: Any) -> dict[str, Any]:
    """A valid referral request, with top-level members replaced or (``None``) removed."""
    request: dict[str, Any] = {
        "peer": clinic.url,
        "service_id": sid,
        "person": {"given_name": GIVEN_NAME, "phone": PHONE},
        "consent": consent(),
        "safe_contact": SAFE_CONTACT,
    }
    request |= changes
    return {name: value for name, value in request.items() if value is not None}


def consent(**changes: Any) -> dict[str, Any]:
    """The consent member of a valid request, with members changed."""
    return {
        "data_categories": ["identity", "contact"],
        "purpose": "Referral to the youth drop-in, and follow-up on its outcome.",
        "given_by": "self",
        "method": "verbal",
        "captured_by": "staff-0042",
        "expires_at": "2027-03-31T00:00:00Z",
    } | changes


def created(api: Api, clinic: TestNode, sid: str) -> dict[str, Any]:
    response = api("POST", REFERRALS, body(clinic, sid))
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.json is not None
    return response.json


def store_received(clinic: TestNode, community: TestNode) -> str:
    """A referral the clinic received from the community, as its inbox would store it."""
    node, now = clinic.node, clinic.node.now()
    with node.database.session() as session:
        peer = session.scalars(select(Peer).where(Peer.entity_id == community.url)).one()
        referral = Referral(
            referral_id=str(uuid.uuid4()),
            role="received",
            peer_id=peer.id,
            service_id=str(uuid.uuid4()),
            service_name="Youth drop-in",
            status="requested",
            consent_id=str(uuid.uuid4()),
            consent_expires_at=now + 90 * DAY,
            created_by=f"peer:{community.url}",
            created_at=now,
            updated_at=now,
        )
        session.add(referral)
        session.flush()
        data = referral_store.PersonalData({"given_name": GIVEN_NAME}, {}, SAFE_CONTACT)
        referral_store.seal_personal_data(node.data_key, referral, data)
        referral_store.add_event(
            session,
            referral,
            kind=referral_store.STATUS,
            now=now,
            status="requested",
            side="sender",
        )
        return referral.referral_id


def field_errors(response: TestResponse) -> dict[str, list[str]]:
    """The ``errors`` of an ``invalid_request`` problem response."""
    assert_problem(response, 400, "invalid_request")
    assert response.json is not None
    errors: dict[str, list[str]] = response.json.get("errors", {})
    return errors


def entries(test_node: TestNode, action: str) -> list[tuple[str, str]]:
    with test_node.node.database.session() as session:
        return [(e.actor, e.subject) for e in audit.entries(session, action=action)]


# --- scopes -------------------------------------------------------------------------------


def test_every_route_needs_its_scope(community: TestNode) -> None:
    item = f"{REFERRALS}/{uuid.uuid4()}"
    routes = [
        ("POST", REFERRALS, "referrals:write"),
        ("GET", REFERRALS, "referrals:read"),
        ("GET", item, "referrals:read"),
        ("POST", f"{item}/status", "referrals:write"),
        ("POST", f"{item}/withdrawal", "referrals:write"),
        ("GET", f"{item}/consent-receipt", "referrals:read"),
    ]
    http = community.client()
    reader = Api(http, token_for(community, "referrals:read"))
    writer = Api(http, token_for(community, "referrals:write"))
    for method, path, scope in routes:
        assert_problem(http.open(path, method=method, json={}), 401, "unauthorized")
        other = writer if scope == "referrals:read" else reader
        refused = other(method, path, {})
        assert_problem(refused, 403, "insufficient_scope")
        assert f'scope="{scope}"' in refused.headers["WWW-Authenticate"]
        assert "no-store" in refused.headers["Cache-Control"]


# --- creating -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "pointer", "reason"),
    [
        ({"person": None}, "/person", "required"),
        ({"nickname": "Sam"}, "/nickname", "Unknown field"),
        ({"person": {"shoe_size": "9"}}, "/person/shoe_size", "Unknown field"),
        ({"person": {"given_name": "x" * 101}}, "/person/given_name", "Length"),
        ({"consent": consent(expires_at="31/03/2027")}, "/consent/expires_at", "RFC 3339"),
        ({"consent": consent(expires_at="2027-02-30T00:00:00Z")}, "/consent/expires_at", "No such"),
        ({"consent": consent(purpose="")}, "/consent/purpose", "Length"),
        ({"consent": consent(data_categories=["shoes"])}, "/consent/data_categories/0", "one of"),
        ({"consent": consent(method="telepathy")}, "/consent/method", "one of"),
        ({"safe_contact": SAFE_CONTACT | {"channels": ["pigeon"]}}, "/safe_contact/channels/0", ""),
        ({"safe_contact": {"channels": ["sms"]}}, "/safe_contact/voicemail_allowed", "required"),
        ({"override": {"reason": ""}}, "/override/reason", "Length"),
        ({"service_id": "no spaces"}, "/service_id", "format"),
    ],
)
def test_invalid_requests_get_field_pointers(
    api: Api, clinic: TestNode, service_id: str, changes: dict[str, Any], pointer: str, reason: str
) -> None:
    refused = api("POST", REFERRALS, body(clinic, service_id, **changes))
    assert reason in " ".join(field_errors(refused)[pointer])
    assert GIVEN_NAME not in refused.get_data(as_text=True)


def test_what_the_service_refuses_is_named_by_pointer_and_nothing_is_stored(
    api: Api, community: TestNode, clinic: TestNode, service_id: str
) -> None:
    person = {"given_name": GIVEN_NAME, "pronouns": "they/them", "email": "x@example.org"}
    refused = api("POST", REFERRALS, body(clinic, service_id, person=person))
    assert {"/person/pronouns", "/person/email"} <= set(field_errors(refused))
    assert "they/them" not in refused.get_data(as_text=True)
    unknown_peer = api("POST", REFERRALS, body(clinic, service_id, peer="https://nowhere.example"))
    assert_problem(unknown_peer, 404, "not_found")
    not_json = api("POST", REFERRALS, data="peer=x", content_type="text/plain")
    assert_problem(not_json, 400, "invalid_request")
    assert_problem(api("POST", REFERRALS, ["a", "list"]), 400, "invalid_request")
    assert outbox_rows(community) == []


def test_a_service_not_accepting_needs_an_override(
    api: Api, community: TestNode, clinic: TestNode
) -> None:
    closed = list_service(community, clinic, accepting=False)
    assert_problem(api("POST", REFERRALS, body(clinic, closed)), 409, "service_not_accepting")
    override = {"reason": "Urgent: agreed by phone with their intake lead"}
    sent = api("POST", REFERRALS, body(clinic, closed, override=override))
    assert sent.status_code == 201, sent.json
    assert sent.json is not None
    assert sent.json["override"] is True


def test_create_stores_queues_and_answers_without_personal_data(
    api: Api, community: TestNode, clinic: TestNode, service_id: str, caplog: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    response = api("POST", REFERRALS, body(clinic, service_id))
    assert response.status_code == 201, response.json
    answer = response.json
    assert answer is not None
    referral_id = answer["referral_id"]
    assert response.headers["Location"] == f"{community.url}{REFERRALS}/{referral_id}"
    assert response.headers["Cache-Control"] == "no-store"
    assert uuid.UUID(referral_id)
    assert answer["role"] == "sent"
    assert answer["status"] == "requested"
    assert len(answer["consent_code"]) == 9
    assert answer["delivery"]["state"] == "pending"
    assert answer["peer"]["entity_id"] == clinic.url
    assert "person" not in answer
    text = response.get_data(as_text=True)
    assert GIVEN_NAME not in text
    assert PHONE not in text
    (row,) = outbox_rows(community)
    assert (row.message_type, row.state) == ("referral", OutboxState.PENDING)
    assert community.node.outbox_signal.is_set()
    client_actor = entries(community, "referral.created")[0][0]
    assert client_actor.startswith("api:")
    assert entries(community, "referral.created") == [(client_actor, referral_id)]
    assert GIVEN_NAME not in caplog.text
    assert PHONE not in caplog.text


def test_an_offset_time_is_taken_as_the_same_moment(
    api: Api, clinic: TestNode, service_id: str
) -> None:
    given = consent(captured_at="2026-12-31T23:00:00-01:00", expires_at="2027-03-31T02:00:00+02:00")
    sent = api("POST", REFERRALS, body(clinic, service_id, consent=given))
    assert sent.status_code == 201, sent.json
    assert sent.json is not None
    assert sent.json["consent_expires_at"] == "2027-03-31T00:00:00Z"
    shown = api("GET", f"{REFERRALS}/{sent.json['referral_id']}").json
    assert shown is not None
    assert shown["consent"]["captured_at"] == "2027-01-01T00:00:00Z"


# --- reading ------------------------------------------------------------------------------


def test_list_filters_and_never_shows_personal_data(
    api: Api, community: TestNode, clinic: TestNode, service_id: str
) -> None:
    first = created(api, clinic, service_id)
    second = created(api, clinic, service_id)
    listed = api("GET", REFERRALS)
    assert listed.status_code == 200
    assert listed.json is not None
    ids = [r["referral_id"] for r in listed.json["referrals"]]
    assert set(ids) == {first["referral_id"], second["referral_id"]}
    assert GIVEN_NAME not in listed.get_data(as_text=True)
    assert listed.headers["Cache-Control"] == "no-store"
    assert api("GET", REFERRALS, query_string={"role": "received"}).json == {"referrals": []}
    sent = api("GET", REFERRALS, query_string={"role": "sent", "status": "requested", "limit": 1})
    assert sent.json is not None
    assert len(sent.json["referrals"]) == 1
    for query, pointer in [
        ({"role": "mine"}, "/query/role"),
        ({"status": "lost"}, "/query/status"),
        ({"limit": "0"}, "/query/limit"),
        ({"limit": "many"}, "/query/limit"),
        ({"name": GIVEN_NAME}, "/query/name"),
    ]:
        assert pointer in field_errors(api("GET", REFERRALS, query_string=query))
    twice = api("GET", f"{REFERRALS}?role=sent&role=received")
    assert_problem(twice, 400, "invalid_request")


def test_show_opens_personal_data_and_audits_the_read(
    api: Api, community: TestNode, clinic: TestNode, service_id: str
) -> None:
    referral_id = created(api, clinic, service_id)["referral_id"]
    shown = api("GET", f"{REFERRALS}/{referral_id}")
    assert shown.status_code == 200
    assert shown.headers["Cache-Control"] == "no-store"
    detail = shown.json
    assert detail is not None
    assert detail["person"] == {"given_name": GIVEN_NAME, "phone": PHONE}
    assert detail["safe_contact"]["notes"] == CONTACT_NOTES
    assert detail["consent"]["recipient"] == clinic.url
    assert detail["consent"]["captured_at"] == "2027-01-01T00:00:00Z"  # default: now
    assert detail["timeline"][0]["status"] == "requested"
    viewed = entries(community, "referral.personal_data_viewed")
    assert [subject for _, subject in viewed] == [referral_id]
    assert viewed[0][0].startswith("api:")


@pytest.mark.parametrize("suffix", ["", "/consent-receipt", "/status", "/withdrawal"])
def test_unknown_ids_are_not_found(
    api: Api, clinic: TestNode, service_id: str, suffix: str
) -> None:
    made = created(api, clinic, service_id)
    method = "POST" if suffix in ("/status", "/withdrawal") else "GET"
    change = {"status": "cancelled", "reason": {"code": "person-declined"}}
    for unknown in (str(uuid.uuid4()), made["referral_id"][:8], made["consent_code"], "x"):
        answer = api(
            method, f"{REFERRALS}/{unknown}{suffix}", change if suffix == "/status" else None
        )
        assert_problem(answer, 404, "not_found")


# --- changing -----------------------------------------------------------------------------


def test_the_sender_cancels_and_is_told_what_it_may_not_do(
    api: Api, community: TestNode, clinic: TestNode, service_id: str
) -> None:
    referral_id = created(api, clinic, service_id)["referral_id"]
    path = f"{REFERRALS}/{referral_id}/status"
    assert "/reason" in field_errors(api("POST", path, {"status": "cancelled"}))
    assert "/reason/text" in field_errors(
        api("POST", path, {"status": "cancelled", "reason": {"code": "other"}})
    )
    unknown = api("POST", path, {"status": "cancelled", "colour": "red"})
    assert_problem(unknown, 400, "invalid_request")

    wrong_side = api("POST", path, {"status": "accepted"})
    assert_problem(wrong_side, 409, "illegal_transition")
    assert wrong_side.json is not None
    assert wrong_side.json["allowed"] == ["cancelled"]

    change = {"status": "cancelled", "reason": {"code": "person-declined"}, "note": NOTE}
    cancelled = api("POST", path, change)
    assert cancelled.status_code == 200, cancelled.json
    assert cancelled.json is not None
    assert cancelled.json["status"] == "cancelled"
    assert cancelled.json["closed_at"] == "2027-01-01T00:00:00Z"
    assert NOTE not in cancelled.get_data(as_text=True)
    assert [r.message_type for r in outbox_rows(community)] == ["referral", "referral-status"]
    shown = api("GET", f"{REFERRALS}/{referral_id}").json
    assert shown is not None
    assert shown["timeline"][-1]["note"] == NOTE
    again = api("POST", path, change)
    assert_problem(again, 409, "illegal_transition")
    assert again.json is not None
    assert again.json["allowed"] == []


def test_the_receiver_moves_a_received_referral_on(community: TestNode, clinic: TestNode) -> None:
    api = Api(clinic.client(), token_for(clinic, "referrals:read", "referrals:write"))
    referral_id = store_received(clinic, community)
    listed = api("GET", REFERRALS, query_string={"role": "received"}).json
    assert listed is not None
    assert [r["referral_id"] for r in listed["referrals"]] == [referral_id]
    accepted = api("POST", f"{REFERRALS}/{referral_id}/status", {"status": "accepted"})
    assert accepted.status_code == 200, accepted.json
    assert accepted.json is not None
    assert accepted.json["status"] == "accepted"
    (row,) = outbox_rows(clinic)
    assert (row.message_type, row.state) == ("referral-status", OutboxState.PENDING)
    assert_problem(api("POST", f"{REFERRALS}/{referral_id}/withdrawal"), 400, "invalid_request")
    receipt = api("GET", f"{REFERRALS}/{referral_id}/consent-receipt")
    assert_problem(receipt, 400, "invalid_request")


def test_withdrawal_queues_the_message_and_purges_here(
    api: Api, community: TestNode, clinic: TestNode, service_id: str
) -> None:
    referral_id = created(api, clinic, service_id)["referral_id"]
    path = f"{REFERRALS}/{referral_id}/withdrawal"
    assert_problem(api("POST", path, {"reason": "x"}), 400, "invalid_request")
    withdrawn = api("POST", path, {})
    assert withdrawn.status_code == 200, withdrawn.json
    assert withdrawn.json is not None
    assert withdrawn.json["withdrawn_at"] == "2027-01-01T00:00:00Z"
    assert (withdrawn.json["purged_at"], withdrawn.json["purge_reason"]) == (
        "2027-01-01T00:00:00Z",
        "withdrawn",
    )
    types = [row.message_type for row in outbox_rows(community)]
    assert "consent-withdrawal" in types
    assert_problem(api("POST", path), 409, "conflict")
    shown = api("GET", f"{REFERRALS}/{referral_id}").json
    assert shown is not None
    assert (shown["person"], shown["safe_contact"]) == (None, None)


def test_consent_receipt_as_text_and_html(api: Api, clinic: TestNode, service_id: str) -> None:
    made = created(api, clinic, service_id)
    path = f"{REFERRALS}/{made['referral_id']}/consent-receipt"
    text = api("GET", path)
    assert text.status_code == 200
    assert text.mimetype == "text/plain"
    assert text.headers["Cache-Control"] == "no-store"
    assert made["consent_code"] in text.get_data(as_text=True)
    page = api("GET", path, query_string={"format": "html"})
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    assert page.get_data(as_text=True).startswith("<!DOCTYPE html>")
    for answer in (text, page):
        assert GIVEN_NAME not in answer.get_data(as_text=True)
        assert PHONE not in answer.get_data(as_text=True)
    assert "/query/format" in field_errors(api("GET", path, query_string={"format": "pdf"}))


# --- the OpenAPI document -------------------------------------------------------------------


def test_answers_are_as_documented(
    api: Api, community: TestNode, clinic: TestNode, service_id: str
) -> None:
    document = build_openapi()
    item = REFERRALS + "/{referral_id}"
    made = api("POST", REFERRALS, body(clinic, service_id))
    referral_id = (made.json or {})["referral_id"]
    path = f"{REFERRALS}/{referral_id}"
    cancel = {"status": "cancelled", "reason": {"code": "person-declined"}}
    answers = [
        ("post", REFERRALS, made),
        ("post", REFERRALS, api("POST", REFERRALS, body(clinic, service_id, person=None))),
        ("get", REFERRALS, api("GET", REFERRALS)),
        ("get", REFERRALS, api("GET", REFERRALS, query_string={"limit": "x"})),
        ("get", item, api("GET", path)),
        ("get", item, api("GET", f"{REFERRALS}/{uuid.uuid4()}")),
        ("get", item + "/consent-receipt", api("GET", path + "/consent-receipt")),
        (
            "get",
            item + "/consent-receipt",
            api("GET", path + "/consent-receipt", query_string={"format": "html"}),
        ),
        ("post", item + "/status", api("POST", path + "/status", {"status": "accepted"})),
        ("post", item + "/status", api("POST", path + "/status", cancel)),
        ("post", item + "/withdrawal", api("POST", path + "/withdrawal")),
        ("post", item + "/withdrawal", api("POST", path + "/withdrawal")),
        ("get", item, api("GET", path)),
        ("get", REFERRALS, community.client().get(REFERRALS)),
    ]
    statuses = [response.status_code for _, _, response in answers]
    assert statuses == [201, 400, 200, 400, 200, 404, 200, 200, 409, 200, 200, 409, 200, 401]
    for method, documented, response in answers:
        check_documented(document, method, documented, response)
