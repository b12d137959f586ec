"""What the referral tests share: a listed clinic service, a draft, creating and opening.

No tests here; the test modules import these helpers and fixtures by name.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select

from exchange_node.db.models import OutboxMessage, OutboxState, Referral, ReferralRole
from exchange_node.protocol.envelope import Message, open_message
from exchange_node.services import directory_sync, peers, referral_store
from exchange_node.services.referrals import ReferralDraft, create_referral
from tests.conftest import NOW
from tests.node.conftest import hsds_service

if TYPE_CHECKING:
    from tests.node.conftest import TestNode

DAY = 86_400
#: Distinctive personal data, so a test can look for it anywhere it must not be.
GIVEN_NAME = "Zephyrinequill"
PHONE = "+44 7700 900417"
CONTACT_NOTES = "Knock twice at Marrowbyfold gate"
REQUESTED_FIELDS = ("given_name", "family_name", "phone", "pronouns", "preferred_language")
SAFE_CONTACT: dict[str, Any] = {
    "channels": ["sms", "phone-call"],
    "windows": [{"days": ["mon", "tue"], "start": "15:30", "end": "18:00"}],
    "time_zone": "Europe/London",
    "voicemail_allowed": False,
    "may_name_organization": False,
    "do_not_disclose": ["gender identity"],
    "notes": CONTACT_NOTES,
}


def list_service(community: TestNode, clinic: TestNode, **capacity: Any) -> str:
    """Publish a clinic service and sync it into the community's directory."""
    capacity.setdefault("intake_fields", REQUESTED_FIELDS)
    service_id = clinic.publish(hsds_service("Youth drop-in"), **capacity)
    directory_sync.sync_peer(community.node, clinic.url, force=True)
    return service_id


@pytest.fixture
def service_id(community: TestNode, clinic: TestNode) -> str:
    return list_service(community, clinic)


def draft(clinic: TestNode, service_id: str, **changes: Any) -> ReferralDraft:
    base = ReferralDraft(
        peer=clinic.url,
        service_id=service_id,
        person={"given_name": GIVEN_NAME, "phone": PHONE},
        categories=("identity", "contact"),
        purpose="Referral to the youth drop-in, and follow-up on its outcome.",
        given_by="self",
        method="verbal",
        captured_by="staff-0042",
        expires_at=NOW + 90 * DAY,
        safe_contact=SAFE_CONTACT,
    )
    return dataclasses.replace(base, **changes)


def create(test_node: TestNode, referral_draft: ReferralDraft) -> Referral:
    """Create a referral and commit; the returned row is detached (its columns loaded)."""
    node = test_node.node
    with node.database.session() as session:
        referral = create_referral(node, session, referral_draft, actor="cli", now=node.now())
        session.flush()
        session.refresh(referral)
        session.expunge(referral)
    return referral


def outbox_rows(test_node: TestNode, message_type: str | None = None) -> list[OutboxMessage]:
    with test_node.node.database.session() as session:
        query = select(OutboxMessage).order_by(OutboxMessage.id)
        if message_type is not None:
            query = query.where(OutboxMessage.message_type == message_type)
        rows = list(session.scalars(query))
        session.expunge_all()
    return rows


def open_at(receiver: TestNode, sender: TestNode, envelope: str) -> Message:
    """Open an envelope as ``receiver`` would, with its keys and the sender's signing key."""
    with receiver.node.database.session() as session:
        keys = receiver.node.ring(session).decryption_keys
    return open_message(
        envelope,
        audience=receiver.url,
        decryption_keys=keys,
        sender=sender.url,
        sender_keys=[sender.signing_key],
        now=receiver.node.now(),
    )


def receive(clinic: TestNode, community: TestNode, service_id: str) -> Referral:
    """A referral as the clinic's inbox would have stored it (without going through it)."""
    node = clinic.node
    with node.database.session() as session:
        peer = peers.get_peer(session, community.url)
        referral = Referral(
            referral_id=str(uuid.uuid4()),
            role=ReferralRole.RECEIVED,
            peer_id=peer.id,
            service_id=service_id,
            service_name="Youth drop-in",
            status="requested",
            consent_id=str(uuid.uuid4()),
            consent_expires_at=NOW + 90 * DAY,
            created_by="peer",
            created_at=NOW,
            updated_at=NOW,
        )
        session.add(referral)
        session.flush()
        person = {"given_name": GIVEN_NAME, "phone": PHONE}
        data = referral_store.PersonalData(
            person, {"consent_id": referral.consent_id}, SAFE_CONTACT
        )
        referral_store.seal_personal_data(node.data_key, referral, data)
        referral_store.add_event(
            session, referral, kind="status", now=NOW, status="requested", side="sender"
        )
        session.flush()
        session.refresh(referral)
        session.expunge(referral)
    return referral


def mark_delivered(test_node: TestNode, row_id: int) -> None:
    """What delivery does on a receipt (tests of withdrawal need the referral delivered)."""
    with test_node.node.database.session() as session:
        row = session.get_one(OutboxMessage, row_id)
        row.state, row.delivered_at = OutboxState.DELIVERED, test_node.node.now()
        row.envelope, row.sealed_body = None, None
