"""Status changes made on this node (either side), and the withdrawal of consent."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select

from exchange_node.db.models import AuditEntry, Referral
from exchange_node.errors import ConflictError, InvalidRequestError
from exchange_node.protocol.errors import IllegalTransitionError
from exchange_node.protocol.messages import ReferralStatusChange
from exchange_node.services import peers, referral_store
from exchange_node.services.delivery import deliver_due, deliver_until_idle
from exchange_node.services.referrals import update_status, withdraw
from tests.node.test_referrals_support import (
    create,
    draft,
    mark_delivered,
    open_at,
    outbox_rows,
    receive,
    service_id,
)

if TYPE_CHECKING:
    from tests.node.conftest import TestNode

__all__ = ["service_id"]


def change(test_node: TestNode, reference: str, status: str, **options: Any) -> Referral:
    node = test_node.node
    with node.database.session() as session:
        referral = update_status(
            node, session, reference, status=status, actor="cli", now=node.now(), **options
        )
        session.expunge(referral)
    return referral


def stored(test_node: TestNode, referral: Referral) -> tuple[Referral, list[tuple[Any, ...]]]:
    with test_node.node.database.session() as session:
        row = session.get_one(Referral, referral.id)
        events = [(e.kind, e.status, e.side, e.sequence, e.reason_code) for e in row.events]
        session.expunge_all()
    return row, events


def actions(test_node: TestNode) -> list[tuple[str, str, dict[str, Any]]]:
    with test_node.node.database.session() as session:
        entries = session.scalars(select(AuditEntry).order_by(AuditEntry.seq))
        return [(e.action, e.subject, e.details) for e in entries]


# --- status changes ------------------------------------------------------------------------


def test_the_receiver_accepts_and_the_change_is_queued_for_the_sender(
    community: TestNode, clinic: TestNode, service_id: str
) -> None:
    received = receive(clinic, community, service_id)
    changed = change(clinic, received.referral_id, "accepted", note="Seen on Tuesday")
    assert changed.status == "accepted"
    assert changed.sent_sequence == 1
    row, events = stored(clinic, received)
    assert events[-1] == ("status", "accepted", "receiver", 1, None)
    [message] = outbox_rows(clinic, "referral-status")
    body = open_at(community, clinic, message.envelope or "").body
    assert isinstance(body, ReferralStatusChange)
    assert (body.referral_id, body.status, body.sequence) == (received.referral_id, "accepted", 1)
    assert (body.changed_at, body.note) == ("2027-01-01T00:00:00Z", "Seen on Tuesday")
    with clinic.node.database.session() as session:
        event = session.get_one(Referral, received.id).events[-1]
        assert event.sealed_text is not None
        assert b"Tuesday" not in event.sealed_text
        text = referral_store.open_event_text(clinic.node.data_key, row, event)
    assert text == {"note": "Seen on Tuesday"}
    assert actions(clinic)[-1] == (
        "referral.status_changed",
        received.referral_id,
        {"peer": community.url, "status": "accepted", "side": "receiver", "sequence": 1},
    )


def test_sequences_count_up_per_sending_side(
    community: TestNode, clinic: TestNode, service_id: str
) -> None:
    received = receive(clinic, community, service_id)
    change(clinic, received.referral_id, "accepted")
    change(clinic, received.referral_id, "in-progress")
    done = change(clinic, received.referral_id, "completed")
    assert (done.status, done.sent_sequence, done.closed_at) == ("completed", 3, clinic.node.now())
    sequences = []
    for row in outbox_rows(clinic, "referral-status"):
        body = open_at(community, clinic, row.envelope or "").body
        assert isinstance(body, ReferralStatusChange)
        sequences.append((body.status, body.sequence))
    assert sequences == [("accepted", 1), ("in-progress", 2), ("completed", 3)]


def test_an_illegal_change_names_the_allowed_ones(
    community: TestNode, clinic: TestNode, service_id: str
) -> None:
    received = receive(clinic, community, service_id)
    with pytest.raises(IllegalTransitionError) as caught:
        change(clinic, received.referral_id, "completed")
    assert caught.value.allowed == ("accepted", "rejected", "entered-in-error")
    assert "accepted, rejected, entered-in-error" in caught.value.detail
    assert outbox_rows(clinic) == []


def test_the_wrong_side_is_refused(community: TestNode, clinic: TestNode, service_id: str) -> None:
    sent = create(community, draft(clinic, service_id))
    with pytest.raises(IllegalTransitionError, match="only the receiver") as caught:
        change(community, sent.referral_id, "accepted")
    assert caught.value.allowed == ("cancelled",)
    assert [row.message_type for row in outbox_rows(community)] == ["referral"]


@pytest.mark.parametrize(
    ("status", "options", "pointer"),
    [
        ("rejected", {}, "/reason/code"),
        ("rejected", {"reason_code": "other"}, "/reason/text"),
        ("rejected", {"reason_code": "too-busy"}, "/reason/code"),
        ("accepted", {"reason_text": "because"}, "/reason/code"),
        ("accepted", {"note": "x" * 1001}, "/note"),
    ],
)
def test_reasons_are_required_and_checked(
    community: TestNode,
    clinic: TestNode,
    service_id: str,
    status: str,
    options: dict[str, Any],
    pointer: str,
) -> None:
    received = receive(clinic, community, service_id)
    with pytest.raises(InvalidRequestError) as caught:
        change(clinic, received.referral_id, status, **options)
    assert list(caught.value.fields) == [pointer]
    assert stored(clinic, received)[0].status == "requested"


def test_a_rejection_carries_its_reason(
    community: TestNode, clinic: TestNode, service_id: str
) -> None:
    received = receive(clinic, community, service_id)
    change(clinic, received.referral_id, "rejected", reason_code="other", reason_text="Moved away")
    [row] = outbox_rows(clinic, "referral-status")
    body = open_at(community, clinic, row.envelope or "").body
    assert isinstance(body, ReferralStatusChange)
    assert (body.reason_code, body.reason_text) == ("other", "Moved away")
    assert stored(clinic, received)[1][-1] == ("status", "rejected", "receiver", 1, "other")


def test_a_purged_referral_changes_status_only_without_text(
    community: TestNode, clinic: TestNode, service_id: str
) -> None:
    received = receive(clinic, community, service_id)
    with clinic.node.database.session() as session:
        referral = session.get_one(Referral, received.id)
        referral_store.purge(session, referral, now=clinic.node.now(), reason="retention")
    with pytest.raises(ConflictError, match="purged"):
        change(clinic, received.referral_id, "accepted", note="hello")
    assert change(clinic, received.referral_id, "accepted").status == "accepted"


# --- withdrawal ----------------------------------------------------------------------------


def test_withdrawing_a_delivered_referral_cancels_it_first_then_purges(
    community: TestNode, clinic: TestNode, service_id: str
) -> None:
    sent = create(community, draft(clinic, service_id))
    [referral_row] = outbox_rows(community)
    mark_delivered(community, referral_row.id)
    with community.node.database.session() as session:
        withdraw(community.node, session, sent.referral_id, actor="cli", now=community.node.now())
    row, events = stored(community, sent)
    assert row.status == "cancelled"
    assert (row.withdrawn_at, row.purged_at) == (community.node.now(), community.node.now())
    assert (row.sealed, row.purge_reason) == (None, "withdrawn")
    assert events == [
        ("status", "requested", "sender", None, None),
        ("status", "cancelled", "sender", 1, "person-declined"),
        ("withdrawn", None, None, None, None),
        ("purged", None, None, None, "withdrawn"),
    ]
    messages = outbox_rows(community)
    assert [(m.message_type, m.state) for m in messages] == [
        ("referral", "delivered"),
        ("referral-status", "pending"),
        ("consent-withdrawal", "pending"),
    ]
    assert row.withdrawal_jti == messages[2].jti
    cancel = open_at(clinic, community, messages[1].envelope or "").body
    assert isinstance(cancel, ReferralStatusChange)
    assert (cancel.status, cancel.reason_code, cancel.sequence) == (
        "cancelled",
        "person-declined",
        1,
    )
    withdrawal = open_at(clinic, community, messages[2].envelope or "")
    assert withdrawal.message_type == "consent-withdrawal"
    assert withdrawal.jti == row.withdrawal_jti
    logged = [(action, details) for action, subject, details in actions(community)[-3:]]
    assert logged == [
        (
            "referral.status_changed",
            {"peer": clinic.url, "status": "cancelled", "side": "sender", "sequence": 1},
        ),
        ("referral.withdrawn", {"peer": clinic.url, "consent_id": sent.consent_id}),
        ("data.purged", {"reason": "withdrawn", "role": "sent"}),
    ]


def test_withdrawing_an_undelivered_referral_cancels_its_message(
    community: TestNode, clinic: TestNode, service_id: str
) -> None:
    sent = create(community, draft(clinic, service_id))
    with community.node.database.session() as session:
        withdraw(community.node, session, sent.referral_id, actor="cli", now=community.node.now())
    row, _ = stored(community, sent)
    assert (row.status, row.purge_reason) == ("cancelled", "withdrawn")
    assert row.closed_at == community.node.now()
    messages = outbox_rows(community)
    assert [(m.message_type, m.state) for m in messages] == [
        ("referral", "cancelled"),
        ("consent-withdrawal", "pending"),
    ]
    assert (messages[0].envelope, messages[0].sealed_body) == (None, None)


def test_a_closed_referral_is_withdrawn_without_a_cancel(
    community: TestNode, clinic: TestNode, service_id: str
) -> None:
    sent = create(community, draft(clinic, service_id))
    [referral_row] = outbox_rows(community)
    mark_delivered(community, referral_row.id)
    change(community, sent.referral_id, "cancelled", reason_code="person-declined")
    with community.node.database.session() as session:
        withdraw(community.node, session, sent.referral_id, actor="cli", now=community.node.now())
    kinds = [m.message_type for m in outbox_rows(community)]
    assert kinds == ["referral", "referral-status", "consent-withdrawal"]


def test_withdrawing_twice_or_a_received_referral_is_refused(
    community: TestNode, clinic: TestNode, service_id: str
) -> None:
    sent = create(community, draft(clinic, service_id))
    node = community.node
    with node.database.session() as session:
        withdraw(node, session, sent.referral_id, actor="cli", now=node.now())
    with pytest.raises(ConflictError, match="already withdrawn"), node.database.session() as s:
        withdraw(node, s, sent.referral_id, actor="cli", now=node.now())
    received = receive(clinic, community, service_id)
    with (
        pytest.raises(InvalidRequestError, match="only the referring node"),
        clinic.node.database.session() as session,
    ):
        withdraw(clinic.node, session, received.referral_id, actor="cli", now=node.now())


def test_a_withdrawal_is_not_stopped_by_a_suspended_peer(
    community: TestNode, clinic: TestNode, service_id: str
) -> None:
    """The person's withdrawal takes effect here at once; the messages wait for the peer."""
    sent = create(community, draft(clinic, service_id))
    assert deliver_until_idle(community.node).delivered == 1  # the clinic holds it
    with community.node.database.session() as session:
        peers.change_status(community.node, session, clinic.url, "suspended")
    with community.node.database.session() as session:
        withdraw(community.node, session, sent.referral_id, actor="cli", now=community.node.now())
    row, _ = stored(community, sent)
    assert (row.status, row.sealed, row.purge_reason) == ("cancelled", None, "withdrawn")
    queued = [(m.message_type, m.state) for m in outbox_rows(community)]
    assert queued == [
        ("referral", "delivered"),
        ("referral-status", "pending"),
        ("consent-withdrawal", "pending"),
    ]
    assert deliver_due(community.node).delivered == 0  # nothing goes to a suspended peer
    with community.node.database.session() as session:
        peers.change_status(community.node, session, clinic.url, "trusted")
    community.node.clock.advance(2)  # type: ignore[attr-defined]
    deliver_until_idle(community.node)
    assert [m.state for m in outbox_rows(community)][1:] == ["delivered", "delivered"]
    with clinic.node.database.session() as session:
        [held] = session.scalars(select(Referral)).all()
        assert (held.status, held.sealed, held.purge_reason) == ("cancelled", None, "withdrawn")
