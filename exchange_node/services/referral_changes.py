"""Changing a referral from this node: a status change (SPEC 5.8, 10) and a withdrawal (5.9).

Each change is checked, recorded on the referral's timeline (free text sealed),
queued as a message to the peer through the outbox and audited, in the caller's
transaction; the caller commits, then calls :meth:`Node.notify_outbox`. Changes
that arrive from the peer are the inbox's (:mod:`exchange_node.services.inbox`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange_node.db.models import OutboxMessage, OutboxState, Peer, Referral, ReferralRole
from exchange_node.errors import ConflictError, InvalidRequestError
from exchange_node.node import Node
from exchange_node.protocol import wire
from exchange_node.protocol.errors import SchemaError
from exchange_node.protocol.messages import format_timestamp
from exchange_node.protocol.states import (
    REASON_REQUIRED,
    TERMINAL_STATUSES,
    ReasonCode,
    ReferralStatus,
    Side,
    check_transition,
)
from exchange_node.services import audit, outbox, referral_store
from exchange_node.services.referral_queries import find_referral


def update_status(
    node: Node,
    session: Session,
    reference: str,
    *,
    status: str,
    reason_code: str | None = None,
    reason_text: str | None = None,
    note: str | None = None,
    actor: str,
    now: int,
) -> Referral:
    """Move the referral to ``status`` as this node's side, and tell the peer.

    Raises:
        NotFoundError, InvalidRequestError: no such referral, or a missing or bad reason.
        IllegalTransitionError: not allowed from the current status for this side
            (it names the statuses that are).
        ConflictError: a note or reason text on a referral whose personal data was purged.
        PeerNotTrustedError: the peer is no longer trusted.
    """
    referral = find_referral(session, reference)
    return change_status(
        node,
        session,
        referral,
        status=status,
        reason_code=reason_code,
        reason_text=reason_text,
        note=note,
        actor=actor,
        now=now,
    )


def change_status(
    node: Node,
    session: Session,
    referral: Referral,
    *,
    status: str,
    reason_code: str | None,
    reason_text: str | None,
    note: str | None,
    actor: str,
    now: int,
    hold_until_trusted: bool = False,
) -> Referral:
    """:func:`update_status` for a referral already found (``hold_until_trusted``: see
    :func:`~exchange_node.services.outbox.enqueue`)."""
    side = Side.SENDER if referral.role == ReferralRole.SENT else Side.RECEIVER
    check_transition(referral.status, status, side)
    _check_reason(status, reason_code, reason_text)
    if referral.purged_at is not None and (note or reason_text):
        raise ConflictError(
            "this referral's personal data was purged: change its status without a note or text"
        )
    sequence = referral.sent_sequence + 1
    body: dict[str, Any] = {
        "referral_id": referral.referral_id,
        "status": status,
        "sequence": sequence,
        "changed_at": format_timestamp(now),
    }
    if reason_code is not None:
        body["reason"] = {"code": reason_code} | ({"text": reason_text} if reason_text else {})
    if note:
        body["note"] = note
    check_message_body(wire.ReferralStatusBodySchema, body, "the status change")
    referral_store.record_status(
        session,
        referral,
        status=status,
        side=side,
        sequence=sequence,
        changed_at=now,
        now=now,
        reason_code=reason_code,
        text={"note": note, "reason_text": reason_text},
        keys=node.data_key,
    )
    peer = session.get_one(Peer, referral.peer_id)
    outbox.enqueue(
        node,
        session,
        peer=peer,
        message_type="referral-status",
        body=body,
        referral=referral,
        now=now,
        hold_until_trusted=hold_until_trusted,
    )
    audit.record(
        session,
        actor=actor,
        action="referral.status_changed",
        subject=referral.referral_id,
        details={"peer": peer.entity_id, "status": status, "side": side, "sequence": sequence},
        now=now,
    )
    return referral


def _check_reason(status: str, code: str | None, text: str | None) -> None:
    codes = [reason.value for reason in ReasonCode]
    if code is None:
        if status in REASON_REQUIRED:
            raise InvalidRequestError(
                f"{status} needs a reason code: one of {', '.join(codes)}",
                {"/reason/code": "required for this status"},
            )
        if text:
            raise InvalidRequestError(
                "a reason text needs a reason code", {"/reason/code": "required with a text"}
            )
        return
    if code not in codes:
        raise InvalidRequestError(
            f"unknown reason code; one of {', '.join(codes)}", {"/reason/code": "unknown code"}
        )
    if code == ReasonCode.OTHER and not text:
        raise InvalidRequestError(
            "the reason 'other' needs a text saying what it is",
            {"/reason/text": "required when the code is other"},
        )


def withdraw(node: Node, session: Session, reference: str, *, actor: str, now: int) -> Referral:
    """The person withdrew consent: tell the peer, and purge this node's copy of the data.

    A referral that is not yet closed and that the peer holds is first cancelled
    (reason ``person-declined``, SPEC 5.9); one the peer never received is cancelled here
    only (its queued message is cancelled with the purge); then the ``consent-withdrawal`` goes out
    and the personal data here is purged. The peer answers with a deletion receipt.

    Raises:
        NotFoundError: no such referral.
        InvalidRequestError: a referral this node received (only the referrer withdraws).
        ConflictError: already withdrawn.

    A peer that is suspended or removed meanwhile does not stop the withdrawal: this
    node's copy is purged now, and the messages wait until the peer is trusted again
    (or fail at their deadline, shown on the referral).
    """
    referral = find_referral(session, reference)
    if referral.role != ReferralRole.SENT:
        raise InvalidRequestError(
            "only the referring node withdraws consent: the person asks the organization "
            "that referred them",
            {"/referral": "received, not sent, by this node"},
        )
    if referral.withdrawn_at is not None:
        raise ConflictError(f"consent for referral {referral.referral_id} was already withdrawn")
    if referral.status not in TERMINAL_STATUSES:
        if _referral_delivered(session, referral):
            change_status(
                node,
                session,
                referral,
                status=ReferralStatus.CANCELLED,
                reason_code=ReasonCode.PERSON_DECLINED,
                reason_text=None,
                note=None,
                actor=actor,
                now=now,
                hold_until_trusted=True,
            )
        else:  # the peer never had it (its message is cancelled by the purge): close it here
            referral_store.record_status(
                session,
                referral,
                status=ReferralStatus.CANCELLED,
                side=Side.SENDER,
                sequence=referral.sent_sequence,  # no message carries this change
                changed_at=now,
                now=now,
                reason_code=ReasonCode.PERSON_DECLINED,
            )
    peer = session.get_one(Peer, referral.peer_id)
    body = {
        "referral_id": referral.referral_id,
        "consent_id": referral.consent_id,
        "withdrawn_at": format_timestamp(now),
    }
    row = outbox.enqueue(
        node,
        session,
        peer=peer,
        message_type="consent-withdrawal",
        body=body,
        referral=referral,
        now=now,
        hold_until_trusted=True,  # the person's withdrawal takes effect here at once
    )
    referral.withdrawn_at = now
    referral.withdrawal_jti = row.jti
    referral.updated_at = now
    referral_store.add_event(session, referral, kind=referral_store.WITHDRAWAL, now=now)
    audit.record(
        session,
        actor=actor,
        action="referral.withdrawn",
        subject=referral.referral_id,
        details={"peer": peer.entity_id, "consent_id": referral.consent_id},
        now=now,
    )
    if referral_store.purge(session, referral, now=now, reason=referral_store.WITHDRAWN):
        audit.record(
            session,
            actor=actor,
            action="data.purged",
            subject=referral.referral_id,
            details={"reason": referral_store.WITHDRAWN, "role": referral.role},
            now=now,
        )
    return referral


def _referral_delivered(session: Session, referral: Referral) -> bool:
    """Whether the peer holds the referral: its message has a receipt."""
    state = session.scalar(
        select(OutboxMessage.state)
        .where(OutboxMessage.referral_pk == referral.id, OutboxMessage.message_type == "referral")
        .order_by(OutboxMessage.id)
        .limit(1)
    )
    return state == OutboxState.DELIVERED


def check_message_body(schema: type[Any], body: Mapping[str, Any], what: str) -> None:
    """Validate a message body before anything is stored; errors point into the body.

    Raises:
        InvalidRequestError: ``fields`` maps JSON Pointers to broken rules (never values).
    """
    try:
        wire.load_claims(schema, body, what)
    except SchemaError as e:
        raise InvalidRequestError(e.detail, e.fields) from e


__all__ = ["change_status", "check_message_body", "update_status", "withdraw"]
