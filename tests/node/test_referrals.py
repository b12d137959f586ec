"""Sending a referral: what create_referral refuses, and what it stores and queues."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select

from exchange_node.db.models import AuditEntry, OutboxState, Peer, PeerStatus, Referral
from exchange_node.errors import InvalidRequestError, NotFoundError, PeerNotTrustedError
from exchange_node.protocol.messages import Referral as ReferralBody
from exchange_node.services import outbox, peers, referral_store
from exchange_node.services.referrals import ServiceNotAcceptingError
from tests.conftest import NOW
from tests.node.test_referrals_support import (
    CONTACT_NOTES,
    DAY,
    GIVEN_NAME,
    PHONE,
    SAFE_CONTACT,
    create,
    draft,
    list_service,
    open_at,
    outbox_rows,
    service_id,
)

if TYPE_CHECKING:
    from tests.node.conftest import Federation, TestClock, TestNode

__all__ = ["service_id"]  # the fixture, used by name


def refused(community: TestNode, clinic: TestNode, sid: str, **changes: Any) -> dict[str, Any]:
    """The field errors of a refused draft; nothing was stored."""
    with pytest.raises(InvalidRequestError) as caught:
        create(community, draft(clinic, sid, **changes))
    assert outbox_rows(community) == []
    return caught.value.fields


# --- refusals ------------------------------------------------------------------------------


def test_an_unknown_peer_is_not_found(
    community: TestNode, clinic: TestNode, service_id: str
) -> None:
    with pytest.raises(NotFoundError, match="no peer"):
        create(community, draft(clinic, service_id, peer="https://nowhere.example"))


def test_a_suspended_peer_is_refused(
    community: TestNode, clinic: TestNode, service_id: str
) -> None:
    with community.node.database.session() as session:
        peers.change_status(community.node, session, clinic.url, PeerStatus.SUSPENDED)
    with pytest.raises(PeerNotTrustedError, match="suspended"):
        create(community, draft(clinic, service_id))
    assert outbox_rows(community) == []


def test_a_service_not_in_the_synced_directory_is_not_found(
    community: TestNode, clinic: TestNode, service_id: str
) -> None:
    unsynced = clinic.publish()  # published after the sync
    with pytest.raises(NotFoundError, match="directory sync"):
        create(community, draft(clinic, unsynced))


@pytest.mark.parametrize(
    ("capacity", "reason"),
    [
        ({"accepting": False}, "not accepting referrals"),
        ({"status": "no-capacity"}, "no capacity"),
    ],
)
def test_a_service_not_taking_referrals_is_refused_without_an_override(
    community: TestNode, clinic: TestNode, capacity: dict[str, Any], reason: str
) -> None:
    sid = list_service(community, clinic, **capacity)
    with pytest.raises(ServiceNotAcceptingError, match=reason) as caught:
        create(community, draft(clinic, sid))
    assert caught.value.code == "service_not_accepting"
    assert caught.value.status == 409
    assert outbox_rows(community) == []


def test_a_stale_directory_is_refused_without_an_override(
    community: TestNode, clinic: TestNode, service_id: str, clock: TestClock
) -> None:
    clock.advance(8 * DAY)  # past the capacity document's lifetime
    with pytest.raises(ServiceNotAcceptingError, match="stale"):
        create(community, draft(clinic, service_id, expires_at=clock.now + 90 * DAY))


def test_an_override_is_recorded_and_sent_with_its_reason(
    community: TestNode, clinic: TestNode
) -> None:
    sid = list_service(community, clinic, accepting=False)
    reason = "Urgent: the person has nowhere else to go tonight"
    referral = create(community, draft(clinic, sid, override_reason=reason))
    assert referral.override
    [row] = outbox_rows(community)
    assert row.envelope is not None
    body = open_at(clinic, community, row.envelope).body
    assert isinstance(body, ReferralBody)
    assert body.override_reason == reason
    personal = referral_store.open_personal_data(community.node.data_key, referral)
    assert personal is not None
    assert personal.override_reason == reason
    with community.node.database.session() as session:
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "referral.created")
        ).one()
        assert entry.details["override"] is True
        assert reason not in str(entry.details)


def test_an_override_for_an_accepting_service_is_not_sent(
    community: TestNode, clinic: TestNode, service_id: str
) -> None:
    referral = create(community, draft(clinic, service_id, override_reason="just in case"))
    assert not referral.override
    [row] = outbox_rows(community)
    body = open_at(clinic, community, row.envelope or "").body
    assert isinstance(body, ReferralBody)
    assert body.override_reason is None


def test_a_field_the_service_does_not_ask_for_is_refused(
    community: TestNode, clinic: TestNode, service_id: str
) -> None:
    person = {"given_name": GIVEN_NAME, "email": "sam@example.org"}
    fields = refused(community, clinic, service_id, person=person)
    assert fields == {"/person/email": ["not requested by this service"]}


def test_a_field_outside_the_vocabulary_is_refused(
    community: TestNode, clinic: TestNode, service_id: str
) -> None:
    fields = refused(community, clinic, service_id, person={"nickname": "S"})
    assert fields == {"/person/nickname": ["not an intake field (SPEC 5.4)"]}


def test_a_field_whose_category_is_not_consented_is_refused(
    community: TestNode, clinic: TestNode, service_id: str
) -> None:
    fields = refused(community, clinic, service_id, categories=("identity",))
    assert fields == {"/person/phone": ["its category contact is not consented"]}


def test_pronouns_need_gender_identity_named_one_by_one(
    community: TestNode, clinic: TestNode, service_id: str
) -> None:
    person = {"given_name": GIVEN_NAME, "pronouns": "they/them"}
    everything_else = ("identity", "contact", "health", "sexual_orientation", "language")
    fields = refused(community, clinic, service_id, person=person, categories=everything_else)
    [problem] = fields["/person/pronouns"]
    assert "gender_identity" in problem
    assert "sensitive" in problem
    categories = ("identity", "gender_identity")
    referral = create(community, draft(clinic, service_id, person=person, categories=categories))
    assert referral.status == "requested"


def test_an_expired_consent_is_refused(
    community: TestNode, clinic: TestNode, service_id: str
) -> None:
    fields = refused(community, clinic, service_id, expires_at=NOW)
    assert list(fields) == ["/consent/expires_at"]


@pytest.mark.parametrize("captured_by", ["sam@example.org", "Sam Jones", "", "x" * 129])
def test_captured_by_must_be_an_opaque_reference(
    community: TestNode, clinic: TestNode, service_id: str, captured_by: str
) -> None:
    fields = refused(community, clinic, service_id, captured_by=captured_by)
    assert list(fields) == ["/consent/captured_by"]


def test_a_bad_safe_contact_is_refused_with_pointers_and_no_values(
    community: TestNode, clinic: TestNode, service_id: str
) -> None:
    safe = SAFE_CONTACT | {"channels": ["carrier-pigeon"], "notes": CONTACT_NOTES * 100}
    with pytest.raises(InvalidRequestError) as caught:
        create(community, draft(clinic, service_id, safe_contact=safe))
    assert set(caught.value.fields) == {"/safe_contact/channels/0", "/safe_contact/notes"}
    assert CONTACT_NOTES not in str(caught.value.to_problem())


# --- what is stored and sent ---------------------------------------------------------------


def test_creation_stores_the_referral_and_queues_its_message(
    community: TestNode, clinic: TestNode, service_id: str
) -> None:
    referral = create(community, draft(clinic, service_id))
    assert referral.role == "sent"
    assert referral.status == "requested"
    assert referral.service_name == "Youth drop-in"
    assert referral.capacity_version is not None
    assert referral.consent_expires_at == NOW + 90 * DAY
    code = referral.consent_code or ""
    assert len(code) == 9
    assert code[4] == "-"
    assert set(code.replace("-", "")) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
    [row] = outbox_rows(community)
    assert (row.message_type, row.state, row.referral_pk) == ("referral", "pending", referral.id)
    assert row.sealed_body is not None
    with community.node.database.session() as session:
        stored = session.get_one(Referral, referral.id)
        events = [(e.kind, e.status, e.side, e.sequence) for e in stored.events]
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "referral.created")
        ).one()
    assert events == [("status", "requested", "sender", None)]
    assert entry.subject == referral.referral_id
    assert entry.details == {"peer": clinic.url, "service_id": service_id, "override": False}


def test_the_envelope_opens_at_the_clinic_with_exactly_the_given_fields(
    community: TestNode, clinic: TestNode, service_id: str
) -> None:
    referral = create(community, draft(clinic, service_id))
    [row] = outbox_rows(community)
    message = open_at(clinic, community, row.envelope or "")
    body = message.body
    assert isinstance(body, ReferralBody)
    assert (message.message_type, message.jti) == ("referral", row.jti)
    assert (body.referral_id, body.service_id) == (referral.referral_id, service_id)
    assert dict(body.person) == {"given_name": GIVEN_NAME, "phone": PHONE}
    consent = body.consent
    assert consent.consent_id == referral.consent_id
    assert (consent.recipient, consent.service_id) == (clinic.url, service_id)
    assert consent.data_categories == ("identity", "contact")
    assert (consent.given_by, consent.method, consent.captured_by) == (
        "self",
        "verbal",
        "staff-0042",
    )
    assert (consent.captured_at, consent.expires_at) == (
        "2027-01-01T00:00:00Z",
        "2027-04-01T00:00:00Z",
    )
    assert body.safe_contact.notes == CONTACT_NOTES
    assert body.safe_contact.channels == ("sms", "phone-call")


def test_the_sealed_personal_data_opens_and_is_not_plain_text(
    community: TestNode, clinic: TestNode, service_id: str
) -> None:
    referral = create(community, draft(clinic, service_id))
    sealed = referral.sealed or b""
    for secret in (GIVEN_NAME, PHONE, CONTACT_NOTES):
        assert secret.encode() not in sealed
    personal = referral_store.open_personal_data(community.node.data_key, referral)
    assert personal is not None
    assert dict(personal.person) == {"given_name": GIVEN_NAME, "phone": PHONE}
    assert personal.consent["consent_id"] == referral.consent_id
    assert personal.safe_contact["notes"] == CONTACT_NOTES
    [row] = outbox_rows(community)
    assert row.sealed_body is not None
    assert GIVEN_NAME.encode() not in row.sealed_body
    body = community.node.data_key.open_json(row.sealed_body, context=outbox.body_context(row))
    assert body["person"]["given_name"] == GIVEN_NAME


def test_each_referral_gets_its_own_ids_and_code(
    community: TestNode, clinic: TestNode, service_id: str
) -> None:
    made = [create(community, draft(clinic, service_id)) for _ in range(3)]
    assert len({r.referral_id for r in made}) == 3
    assert len({r.consent_id for r in made}) == 3
    assert len({r.consent_code for r in made}) == 3
    assert all(row.state == OutboxState.PENDING for row in outbox_rows(community))


def test_the_peer_may_be_named_with_a_trailing_slash(
    community: TestNode, clinic: TestNode, service_id: str, federation: Federation
) -> None:
    referral = create(community, draft(clinic, service_id, peer=clinic.url + "/"))
    with community.node.database.session() as session:
        assert session.get_one(Peer, referral.peer_id).entity_id == clinic.url
