"""Finding, listing and describing referrals; personal data only when asked for."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import update

from exchange_node.db.models import OutboxMessage, Referral
from exchange_node.errors import InvalidRequestError, NotFoundError
from exchange_node.services.referrals import describe, find_referral, list_referrals, withdraw
from tests.node.test_referrals_support import (
    CONTACT_NOTES,
    GIVEN_NAME,
    PHONE,
    create,
    draft,
    mark_delivered,
    outbox_rows,
    receive,
    service_id,
)

if TYPE_CHECKING:
    from tests.node.conftest import TestNode

__all__ = ["service_id"]


def found(test_node: TestNode, reference: str) -> str:
    with test_node.node.database.session() as session:
        return find_referral(session, reference).referral_id


def test_a_referral_is_found_by_id_prefix_or_consent_code(
    community: TestNode, clinic: TestNode, service_id: str
) -> None:
    sent = create(community, draft(clinic, service_id))
    code = sent.consent_code or ""
    for reference in (sent.referral_id, sent.referral_id[:8], code, code.lower(), f" {code} "):
        assert found(community, reference) == sent.referral_id


@pytest.mark.parametrize(
    ("reference", "error", "match"),
    [
        ("0000000000", NotFoundError, "no referral"),
        ("abc", InvalidRequestError, "at least 8"),
        ("../etc", InvalidRequestError, "named by its id"),
        ("ZZZZ-ZZZZ", NotFoundError, "no referral"),
    ],
)
def test_a_bad_reference_is_refused(
    community: TestNode, reference: str, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        found(community, reference)


def test_a_prefix_naming_two_referrals_is_ambiguous(
    community: TestNode, clinic: TestNode, service_id: str
) -> None:
    first = create(community, draft(clinic, service_id))
    second = create(community, draft(clinic, service_id))
    with community.node.database.session() as session:
        session.execute(
            update(Referral)
            .where(Referral.id == second.id)
            .values(referral_id=first.referral_id[:10] + "0" * 26)
        )
    with pytest.raises(InvalidRequestError, match="more than one"):
        found(community, first.referral_id[:10])


def test_list_filters_by_role_and_status_newest_first(
    community: TestNode, clinic: TestNode, service_id: str
) -> None:
    first = create(community, draft(clinic, service_id))
    second = create(community, draft(clinic, service_id))
    receive(community, clinic, service_id)
    with community.node.database.session() as session:
        sent = [r.referral_id for r in list_referrals(session, role="sent")]
        received = list_referrals(session, role="received")
        none = list_referrals(session, status="accepted")
        with pytest.raises(InvalidRequestError):
            list_referrals(session, limit=0)
    assert sent == [second.referral_id, first.referral_id]
    assert [r.role for r in received] == ["received"]
    assert none == []


def test_describe_without_personal_data(
    community: TestNode, clinic: TestNode, service_id: str
) -> None:
    sent = create(community, draft(clinic, service_id))
    with community.node.database.session() as session:
        shown = describe(community.node, session.get_one(Referral, sent.id), personal=False)
    text = json.dumps(shown)
    for secret in (GIVEN_NAME, PHONE, CONTACT_NOTES):
        assert secret not in text
    assert "person" not in shown
    assert shown["peer"] == {"entity_id": clinic.url, "organization": "Clinic"}
    assert (shown["role"], shown["status"], shown["consent_code"]) == (
        "sent",
        "requested",
        sent.consent_code,
    )
    assert shown["service_name"] == "Youth drop-in"
    assert shown["created_at"] == "2027-01-01T00:00:00Z"
    assert shown["delivery"]["state"] == "pending"
    assert shown["delivery"]["attempts"] == 0
    assert shown["timeline"] == [
        {
            "time": "2027-01-01T00:00:00Z",
            "kind": "status",
            "status": "requested",
            "side": "sender",
            "sequence": None,
            "reason_code": None,
        }
    ]
    assert shown["failed_messages"] == []


def test_describe_with_personal_data_and_after_the_purge(
    community: TestNode, clinic: TestNode, service_id: str
) -> None:
    sent = create(community, draft(clinic, service_id))
    node = community.node
    with node.database.session() as session:
        shown = describe(node, session.get_one(Referral, sent.id), personal=True)
    assert shown["person"] == {"given_name": GIVEN_NAME, "phone": PHONE}
    assert shown["safe_contact"]["notes"] == CONTACT_NOTES
    assert shown["consent"]["data_categories"] == ["identity", "contact"]
    assert shown["timeline"][0]["note"] is None
    mark_delivered(community, outbox_rows(community)[0].id)
    with node.database.session() as session:
        withdraw(node, session, sent.referral_id, actor="cli", now=node.now())
        after = describe(node, session.get_one(Referral, sent.id), personal=True)
    assert (after["person"], after["consent"], after["safe_contact"]) == (None, None, None)
    assert after["withdrawn_at"] == after["purged_at"] == "2027-01-01T00:00:00Z"
    assert after["purge_reason"] == "withdrawn"
    assert after["status"] == "cancelled"
    assert [m["message_type"] for m in after["messages"]] == [
        "referral",
        "referral-status",
        "consent-withdrawal",
    ]
    assert after["delivery"]["state"] == "delivered"


def test_describe_shows_failed_messages_and_the_peer_deletion(
    community: TestNode, clinic: TestNode, service_id: str
) -> None:
    sent = create(community, draft(clinic, service_id))
    with community.node.database.session() as session:
        session.execute(
            update(OutboxMessage).values(
                state="failed", attempts=3, last_error_code="field_not_requested"
            )
        )
        session.execute(update(Referral).values(peer_deleted_at=community.node.now()))
    with community.node.database.session() as session:
        shown = describe(community.node, session.get_one(Referral, sent.id), personal=False)
    assert shown["delivery"]["state"] == "failed"
    [failed] = shown["failed_messages"]
    assert (failed["message_type"], failed["last_error_code"]) == (
        "referral",
        "field_not_requested",
    )
    assert shown["peer_deleted_at"] == "2027-01-01T00:00:00Z"


def test_a_received_referral_shows_no_consent_code(
    community: TestNode, clinic: TestNode, service_id: str
) -> None:
    received = receive(clinic, community, service_id)
    with clinic.node.database.session() as session:
        shown = describe(clinic.node, session.get_one(Referral, received.id), personal=True)
    assert shown["consent_code"] is None
    assert shown["delivery"] is None
    assert shown["person"]["given_name"] == GIVEN_NAME
