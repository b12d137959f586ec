"""Delivering the outbox, re-sealing (SPEC 7.5): an envelope past its ``exp``, a peer saying
``expired`` or ``decryption_failed``, and a consent that expired before the re-seal."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from exchange_node.db.models import OutboxState, Referral
from exchange_node.services.delivery import DeliveryReport, deliver_due
from tests.node.test_delivery import (
    LIFETIME,
    ScriptedInbox,
    counts,
    make_referral,
    message_jti,
    peer_row,
    problem,
    queue,
    row_of,
)
from tests.node.test_delivery import inbox as inbox  # the fixture
from tests.protocol import factories

if TYPE_CHECKING:
    from tests.node.conftest import TestClock, TestNode


def test_an_expired_envelope_is_resealed_and_the_old_jti_never_sent_again(
    community: TestNode, clinic: TestNode, inbox: ScriptedInbox, clock: TestClock
) -> None:
    referral_pk = make_referral(community, clinic)
    body = {
        "referral_id": "ref-1",
        "consent_id": "consent-1",
        "withdrawn_at": "2027-01-01T00:00:00Z",
    }
    row_id = queue(community, clinic, referral_pk, "consent-withdrawal", body)
    old = row_of(community, row_id)
    with community.node.database.session() as session:
        session.get_one(Referral, referral_pk).withdrawal_jti = old.jti
    inbox.answers.append(problem(500, None))
    deliver_due(community.node)
    clock.advance(LIFETIME)
    assert counts(deliver_due(community.node)) == (1, 0, 0, 1)

    row = row_of(community, row_id)
    assert row.jti != old.jti
    assert row.expires_at == clock() + LIFETIME
    assert inbox.posts[0] == (old.envelope or "").encode()
    assert inbox.posts[1] != inbox.posts[0]
    assert message_jti(community, inbox.posts[1]) == row.jti
    with community.node.database.session() as session:  # the deletion receipt will name it
        assert session.get_one(Referral, referral_pk).withdrawal_jti == row.jti
    assert deliver_due(community.node) == DeliveryReport()
    assert len(inbox.posts) == 2


@pytest.mark.parametrize("code", ["expired", "not_yet_valid"])
def test_a_peer_saying_expired_gets_a_resealed_envelope(
    community: TestNode, clinic: TestNode, inbox: ScriptedInbox, clock: TestClock, code: str
) -> None:
    row_id = queue(community, clinic)
    old_jti = row_of(community, row_id).jti
    inbox.answers.append(problem(400, code))
    assert counts(deliver_due(community.node)) == (0, 1, 0, 1)
    row = row_of(community, row_id)
    assert (row.state, row.last_error_code) == (OutboxState.PENDING, code)
    assert row.jti != old_jti
    assert 1 <= row.next_attempt_at - clock() <= 10
    assert peer_row(community, clinic).delivery_retry_at is None  # only this message waits
    clock.advance(row.next_attempt_at - clock())
    assert counts(deliver_due(community.node)) == (1, 0, 0, 0)
    assert message_jti(community, inbox.posts[-1]) == row.jti


def test_decryption_failed_refreshes_the_peer_and_reseals(
    community: TestNode, clinic: TestNode, inbox: ScriptedInbox, clock: TestClock
) -> None:
    row_id = queue(community, clinic)
    old_jti = row_of(community, row_id).jti
    inbox.answers.append(problem(401, "decryption_failed"))
    assert counts(deliver_due(community.node)) == (0, 1, 0, 1)
    peer = peer_row(community, clinic)
    assert peer.refreshed_at == clock()  # its entity configuration fetched again
    assert peer.delivery_failures == 1
    row = row_of(community, row_id)
    assert row.jti != old_jti
    assert row.last_error_code == "decryption_failed"


def test_a_consent_that_expired_before_resealing_fails_the_message(
    community: TestNode, clinic: TestNode, inbox: ScriptedInbox, clock: TestClock
) -> None:
    consent = factories.consent(clinic.url, expires_at="2027-01-01T00:20:00Z")
    row_id = queue(community, clinic, body=factories.referral(clinic.url, consent=consent))
    inbox.answers.append(problem(500, None))
    deliver_due(community.node)
    clock.advance(3_600)
    assert counts(deliver_due(community.node)) == (0, 0, 1, 0)
    row = row_of(community, row_id)
    assert (row.state, row.last_error_code) == (OutboxState.FAILED, "consent_mismatch")
    assert len(inbox.posts) == 1
