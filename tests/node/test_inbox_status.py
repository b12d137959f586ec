"""The inbox applying status changes, withdrawals and deletion receipts (SPEC 7.3, 5.8-5.10).

The community referred a person to the clinic: the clinic holds the referral as
``received`` (delivered through its inbox), the community as ``sent`` (stored here
directly, as sending is not under test). Each side then posts what it may send.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select

from exchange_node.db.models import OutboxMessage, Peer, Referral, ReferralEvent
from exchange_node.protocol.messages import format_timestamp
from exchange_node.services import outbox, referral_store
from tests.conftest import NOW
from tests.node.test_inbox import (
    actions,
    count,
    held,
    post,
    referral_body,
    refused,
    seal,
)

if TYPE_CHECKING:  # imported by name, pytest would try to collect the Test* classes
    from tests.node.conftest import TestNode

RECEIVER_CHOICES_FROM_ACCEPTED = [
    "in-progress",
    "on-hold",
    "completed",
    "failed",
    "entered-in-error",
]


@pytest.fixture
def referral(community: TestNode, clinic: TestNode) -> dict[str, Any]:
    """A referral the clinic received from the community and the community holds as sent."""
    body = referral_body(clinic, clinic.publish())
    assert post(community, clinic, seal(community, clinic, "referral", body).token).status == 202
    store_sent(community, clinic, body)
    return body


def store_sent(sender: TestNode, receiver: TestNode, body: dict[str, Any]) -> None:
    now = sender.node.now()
    with sender.node.database.session() as session:
        peer_id = session.scalars(select(Peer.id).where(Peer.entity_id == receiver.url)).one()
        session.add(
            Referral(
                referral_id=body["referral_id"],
                role="sent",
                peer_id=peer_id,
                service_id=body["service_id"],
                status="requested",
                consent_id=body["consent"]["consent_id"],
                consent_expires_at=now + 86_400,
                created_by="cli",
                created_at=now,
                updated_at=now,
            )
        )


def status(
    referral_id: str, new: str, sequence: int, *, reason: str | None = None, note: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "referral_id": referral_id,
        "status": new,
        "sequence": sequence,
        "changed_at": "2027-01-01T00:00:00Z",
    }
    if reason is not None:
        body["reason"] = {"code": reason}
    if note is not None:
        body["note"] = note
    return body


def send_status(sender: TestNode, receiver: TestNode, body: dict[str, Any]) -> Any:
    return post(sender, receiver, seal(sender, receiver, "referral-status", body).token)


def withdrawal(referral: dict[str, Any], consent_id: str | None = None) -> dict[str, Any]:
    return {
        "referral_id": referral["referral_id"],
        "consent_id": consent_id or referral["consent"]["consent_id"],
        "withdrawn_at": "2027-01-01T00:00:00Z",
    }


def outbox_rows(test_node: TestNode) -> list[OutboxMessage]:
    with test_node.node.database.session() as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


# --- status changes ------------------------------------------------------------------------


def test_sender_cancels_and_its_note_is_sealed(
    community: TestNode, clinic: TestNode, referral: dict[str, Any]
) -> None:
    body = status(referral["referral_id"], "cancelled", 1, reason="person-declined", note="Moved")
    assert send_status(community, clinic, body).status == 202

    stored = held(clinic, referral["referral_id"])
    assert (stored.status, stored.received_sequence, stored.closed_at) == ("cancelled", 1, NOW)
    event = stored.events[-1]
    assert (event.status, event.side, event.sequence, event.reason_code) == (
        "cancelled",
        "sender",
        1,
        "person-declined",
    )
    assert event.sealed_text is not None
    assert b"Moved" not in event.sealed_text
    opened = referral_store.open_event_text(clinic.node.data_key, stored, event)
    assert opened == {"note": "Moved"}
    assert actions(clinic)[-1] == "referral.status_changed"


def test_an_old_sequence_is_a_duplicate(
    community: TestNode, clinic: TestNode, referral: dict[str, Any]
) -> None:
    body = status(referral["referral_id"], "cancelled", 1, reason="person-declined")
    assert send_status(community, clinic, body).status == 202
    again = send_status(community, clinic, body)  # re-sealed: a new jti, the same sequence
    assert again.status == 202
    assert len(held(clinic, referral["referral_id"]).events) == 2  # requested, cancelled


def test_sender_may_not_make_the_receivers_change(
    community: TestNode, clinic: TestNode, referral: dict[str, Any]
) -> None:
    response = send_status(community, clinic, status(referral["referral_id"], "accepted", 1))
    problem = refused(response, 409, "illegal_transition")
    assert problem["allowed"] == ["cancelled"]
    assert held(clinic, referral["referral_id"]).status == "requested"


def test_receiver_moves_the_senders_referral_on_and_is_held_to_the_table(
    community: TestNode, clinic: TestNode, referral: dict[str, Any]
) -> None:
    referral_id = referral["referral_id"]
    assert send_status(clinic, community, status(referral_id, "accepted", 1)).status == 202
    stored = held(community, referral_id)
    assert (stored.role, stored.status, stored.received_sequence) == ("sent", "accepted", 1)
    assert stored.events[-1].side == "receiver"

    illegal = send_status(
        clinic, community, status(referral_id, "rejected", 2, reason="no-capacity")
    )
    assert refused(illegal, 409, "illegal_transition")["allowed"] == (
        RECEIVER_CHOICES_FROM_ACCEPTED
    )
    wrong_side = send_status(
        clinic, community, status(referral_id, "cancelled", 2, reason="person-declined")
    )
    assert refused(wrong_side, 409, "illegal_transition")["allowed"] == (
        RECEIVER_CHOICES_FROM_ACCEPTED
    )
    assert send_status(clinic, community, status(referral_id, "completed", 2)).status == 202
    assert held(community, referral_id).status == "completed"


def test_status_of_a_referral_not_held_is_illegal(community: TestNode, clinic: TestNode) -> None:
    response = send_status(community, clinic, status(str(uuid.uuid4()), "accepted", 1))
    assert refused(response, 409, "illegal_transition")["allowed"] == []


# --- withdrawal ------------------------------------------------------------------------------


def test_withdrawal_purges_and_queues_a_deletion_receipt(
    community: TestNode, clinic: TestNode, referral: dict[str, Any]
) -> None:
    referral_id = referral["referral_id"]
    cancel = status(referral_id, "cancelled", 1, reason="person-declined", note="Moved")
    assert send_status(community, clinic, cancel).status == 202
    sealed = seal(community, clinic, "consent-withdrawal", withdrawal(referral))
    clinic.node.outbox_signal.clear()

    assert post(community, clinic, sealed.token).status == 202

    stored = held(clinic, referral_id)
    assert stored.sealed is None
    assert (stored.purge_reason, stored.withdrawal_jti) == ("withdrawn", sealed.jti)
    assert stored.withdrawn_at == NOW
    assert stored.purged_at == clinic.node.now()
    assert [event.sealed_text for event in stored.events] == [None] * len(stored.events)
    assert [event.kind for event in stored.events] == [
        "status",
        "status",
        "withdrawn",
        "purged",
    ]
    assert actions(clinic)[-2:] == ["referral.withdrawn", "data.purged"]
    (row,) = outbox_rows(clinic)
    assert (row.message_type, row.state, row.referral_pk) == (
        "deletion-receipt",
        "pending",
        stored.id,
    )
    assert clinic.node.data_key.open_json(
        row.sealed_body or b"", context=outbox.body_context(row)
    ) == {
        "referral_id": referral_id,
        "consent_id": referral["consent"]["consent_id"],
        "withdrawal_jti": sealed.jti,
        "deleted_at": format_timestamp(clinic.node.now()),
    }
    assert clinic.node.outbox_signal.is_set()


def test_second_withdrawal_is_a_duplicate(
    community: TestNode, clinic: TestNode, referral: dict[str, Any]
) -> None:
    for _ in range(2):  # two envelopes, two jtis
        sealed = seal(community, clinic, "consent-withdrawal", withdrawal(referral))
        assert post(community, clinic, sealed.token).status == 202
    assert len(outbox_rows(clinic)) == 1
    assert actions(clinic).count("referral.withdrawn") == 1


def test_withdrawal_of_another_consent_is_invalid(
    community: TestNode, clinic: TestNode, referral: dict[str, Any]
) -> None:
    body = withdrawal(referral, consent_id=str(uuid.uuid4()))
    response = post(community, clinic, seal(community, clinic, "consent-withdrawal", body).token)
    assert refused(response, 422, "invalid_body")["errors"] == {
        "/body/consent_id": ["not the consent of this referral"]
    }
    assert held(clinic, referral["referral_id"]).sealed is not None
    assert outbox_rows(clinic) == []


def test_withdrawal_of_a_referral_not_held_is_still_answered(
    community: TestNode, clinic: TestNode
) -> None:
    unknown = {"referral_id": str(uuid.uuid4()), "consent": {"consent_id": str(uuid.uuid4())}}
    for _ in range(2):
        sealed = seal(community, clinic, "consent-withdrawal", withdrawal(unknown))
        assert post(community, clinic, sealed.token).status == 202
    (row,) = outbox_rows(clinic)
    assert (row.message_type, row.referral_pk) == ("deletion-receipt", None)


def test_a_note_arriving_after_the_purge_is_not_stored(
    community: TestNode, clinic: TestNode, referral: dict[str, Any]
) -> None:
    withdrawn = seal(community, clinic, "consent-withdrawal", withdrawal(referral))
    assert post(community, clinic, withdrawn.token).status == 202
    cancel = status(referral["referral_id"], "cancelled", 1, reason="person-declined", note="X")
    assert send_status(community, clinic, cancel).status == 202
    stored = held(clinic, referral["referral_id"])
    assert stored.status == "cancelled"
    assert all(event.sealed_text is None for event in stored.events)


# --- deletion receipts ---------------------------------------------------------------------


def test_deletion_receipt_is_recorded_on_the_sent_referral(
    community: TestNode, clinic: TestNode, referral: dict[str, Any]
) -> None:
    """The clinic's queued receipt, delivered by hand, confirms the deletion at the community."""
    referral_id = referral["referral_id"]
    sealed = seal(community, clinic, "consent-withdrawal", withdrawal(referral))
    with community.node.database.session() as session:
        sent = session.scalars(select(Referral).where(Referral.referral_id == referral_id)).one()
        sent.withdrawal_jti = sealed.jti
    assert post(community, clinic, sealed.token).status == 202
    (row,) = outbox_rows(clinic)

    assert post(clinic, community, row.envelope or "").status == 202

    stored = held(community, referral_id)
    assert stored.peer_deleted_at == clinic.node.now()
    assert stored.events[-1].kind == "deleted-at-peer"
    assert actions(community)[-1] == "referral.deletion_confirmed"


def test_deletion_receipt_matching_no_withdrawal_has_no_effect(
    community: TestNode, clinic: TestNode, referral: dict[str, Any]
) -> None:
    body = {
        "referral_id": referral["referral_id"],
        "consent_id": referral["consent"]["consent_id"],
        "withdrawal_jti": "NoSuchWithdrawal000000",
        "deleted_at": "2027-01-01T00:00:00Z",
    }
    events = count(community, ReferralEvent)
    response = post(clinic, community, seal(clinic, community, "deletion-receipt", body).token)
    assert response.status == 202
    assert held(community, referral["referral_id"]).peer_deleted_at is None
    assert count(community, ReferralEvent) == events
