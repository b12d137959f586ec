"""Delivering the outbox, continued: order per referral, leases after a crash, a purge during
an attempt, several workers at once, and one referral through the real inbox."""

from __future__ import annotations

import threading
import uuid
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import func, select

from exchange_node.db.models import InboxMessage, OutboxMessage, OutboxState, Referral
from exchange_node.protocol.messages import format_timestamp
from exchange_node.protocol.statements import verify_receipt
from exchange_node.services import referral_store
from exchange_node.services.delivery import (
    DeliveryReport,
    claim_due,
    deliver_due,
    deliver_until_idle,
    lease_seconds,
)
from exchange_node.transport import HttpResponse
from tests.node.test_delivery import (
    ScriptedInbox,
    make_referral,
    message_jti,
    problem,
    queue,
    receipt_answer,
    row_of,
)
from tests.node.test_delivery import (
    inbox as inbox,  # the fixture
)
from tests.protocol import factories

if TYPE_CHECKING:
    from tests.node.conftest import TestClock, TestNode


def status_body(referral_id: str = "ref-1", sequence: int = 1) -> dict[str, Any]:
    reason = {"code": "person-declined"}
    return factories.status_change(
        referral_id=referral_id, status="cancelled", sequence=sequence, reason=reason
    )


def test_messages_about_one_referral_go_in_the_order_they_were_queued(
    community: TestNode, clinic: TestNode, inbox: ScriptedInbox, clock: TestClock
) -> None:
    referral_pk = make_referral(community, clinic)
    first = queue(community, clinic, referral_pk)
    second = queue(community, clinic, referral_pk, "referral-status", status_body())
    other = queue(community, clinic, make_referral(community, clinic, "ref-2"))
    envelopes = [row_of(community, row).envelope for row in (first, other)]
    refuse, receipt = problem(400, "expired"), inbox.receipt  # the first waits; peer is up
    inbox.receipt = lambda body: refuse(body) if body.decode() == envelopes[0] else receipt(body)

    report = deliver_due(community.node)
    assert (report.claimed, report.delivered, report.retried) == (2, 1, 1)
    assert sorted(post.decode() for post in inbox.posts) == sorted(filter(None, envelopes))
    assert row_of(community, second).attempts == 0  # not attempted before the first

    inbox.receipt = receipt
    clock.advance(row_of(community, first).next_attempt_at - clock())
    report = deliver_until_idle(community.node)
    assert report.delivered == 2
    sent = [message_jti(community, post) for post in inbox.posts[2:]]
    assert sent == [row_of(community, first).jti, row_of(community, second).jti]


def test_a_failed_message_lets_the_next_one_about_its_referral_go(
    community: TestNode, clinic: TestNode, inbox: ScriptedInbox
) -> None:
    referral_pk = make_referral(community, clinic)
    first = queue(community, clinic, referral_pk)
    second = queue(community, clinic, referral_pk, "referral-status", status_body())
    inbox.answers.append(problem(422, "invalid_body"))
    report = deliver_until_idle(community.node)
    assert (report.delivered, report.failed) == (1, 1)
    assert row_of(community, first).state == OutboxState.FAILED
    assert row_of(community, second).state == OutboxState.DELIVERED


def test_a_claim_abandoned_by_a_crash_is_delivered_once_its_lease_ends(
    community: TestNode, clinic: TestNode, inbox: ScriptedInbox, clock: TestClock
) -> None:
    row_id = queue(community, clinic)
    node = community.node
    with node.database.session() as session:  # a worker claims, then dies
        assert claim_due(node, session, now=clock(), limit=10) == [row_id]
    assert row_of(community, row_id).lease_until == clock() + lease_seconds(node)

    assert deliver_due(node) == DeliveryReport()  # leased: nobody else takes it
    clock.advance(lease_seconds(node))
    assert deliver_due(node) == DeliveryReport()  # the lease ends after lease_until
    clock.advance(1)
    assert deliver_due(node).delivered == 1
    assert deliver_due(node) == DeliveryReport()
    assert len(inbox.posts) == 1


def test_an_attempt_that_could_outlast_its_lease_is_not_started(
    community: TestNode,
    clinic: TestNode,
    inbox: ScriptedInbox,
    clock: TestClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A slow peer: the second row's lease would end during its attempt, so it is given
    back untouched (another worker may claim it by then), and goes in the next call."""
    node = community.node
    monkeypatch.setattr(node, "settings", replace(node.settings, delivery_concurrency=1))
    first, second = queue(community, clinic), queue(community, clinic)
    receipt = inbox.receipt

    def slow(body: bytes) -> HttpResponse:
        clock.advance(lease_seconds(node) - 2 * int(node.settings.http_timeout_seconds) + 1)
        return receipt(body)

    inbox.receipt = slow
    report = deliver_due(node)
    assert (report.claimed, report.delivered, report.retried) == (2, 1, 0)
    waiting = row_of(community, second)
    assert (waiting.state, waiting.attempts, waiting.lease_until) == (OutboxState.PENDING, 0, None)
    assert row_of(community, first).state == OutboxState.DELIVERED
    inbox.receipt = receipt
    assert deliver_due(node).delivered == 1
    assert len(inbox.posts) == 2


def test_a_purge_during_the_attempt_wins(
    community: TestNode, clinic: TestNode, inbox: ScriptedInbox
) -> None:
    """The receipt arrives after the referral was purged: the row stays cancelled, empty."""
    referral_pk = make_referral(community, clinic)
    row_id = queue(community, clinic, referral_pk)
    receipt = receipt_answer(community, clinic)

    def purge_then_answer(body: bytes) -> HttpResponse:
        answer = receipt(body)
        with community.node.database.session() as session:
            referral = session.get_one(Referral, referral_pk)
            referral_store.purge(session, referral, now=community.node.now(), reason="withdrawn")
        return answer

    inbox.answers.append(purge_then_answer)
    assert deliver_due(community.node).delivered == 0
    row = row_of(community, row_id)
    assert (row.state, row.receipt, row.sealed_body) == (OutboxState.CANCELLED, None, None)


def test_two_workers_at_once_post_every_message_exactly_once(
    community: TestNode, clinic: TestNode, inbox: ScriptedInbox
) -> None:
    """Several workers on one database (FOR UPDATE SKIP LOCKED on PostgreSQL, the write
    lock and a conditional lease on SQLite) never claim the same row."""
    rows = [queue(community, clinic, make_referral(community, clinic, f"r-{i}")) for i in range(50)]
    jtis = {row_of(community, row_id).jti for row_id in rows}
    inbox.delay = 0.005  # attempts overlap
    reports: list[DeliveryReport] = []
    barrier = threading.Barrier(2)

    def work() -> None:
        barrier.wait()
        total = DeliveryReport()
        for _ in range(10):
            total += deliver_due(community.node, limit=7)
        reports.append(total)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    posted = [message_jti(community, post) for post in inbox.posts]
    assert sorted(posted) == sorted(jtis)  # each exactly once
    assert sum(report.delivered for report in reports) == 50
    assert all(report.claimed for report in reports)  # both workers took part
    with community.node.database.session() as session:
        states = session.scalars(select(OutboxMessage.state).distinct()).all()
        assert states == [OutboxState.DELIVERED]


# --- through the real inbox ------------------------------------------------------------


def referral_body(receiver: TestNode, service_id: str) -> dict[str, Any]:
    """A referral as SPEC 5.7 shapes it, for the service ``receiver`` published."""
    now = receiver.node.now()
    return {
        "referral_id": str(uuid.uuid4()),
        "service_id": service_id,
        "capacity_version": 1,
        "person": {"given_name": "Sam", "phone": "+44 7700 900123"},
        "consent": {
            "consent_id": str(uuid.uuid4()),
            "given_by": "self",
            "recipient": receiver.url,
            "service_id": service_id,
            "data_categories": ["identity", "contact"],
            "purpose": "Referral to the service, and follow-up on its outcome.",
            "method": "verbal",
            "captured_by": "staff-0042",
            "captured_at": format_timestamp(now - 600),
            "expires_at": format_timestamp(now + 90 * 86_400),
        },
        "safe_contact": {
            "channels": ["sms", "phone-call"],
            "voicemail_allowed": False,
            "may_name_organization": False,
        },
    }


def test_a_referral_is_delivered_to_the_clinics_inbox_with_its_signed_receipt(
    community: TestNode, clinic: TestNode, clock: TestClock
) -> None:
    body = referral_body(clinic, clinic.publish())
    row_id = queue(community, clinic, body=body)
    envelope = row_of(community, row_id).envelope
    assert envelope is not None
    assert deliver_due(community.node).delivered == 1

    row = row_of(community, row_id)
    assert row.state == OutboxState.DELIVERED
    assert row.receipt is not None
    receipt = verify_receipt(
        row.receipt,
        issuer=clinic.url,
        issuer_keys=[clinic.signing_key.public()],
        audience=community.url,
        envelope=envelope,
        message_jti=row.jti,
        now=clock(),
    )
    assert receipt.message_jti == row.jti
    with clinic.node.database.session() as session:
        held = session.scalars(select(Referral).where(Referral.referral_id == body["referral_id"]))
        assert held.one().status == "requested"
        assert session.scalar(select(func.count()).select_from(InboxMessage)) == 1
