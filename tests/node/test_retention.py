"""The retention purge: what is due, what is kept, the audit entries, batches and the command.

Referrals are stored straight in the tables (sealed as the services seal them), so these
tests depend only on :mod:`referral_store`; every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from exchange_node.cli import main
from exchange_node.db.models import OutboxMessage, OutboxState, Peer, Referral
from exchange_node.services import audit, referral_store, retention
from exchange_node.services.referral_store import PersonalData

if TYPE_CHECKING:
    from tests.node.conftest import TestClock, TestNode

DAY = 86_400
RETENTION = 90 * DAY  # the default retention_days
NAME = "Dana Example"


def store_referral(
    test_node: TestNode,
    *,
    role: str = "received",
    closed_at: int | None = None,
    consent_expires_at: int | None = None,
) -> str:
    """A referral with sealed personal data, a note on its timeline and a delivered message."""
    node, now = test_node.node, test_node.node.now()
    with node.database.session() as session:
        peer = session.scalars(select(Peer)).first()
        assert peer is not None
        referral = Referral(
            referral_id=str(uuid.uuid4()),
            role=role,
            peer_id=peer.id,
            service_id="7d1b0c2e-6a43-4f0e-9b6a-3f2d1c0b9a87",
            status="completed" if closed_at is not None else "accepted",
            consent_id=str(uuid.uuid4()),
            consent_expires_at=consent_expires_at or now + 365 * DAY,
            created_by="cli",
            created_at=now,
            updated_at=now,
            closed_at=closed_at,
        )
        session.add(referral)
        session.flush()
        data = PersonalData({"given_name": NAME}, {"purpose": "x"}, {"channels": ["sms"]})
        referral_store.seal_personal_data(node.data_key, referral, data)
        referral_store.add_event(
            session,
            referral,
            kind=referral_store.STATUS,
            now=now,
            status="accepted",
            side="receiver",
            sequence=1,
            text={"note": f"Call {NAME} after school"},
            keys=node.data_key,
        )
        session.add(
            OutboxMessage(
                peer_id=peer.id,
                referral_pk=referral.id,
                message_type="referral-status",
                jti=uuid.uuid4().hex,
                envelope="sealed.envelope",
                sealed_body=b"sealed body",
                expires_at=now + 600,
                state=OutboxState.DELIVERED,
                next_attempt_at=now,
                deadline=now + DAY,
                created_at=now,
            )
        )
        return referral.referral_id


def load(test_node: TestNode, referral_id: str) -> Referral:
    with test_node.node.database.session() as session:
        referral = session.scalars(
            select(Referral).where(Referral.referral_id == referral_id)
        ).one()
        _ = list(referral.events)  # loaded while the session is open
        return referral


def purged_entries(test_node: TestNode) -> list[tuple[str, str, dict[str, Any] | None]]:
    with test_node.node.database.session() as session:
        found = audit.entries(session, action="data.purged", limit=1000)
    return [(e.actor, e.subject, e.details) for e in found]


def purge(test_node: TestNode, **kwargs: Any) -> int:
    return retention.purge_expired(
        test_node.node, now=test_node.node.now(), actor="worker", **kwargs
    )


def assert_purged(test_node: TestNode, referral_id: str) -> None:
    referral = load(test_node, referral_id)
    assert referral.sealed is None
    assert (referral.purge_reason, referral.purged_at) == ("retention", test_node.node.now())
    assert all(event.sealed_text is None for event in referral.events)
    assert [e.kind for e in referral.events][-1] == referral_store.PURGED
    assert referral.status in ("completed", "accepted")  # the tombstone keeps the history
    with test_node.node.database.session() as session:
        message = session.scalars(
            select(OutboxMessage).where(OutboxMessage.referral_pk == referral.id)
        ).one()
        assert (message.envelope, message.sealed_body) == (None, None)


def assert_kept(test_node: TestNode, referral_id: str) -> None:
    referral = load(test_node, referral_id)
    assert referral.sealed is not None
    assert referral.purged_at is None
    data = referral_store.open_personal_data(test_node.node.data_key, referral)
    assert data is not None
    assert data.person["given_name"] == NAME


def test_a_referral_closed_long_enough_is_purged_and_logged(
    clinic: TestNode, clock: TestClock
) -> None:
    referral_id = store_referral(clinic, closed_at=clock.now)
    clock.advance(RETENTION)
    assert purge(clinic) == 1
    assert_purged(clinic, referral_id)
    assert purged_entries(clinic) == [
        ("worker", referral_id, {"reason": "retention", "role": "received"})
    ]
    with clinic.node.database.session() as session:
        assert audit.verify(session).ok
    assert purge(clinic) == 0  # nothing twice
    assert len(purged_entries(clinic)) == 1


def test_a_referral_closed_recently_is_kept(clinic: TestNode, clock: TestClock) -> None:
    referral_id = store_referral(clinic, closed_at=clock.now)
    clock.advance(RETENTION - 1)
    assert purge(clinic) == 0
    assert_kept(clinic, referral_id)
    assert purged_entries(clinic) == []
    clock.advance(1)
    assert purge(clinic) == 1


def test_an_open_referral_is_kept_until_its_consent_expired_long_enough(
    clinic: TestNode, clock: TestClock
) -> None:
    expiring = store_referral(clinic, consent_expires_at=clock.now + DAY)
    lasting = store_referral(clinic, consent_expires_at=clock.now + 30 * DAY)
    clock.advance(DAY + RETENTION - 1)
    assert purge(clinic) == 0
    clock.advance(1)
    assert purge(clinic) == 1
    assert_purged(clinic, expiring)
    assert_kept(clinic, lasting)


def test_a_referral_already_purged_is_left_as_it_is(clinic: TestNode, clock: TestClock) -> None:
    referral_id = store_referral(clinic, closed_at=clock.now)
    with clinic.node.database.session() as session:
        referral = session.scalars(select(Referral)).one()
        referral_store.purge(session, referral, now=clock.now, reason=referral_store.WITHDRAWN)
    clock.advance(RETENTION + DAY)
    assert purge(clinic) == 0
    referral = load(clinic, referral_id)
    assert (referral.purge_reason, referral.purged_at) == ("withdrawn", clock.now - RETENTION - DAY)
    assert [e.kind for e in referral.events].count(referral_store.PURGED) == 1
    assert purged_entries(clinic) == []


def test_both_roles_are_purged(clinic: TestNode, clock: TestClock) -> None:
    sent = store_referral(clinic, role="sent", closed_at=clock.now)
    received = store_referral(clinic, role="received", closed_at=clock.now)
    kept = store_referral(clinic, role="sent")
    clock.advance(RETENTION)
    assert purge(clinic) == 2
    assert_purged(clinic, sent)
    assert_purged(clinic, received)
    assert_kept(clinic, kept)
    roles = {subject: (details or {})["role"] for _, subject, details in purged_entries(clinic)}
    assert roles == {sent: "sent", received: "received"}


def test_the_retention_period_is_the_nodes_setting(clinic: TestNode, clock: TestClock) -> None:
    clinic.node.settings = dataclasses.replace(clinic.node.settings, retention_days=7)
    referral_id = store_referral(clinic, closed_at=clock.now)
    clock.advance(7 * DAY)
    assert retention.retention_cutoff(clinic.node, clock.now) == clock.now - 7 * DAY
    assert purge(clinic) == 1
    assert_purged(clinic, referral_id)


def test_a_backlog_is_purged_in_batches(clinic: TestNode, clock: TestClock) -> None:
    due = [store_referral(clinic, closed_at=clock.now) for _ in range(5)]
    kept = store_referral(clinic)
    clock.advance(RETENTION)
    with clinic.node.database.session() as session:
        assert retention.count_expired(clinic.node, session, now=clock.now) == 5
        count, last = retention.purge_batch(
            clinic.node, session, now=clock.now, actor="worker", limit=2
        )
    assert count == 2
    assert last is not None
    assert purge(clinic, batch_size=2) == 3
    for referral_id in due:
        assert_purged(clinic, referral_id)
    assert_kept(clinic, kept)
    assert len(purged_entries(clinic)) == 5


def test_a_failed_batch_rolls_back_alone(
    clinic: TestNode, clock: TestClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    due = [store_referral(clinic, closed_at=clock.now) for _ in range(3)]
    clock.advance(RETENTION)
    real_record, calls = audit.record, []

    def failing_record(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs["subject"])
        if len(calls) == 3:
            raise RuntimeError("the disk is full")
        return real_record(*args, **kwargs)

    monkeypatch.setattr(audit, "record", failing_record)
    with pytest.raises(RuntimeError):
        purge(clinic, batch_size=2)
    assert_purged(clinic, due[0])
    assert_purged(clinic, due[1])
    assert_kept(clinic, due[2])
    monkeypatch.setattr(audit, "record", real_record)
    assert purge(clinic) == 1


# --- the command ---------------------------------------------------------------------------


def run(test_node: TestNode, *args: str) -> Result:
    return CliRunner().invoke(main, ["purge", "--home", str(test_node.node.settings.home), *args])


def test_the_command_counts_with_dry_run_then_purges(clinic: TestNode) -> None:
    now = int(time.time())  # the command runs on the system clock
    due = store_referral(clinic, closed_at=now - RETENTION - DAY)
    kept = store_referral(clinic, closed_at=now - DAY)

    counted = run(clinic, "--dry-run")
    assert counted.exit_code == 0, counted.output
    assert "would purge the personal data of 1 referral " in counted.output
    assert "90 days" in counted.output
    assert_kept(clinic, due)

    as_json = json.loads(run(clinic, "--dry-run", "--json").output)
    assert (as_json["dry_run"], as_json["purged"], as_json["would_purge"]) == (True, 0, 1)
    assert as_json["retention_days"] == 90

    done = run(clinic, "--json")
    assert done.exit_code == 0, done.output
    result = json.loads(done.output)
    assert (result["dry_run"], result["purged"]) == (False, 1)
    assert "would_purge" not in result
    referral = load(clinic, due)
    assert (referral.sealed, referral.purge_reason) == (None, "retention")
    assert_kept(clinic, kept)
    assert purged_entries(clinic) == [("cli", due, {"reason": "retention", "role": "received"})]

    again = run(clinic)
    assert again.exit_code == 0, again.output
    assert "purged the personal data of 0 referrals" in again.output
    assert NAME not in counted.output + done.output + again.output
