"""What an accepted message does here: the application checks and effects of SPEC 7.3.

:func:`apply_message` dispatches on the type of the message's body, one function
per message type. Each runs inside the inbox's transaction, after the message was
opened and its ``jti`` recorded, so its effects and its acceptance commit together.
A refusal raises the protocol's error (``invalid_body``, ``field_not_requested``,
``illegal_transition``) and the whole delivery is rolled back. Personal data goes
only through :mod:`~exchange_node.services.referral_store` (sealed under the data
key); audit entries and logs hold identifiers and codes.

This module does not open envelopes, check replay or issue receipts
(:mod:`~exchange_node.services.inbox` does).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select
from sqlalchemy.orm import Session

from exchange_node.db.models import (
    InboxMessage,
    Peer,
    Referral,
    ReferralEvent,
    ReferralRole,
    Service,
)
from exchange_node.node import Node
from exchange_node.protocol.envelope import Message
from exchange_node.protocol.errors import IllegalTransitionError, SchemaError
from exchange_node.protocol.messages import (
    ConsentWithdrawal,
    DeletionReceipt,
    MessageBody,
    ReferralStatusChange,
    SafeContact,
    check_requested_fields,
    format_timestamp,
    parse_timestamp,
)
from exchange_node.protocol.messages import Referral as ReferralBody
from exchange_node.protocol.states import (
    ReferralStatus,
    Side,
    allowed_transitions,
    check_transition,
)
from exchange_node.services import audit, outbox, referral_store
from exchange_node.services.federation_auth import AuthenticatedPeer

log = logging.getLogger("exchange_node.inbox")


class Outcome(StrEnum):
    """What an accepted message changed."""

    APPLIED = "applied"
    #: Applied, and an answer (a deletion receipt) waits in the outbox.
    ANSWER_QUEUED = "answer-queued"
    #: Already applied (a re-sealed copy, an old sequence, a second withdrawal): no effect.
    DUPLICATE = "duplicate"
    #: Accepted and logged with no effect (a deletion receipt matching no withdrawal).
    IGNORED = "ignored"


@dataclass(frozen=True)
class Incoming:
    """An opened message from a trusted peer, and what applying it needs.

    The inbox's transaction is a Core ``connection``: a new referral (the common message)
    needs no ORM objects. The other types get an ORM :attr:`session` on that connection,
    made when first asked for; :meth:`flush` writes what it holds before the commit.
    """

    node: Node
    connection: Connection
    peer: AuthenticatedPeer
    message: Message
    now: int

    @functools.cached_property
    def session(self) -> Session:
        """An ORM session in the inbox's transaction (it neither commits nor rolls back)."""
        return Session(bind=self.connection, join_transaction_mode="rollback_only")

    def flush(self) -> None:
        """Write what the ORM session holds, if one was made."""
        if "session" in self.__dict__:  # set by cached_property
            self.session.flush()

    def close(self) -> None:
        """Let go of the ORM session, if one was made (the transaction is the caller's)."""
        if "session" in self.__dict__:
            self.session.close()

    @property
    def actor(self) -> str:
        return f"peer:{self.peer.entity_id}"

    def audit(self, action: str, referral_id: str, **details: Any) -> None:
        made = "session" in self.__dict__  # then it may hold changes the entry follows
        audit.record(
            self.session if made else self.connection,
            actor=self.actor,
            action=action,
            subject=referral_id,
            details=details,
            now=self.now,
        )


def apply_message(incoming: Incoming) -> Outcome:
    """Check and apply an accepted message in the caller's transaction.

    Raises:
        SchemaError: ``invalid_body`` (a service this node does not offer, a withdrawal
            of another consent); UnrequestedFieldError (``field_not_requested``).
        IllegalTransitionError: a status change the peer's side may not make, or one
            about a referral not held between the two nodes.
    """
    try:
        outcome = _apply(incoming.message.body, incoming)
        incoming.flush()
    finally:
        incoming.close()
    return outcome


@functools.singledispatch
def _apply(body: MessageBody, incoming: Incoming) -> Outcome:
    raise TypeError(f"no way to apply a {type(body).__name__}")


@_apply.register
def apply_referral(body: ReferralBody, incoming: Incoming) -> Outcome:
    """A new referral to one of this node's services (SPEC 7.3), stored sealed."""
    connection, peer = incoming.connection, incoming.peer
    service = connection.execute(
        _SERVICE_AND_HELD,
        {"service_id": body.service_id, "peer_id": peer.id, "referral_id": body.referral_id},
    ).one_or_none()
    if service is None:
        raise SchemaError(
            "this node offers no such service",
            {"/body/service_id": ["not a service of this node"]},
        )
    check_requested_fields(body, service.intake_fields)
    if service.held is not None:
        return Outcome.DUPLICATE
    check_transition(None, ReferralStatus.REQUESTED, Side.SENDER)
    values: dict[str, Any] = {
        "referral_id": body.referral_id,
        "role": ReferralRole.RECEIVED,
        "peer_id": peer.id,
        "service_id": body.service_id,
        "service_name": service.name,
        "status": ReferralStatus.REQUESTED,
        "consent_id": body.consent.consent_id,
        "consent_expires_at": parse_timestamp(body.consent.expires_at, "/body/consent/expires_at"),
        "override": body.override_reason is not None,
        "capacity_version": body.capacity_version,
        "created_by": incoming.actor,
        "created_at": incoming.now,
        "updated_at": incoming.now,
    }
    # Only what the sealing context names: the row is stored below without the ORM's flush.
    referral = Referral(referral_id=body.referral_id, role=ReferralRole.RECEIVED, peer_id=peer.id)
    referral_store.seal_personal_data(
        incoming.node.data_key,
        referral,
        referral_store.PersonalData(
            person=dict(body.person),
            consent=dict(vars(body.consent)),  # flat: no deep copy needed
            safe_contact=safe_contact_json(body.safe_contact),
            override_reason=body.override_reason,
        ),
    )
    # The hot path of the inbox: two plain inserts cost a fraction of a unit-of-work flush.
    referral_pk = connection.execute(
        _INSERT_REFERRAL, values | {"sealed": referral.sealed}
    ).scalar_one()
    connection.execute(_INSERT_CREATION, {"referral_pk": referral_pk, "time": incoming.now})
    incoming.audit(
        "referral.received",
        body.referral_id,
        peer=peer.entity_id,
        service_id=body.service_id,
        override=values["override"],
    )
    return Outcome.APPLIED


@_apply.register
def apply_status(body: ReferralStatusChange, incoming: Incoming) -> Outcome:
    """A status change by the peer, checked against the state machine for the peer's side."""
    session = incoming.session
    referral = _status_target(session, incoming.peer.id, body)
    if referral is None:  # SPEC 7.3: the current status of a referral not held is "none"
        raise IllegalTransitionError(
            f"(none) cannot change to {body.status}: no such referral between the two nodes",
            allowed_transitions(None, Side.RECEIVER),
        )
    side = Side.SENDER if referral.role == ReferralRole.RECEIVED else Side.RECEIVER
    if body.sequence <= referral.received_sequence:
        return Outcome.DUPLICATE
    check_transition(referral.status, body.status, side)
    text = {"note": body.note, "reason_text": body.reason_text}
    referral_store.record_status(
        session,
        referral,
        status=body.status,
        side=side,
        sequence=body.sequence,
        changed_at=parse_timestamp(body.changed_at, "/body/changed_at"),
        now=incoming.now,
        reason_code=body.reason_code,
        # Nothing personal is stored once purged, not even the peer's note.
        text=text if referral.purged_at is None else None,
        keys=incoming.node.data_key,
    )
    incoming.audit(
        "referral.status_changed",
        body.referral_id,
        status=body.status,
        side=side.value,
        sequence=body.sequence,
    )
    return Outcome.APPLIED


@_apply.register
def apply_withdrawal(body: ConsentWithdrawal, incoming: Incoming) -> Outcome:
    """The person withdrew consent: purge now, keep the tombstone, queue a deletion receipt."""
    session, peer, now = incoming.session, incoming.peer, incoming.now
    referral = _held(session, peer.id, ReferralRole.RECEIVED, body.referral_id, lock=True)
    if referral is None:
        if _withdrawn_before(incoming, body.referral_id):
            return Outcome.DUPLICATE
    else:
        if referral.consent_id != body.consent_id:
            raise SchemaError(
                "the withdrawal names another consent than the referral's",
                {"/body/consent_id": ["not the consent of this referral"]},
            )
        if referral.withdrawn_at is not None:
            return Outcome.DUPLICATE
        referral.withdrawn_at = parse_timestamp(body.withdrawn_at, "/body/withdrawn_at")
        referral.withdrawal_jti = incoming.message.jti
        referral_store.add_event(
            session, referral, kind=referral_store.WITHDRAWAL, now=referral.withdrawn_at
        )
        purged = referral_store.purge(session, referral, now=now, reason=referral_store.WITHDRAWN)
        incoming.audit("referral.withdrawn", body.referral_id, peer=peer.entity_id)
        if purged:
            incoming.audit("data.purged", body.referral_id, reason=referral_store.WITHDRAWN)
    outbox.enqueue(
        incoming.node,
        session,
        peer=session.get_one(Peer, peer.id),
        message_type="deletion-receipt",
        body={
            "referral_id": body.referral_id,
            "consent_id": body.consent_id,
            "withdrawal_jti": incoming.message.jti,
            "deleted_at": format_timestamp(now),
        },
        referral=referral,
        now=now,
    )
    return Outcome.ANSWER_QUEUED


@_apply.register
def apply_deletion_receipt(body: DeletionReceipt, incoming: Incoming) -> Outcome:
    """The peer confirms it purged a referral this node sent and then withdrew."""
    session, peer = incoming.session, incoming.peer
    referral = _held(session, peer.id, ReferralRole.SENT, body.referral_id, lock=True)
    if referral is None or referral.withdrawal_jti != body.withdrawal_jti:
        log.info(
            "deletion receipt %s from %s matches no withdrawal sent; no effect",
            incoming.message.jti,
            peer.entity_id,
        )
        return Outcome.IGNORED
    if referral.peer_deleted_at is not None:
        return Outcome.DUPLICATE
    deleted_at = parse_timestamp(body.deleted_at, "/body/deleted_at")
    referral.peer_deleted_at = deleted_at
    referral.updated_at = incoming.now
    referral_store.add_event(session, referral, kind=referral_store.DELETED_AT_PEER, now=deleted_at)
    incoming.audit(
        "referral.deletion_confirmed", body.referral_id, peer=peer.entity_id, deleted_at=deleted_at
    )
    return Outcome.APPLIED


def safe_contact_json(safe: SafeContact) -> dict[str, Any]:
    """The safe-contact preferences in their wire form (SPEC 5.6), absent members left out."""
    wire = dict(vars(safe))  # as dataclasses.asdict, without its generic deep copy
    wire["windows"] = tuple(dict(vars(window)) for window in safe.windows)
    return {name: value for name, value in wire.items() if value not in (None, ())}


def _held(
    session: Session, peer_id: int, role: str, referral_id: str, *, lock: bool = False
) -> Referral | None:
    """The referral (peer, role, ``referral_id``), locked for this transaction if asked."""
    query = select(Referral).where(
        Referral.peer_id == peer_id, Referral.role == role, Referral.referral_id == referral_id
    )
    return session.scalars(query.with_for_update() if lock else query).one_or_none()


def _status_target(session: Session, peer_id: int, body: ReferralStatusChange) -> Referral | None:
    """The referral a status message names: between this node and the peer, either role.

    Should both roles hold the ``referral_id`` (the peer chose the id of one of ours),
    the one the change is legal for is taken.
    """
    held = session.scalars(
        select(Referral)
        .where(Referral.peer_id == peer_id, Referral.referral_id == body.referral_id)
        .order_by(Referral.id)
        .with_for_update()
    ).all()
    if len(held) > 1:
        for referral in held:
            side = Side.SENDER if referral.role == ReferralRole.RECEIVED else Side.RECEIVER
            if body.status in allowed_transitions(referral.status, side):
                return referral
    return held[0] if held else None


def _withdrawn_before(incoming: Incoming, referral_id: str) -> bool:
    """Whether this peer already withdrew ``referral_id`` (a referral this node never held)."""
    earlier = incoming.session.scalar(
        select(InboxMessage.id)
        .where(
            InboxMessage.peer_id == incoming.peer.id,
            InboxMessage.message_type == "consent-withdrawal",
            InboxMessage.referral_id == referral_id,
            InboxMessage.jti != incoming.message.jti,
        )
        .limit(1)
    )
    return earlier is not None


#: The service a referral names, and the id of the referral if already received (one query).
_SERVICE_AND_HELD = select(
    Service.name,
    Service.intake_fields,
    select(Referral.id)
    .where(
        Referral.peer_id == bindparam("peer_id"),
        Referral.role == ReferralRole.RECEIVED,
        Referral.referral_id == bindparam("referral_id"),
    )
    .scalar_subquery()
    .label("held"),
).where(Service.id == bindparam("service_id"))
_INSERT_REFERRAL = insert(Referral).returning(Referral.id)
#: The creation of a received referral in its timeline: ``(none) -> requested`` by the sender.
_INSERT_CREATION = insert(ReferralEvent).values(
    kind=referral_store.STATUS, status=ReferralStatus.REQUESTED, side=Side.SENDER
)
