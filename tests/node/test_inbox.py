"""``POST /federation/v1/inbox`` (SPEC 7.2-7.4): accepting referrals, idempotently, or refusing.

The community seals messages with its own keys to the clinic's encryption key and posts
them through the in-memory transport, signed like every federation request. Helpers
here are shared by the other ``test_inbox_*`` modules.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import func, select

from exchange_node.db.models import AuditEntry, InboxMessage, PeerStatus, Referral, ReferralEvent
from exchange_node.protocol.envelope import ENVELOPE_MEDIA_TYPE, SealedMessage, seal_message
from exchange_node.protocol.httpsig import sign_request
from exchange_node.protocol.keys import NodeKey
from exchange_node.protocol.messages import format_timestamp
from exchange_node.protocol.statements import RECEIPT_MEDIA_TYPE, verify_receipt
from exchange_node.services import peers, referral_store
from exchange_node.transport import HttpResponse
from tests.node.conftest import Federation

if TYPE_CHECKING:  # imported by name, pytest would try to collect the Test* classes
    from tests.node.conftest import TestClock, TestNode

INBOX = "/federation/v1/inbox"
PERSON = {"given_name": "Sam", "phone": "+44 7700 900123"}


def referral_body(
    receiver: TestNode,
    service_id: str,
    *,
    person: Mapping[str, str] = PERSON,
    referral_id: str | None = None,
    notes: str = "Text first and wait for a reply.",
    categories: tuple[str, ...] = ("identity", "contact"),
) -> dict[str, Any]:
    """A referral (SPEC 5.3) to ``receiver``'s service, with consent for ``categories``."""
    now = receiver.node.now()
    return {
        "referral_id": referral_id or str(uuid.uuid4()),
        "service_id": service_id,
        "capacity_version": 1,
        "person": dict(person),
        "consent": {
            "consent_id": str(uuid.uuid4()),
            "given_by": "self",
            "recipient": receiver.url,
            "service_id": service_id,
            "data_categories": list(categories),
            "purpose": "Referral to the service, and follow-up on its outcome.",
            "method": "verbal",
            "captured_by": "staff-0042",
            "captured_at": format_timestamp(now - 600),
            "expires_at": format_timestamp(now + 90 * 86_400),
        },
        "safe_contact": {
            "channels": ["sms", "phone-call"],
            "windows": [{"days": ["mon", "tue"], "start": "15:30", "end": "18:00"}],
            "time_zone": "Europe/London",
            "voicemail_allowed": False,
            "may_name_organization": False,
            "notes": notes,
        },
    }


def encryption_key(receiver: TestNode) -> NodeKey:
    with receiver.node.database.session() as session:
        return receiver.node.ring(session).published_encryption[0]


def seal(
    sender: TestNode,
    receiver: TestNode,
    message_type: str,
    body: Mapping[str, Any],
    *,
    jti: str | None = None,
) -> SealedMessage:
    """``body`` sealed by ``sender`` for ``receiver``: signed by one, encrypted to the other."""
    return seal_message(
        message_type,
        body,
        issuer=sender.url,
        audience=receiver.url,
        signing_key=sender.signing_key,
        recipient_key=encryption_key(receiver),
        now=sender.node.now(),
        jti=jti,
    )


def post(
    sender: TestNode,
    receiver: TestNode,
    envelope: str,
    *,
    content_type: str = ENVELOPE_MEDIA_TYPE,
) -> HttpResponse:
    """POST ``envelope`` to ``receiver``'s inbox, signed by ``sender``: any answer comes back."""
    return signed_post(sender, receiver, envelope, content_type=content_type)()


def signed_post(
    sender: TestNode,
    receiver: TestNode,
    envelope: str,
    *,
    content_type: str = ENVELOPE_MEDIA_TYPE,
) -> Callable[[], HttpResponse]:
    """One signed POST of ``envelope`` (one nonce), to send as often as the test wants."""
    url, body = receiver.url + INBOX, envelope.encode("ascii")
    headers = {"Accept": f"{RECEIPT_MEDIA_TYPE}, application/problem+json"}
    headers["Content-Type"] = content_type
    headers |= sign_request(
        "POST", url, headers, body, key=sender.signing_key, now=sender.node.now()
    )
    transport = sender.node.client.transport
    return lambda: transport.send("POST", url, headers, body, max_bytes=1 << 20)


def deliver(sender: TestNode, receiver: TestNode, envelope: str) -> str:
    """Deliver through ``sender``'s federation client; the receipt (refusals raise)."""
    response = sender.node.client.signed_request(
        "POST",
        receiver.url + INBOX,
        key=sender.signing_key,
        now=sender.node.now(),
        body=envelope.encode("ascii"),
        content_type=ENVELOPE_MEDIA_TYPE,
        accept=RECEIPT_MEDIA_TYPE,
    )
    assert response.status == 202
    return response.body.decode("ascii")


def refused(response: HttpResponse, status: int, code: str) -> dict[str, Any]:
    """The problem document of a refusal with this status and code."""
    assert response.status == status, response.body
    assert response.headers["Content-Type"] == "application/problem+json"
    problem: dict[str, Any] = json.loads(response.body)
    assert problem["code"] == code, problem
    return problem


def count(receiver: TestNode, model: Any) -> int:
    with receiver.node.database.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def held(receiver: TestNode, referral_id: str) -> Referral:
    with receiver.node.database.session() as session:
        referral = session.scalars(
            select(Referral).where(Referral.referral_id == referral_id)
        ).one()
        _ = referral.events
        return referral


def actions(receiver: TestNode) -> list[str]:
    with receiver.node.database.session() as session:
        return list(session.scalars(select(AuditEntry.action).order_by(AuditEntry.seq)))


# --- accepted --------------------------------------------------------------------------


def test_referral_is_accepted_with_a_receipt_that_verifies(
    community: TestNode, clinic: TestNode
) -> None:
    service_id = clinic.publish(intake_fields=("given_name", "phone"))
    body = referral_body(clinic, service_id)
    sealed = seal(community, clinic, "referral", body)

    response = post(community, clinic, sealed.token)

    assert response.status == 202, response.body
    assert response.headers["Content-Type"] == RECEIPT_MEDIA_TYPE
    assert response.headers["Cache-Control"] == "no-store"
    receipt = verify_receipt(
        response.body,
        issuer=clinic.url,
        issuer_keys=[clinic.signing_key.public()],
        audience=community.url,
        envelope=sealed.token,
        message_jti=sealed.jti,
        now=clinic.node.now(),
    )
    assert receipt.issued_at == clinic.node.now()
    referral = held(clinic, body["referral_id"])
    assert (referral.role, referral.status, referral.service_id) == (
        "received",
        "requested",
        service_id,
    )
    assert referral.created_by == f"peer:{community.url}"
    assert referral.consent_id == body["consent"]["consent_id"]
    assert referral.service_name == "Counselling"
    data = referral_store.open_personal_data(clinic.node.data_key, referral)
    assert data is not None
    assert dict(data.person) == PERSON
    assert dict(data.consent) == body["consent"]
    assert dict(data.safe_contact) == body["safe_contact"]
    assert [(e.kind, e.status, e.side, e.sequence) for e in referral.events] == [
        ("status", "requested", "sender", None)
    ]
    assert actions(clinic)[-1] == "referral.received"
    assert count(clinic, InboxMessage) == 1


def test_delivery_through_the_federation_client(community: TestNode, clinic: TestNode) -> None:
    body = referral_body(clinic, clinic.publish())
    receipt = deliver(community, clinic, seal(community, clinic, "referral", body).token)
    assert receipt.count(".") == 2
    assert held(clinic, body["referral_id"]).status == "requested"


# --- idempotent ------------------------------------------------------------------------


def test_same_bytes_again_get_the_same_receipt_even_after_exp(
    community: TestNode, clinic: TestNode, clock: TestClock
) -> None:
    envelope = seal(community, clinic, "referral", referral_body(clinic, clinic.publish())).token
    first = post(community, clinic, envelope)
    clock.advance(3 * 3600)  # long past the envelope's exp
    again = post(community, clinic, envelope)

    assert (first.status, again.status) == (202, 202)
    assert again.body == first.body
    assert again.headers["Content-Type"] == RECEIPT_MEDIA_TYPE
    assert count(clinic, InboxMessage) == 1
    assert count(clinic, Referral) == 1


def test_same_jti_in_other_bytes_gets_the_same_receipt(
    community: TestNode, clinic: TestNode
) -> None:
    body = referral_body(clinic, clinic.publish())
    jti = "SameJtiTwice0000000000"
    first = post(community, clinic, seal(community, clinic, "referral", body, jti=jti).token)
    other_bytes = seal(community, clinic, "referral", body, jti=jti).token
    again = post(community, clinic, other_bytes)

    assert (first.status, again.status) == (202, 202)
    assert again.body == first.body
    assert count(clinic, InboxMessage) == 1
    assert count(clinic, Referral) == 1
    assert count(clinic, ReferralEvent) == 1


def test_resealed_referral_is_a_duplicate_with_a_receipt_of_its_own(
    community: TestNode, clinic: TestNode
) -> None:
    body = referral_body(clinic, clinic.publish())
    first_envelope = seal(community, clinic, "referral", body)
    resealed = seal(community, clinic, "referral", body)  # new jti, same referral_id
    first = post(community, clinic, first_envelope.token)
    again = post(community, clinic, resealed.token)

    assert (first.status, again.status) == (202, 202)
    assert again.body != first.body
    verify_receipt(
        again.body,
        issuer=clinic.url,
        issuer_keys=[clinic.signing_key.public()],
        audience=community.url,
        envelope=resealed.token,
        message_jti=resealed.jti,
        now=clinic.node.now(),
    )
    assert count(clinic, InboxMessage) == 2
    assert count(clinic, Referral) == 1
    assert actions(clinic).count("referral.received") == 1


# --- refused ---------------------------------------------------------------------------


def test_unknown_service_is_invalid_body(community: TestNode, clinic: TestNode) -> None:
    clinic.publish()
    envelope = seal(community, clinic, "referral", referral_body(clinic, str(uuid.uuid4()))).token
    problem = refused(post(community, clinic, envelope), 422, "invalid_body")
    assert problem["errors"] == {"/body/service_id": ["not a service of this node"]}
    assert count(clinic, InboxMessage) == 0
    assert count(clinic, Referral) == 0


def test_field_the_service_did_not_ask_for_is_refused(
    community: TestNode, clinic: TestNode
) -> None:
    service_id = clinic.publish(intake_fields=("given_name",))
    envelope = seal(community, clinic, "referral", referral_body(clinic, service_id)).token
    problem = refused(post(community, clinic, envelope), 422, "field_not_requested")
    assert problem["errors"] == {"/body/person/phone": ["not requested by the service"]}
    assert "+44" not in json.dumps(problem)
    assert count(clinic, Referral) == 0
    assert count(clinic, InboxMessage) == 0


def test_suspended_peer_is_refused(community: TestNode, clinic: TestNode) -> None:
    envelope = seal(community, clinic, "referral", referral_body(clinic, clinic.publish())).token
    with clinic.node.database.session() as session:
        peers.change_status(clinic.node, session, community.url, PeerStatus.SUSPENDED)
    refused(post(community, clinic, envelope), 403, "peer_not_trusted")
    assert count(clinic, Referral) == 0


def test_wrong_content_type_is_malformed(community: TestNode, clinic: TestNode) -> None:
    envelope = seal(community, clinic, "referral", referral_body(clinic, clinic.publish())).token
    refused(post(community, clinic, envelope, content_type="text/plain"), 400, "malformed")
    assert count(clinic, Referral) == 0


def test_content_signed_by_another_peer_is_refused(
    federation: Federation, community: TestNode, clinic: TestNode
) -> None:
    """SPEC 7.2 step 9: the content's signer must be the peer that signed the request."""
    school = federation.add("school", "school")
    federation.peer(school, clinic)  # a trusted peer of the clinic too
    body = referral_body(clinic, clinic.publish())
    envelope = seal(school, clinic, "referral", body).token  # signed by the school
    refused(post(community, clinic, envelope), 401, "untrusted_key")
    assert count(clinic, Referral) == 0


def test_expired_envelope_is_refused(
    community: TestNode, clinic: TestNode, clock: TestClock
) -> None:
    envelope = seal(community, clinic, "referral", referral_body(clinic, clinic.publish())).token
    clock.advance(3600)
    refused(post(community, clinic, envelope), 400, "expired")
    assert count(clinic, InboxMessage) == 0


# --- the request's nonce (SPEC 7.2 step 6), recorded with the message or alone ----------


def test_same_request_again_is_replayed_though_its_envelope_is_stored(
    community: TestNode, clinic: TestNode
) -> None:
    envelope = seal(community, clinic, "referral", referral_body(clinic, clinic.publish())).token
    request = signed_post(community, clinic, envelope)
    assert request().status == 202
    refused(request(), 401, "replayed")
    assert (count(clinic, InboxMessage), count(clinic, Referral)) == (1, 1)


@pytest.mark.parametrize(
    ("content_type", "status", "code"),
    [(ENVELOPE_MEDIA_TYPE, 422, "invalid_body"), ("text/plain", 400, "malformed")],
)
def test_refused_request_keeps_its_nonce(
    community: TestNode, clinic: TestNode, content_type: str, status: int, code: str
) -> None:
    """Refused after its authentication (step 7, or 11 for a service not offered), a request
    has still used its nonce: the same request again is a replay."""
    body = referral_body(clinic, "no-such-service")
    envelope = seal(community, clinic, "referral", body).token
    request = signed_post(community, clinic, envelope, content_type=content_type)
    refused(request(), status, code)
    refused(request(), 401, "replayed")
    assert (count(clinic, InboxMessage), count(clinic, Referral)) == (0, 0)


def test_request_refused_before_its_signature_holds_leaves_no_nonce(
    community: TestNode, clinic: TestNode
) -> None:
    """Suspended (step 5): nothing recorded, so once trusted again the same request is served."""
    envelope = seal(community, clinic, "referral", referral_body(clinic, clinic.publish())).token
    request = signed_post(community, clinic, envelope)
    with clinic.node.database.session() as session:
        peers.change_status(clinic.node, session, community.url, PeerStatus.SUSPENDED)
    refused(request(), 403, "peer_not_trusted")
    with clinic.node.database.session() as session:
        peers.change_status(clinic.node, session, community.url, PeerStatus.TRUSTED)
    assert request().status == 202
