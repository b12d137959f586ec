"""Finding referrals and describing them for staff, the command line and the API.

:func:`describe` builds a JSON-able summary: identifiers, the peer and service, the
status and its timeline, delivery of the messages this node sent about it, and the
deletion confirmation. Personal data (the person, consent record, safe contact and
timeline notes) is opened only when asked for, and whoever asks for it has that
access recorded (:func:`record_personal_access`, SPEC 14 item 7). Nothing here changes
a referral.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from exchange_node.db.models import (
    OutboxMessage,
    OutboxState,
    Peer,
    Referral,
    ReferralEvent,
    ReferralRole,
)
from exchange_node.errors import InvalidRequestError, NotFoundError
from exchange_node.node import Node
from exchange_node.protocol.messages import format_timestamp
from exchange_node.services import audit, referral_store

#: A reference shorter than this must match a referral id exactly.
MIN_PREFIX = 8
MAX_LIST_LIMIT = 1000
_CONSENT_CODE = re.compile(r"[0-9A-Za-z]{4}-[0-9A-Za-z]{4}")
_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~:-]{0,127}")


def find_referral(session: Session, reference: str) -> Referral:
    """The referral named by its id, a unique prefix of 8 or more characters, or its
    consent receipt code (``XXXX-XXXX``, sent referrals).

    Raises:
        NotFoundError: nothing matches.
        InvalidRequestError: not a referral reference, too short, or ambiguous.
    """
    reference = reference.strip()
    if _CONSENT_CODE.fullmatch(reference):
        found = session.scalars(
            select(Referral).where(Referral.consent_code == reference.upper())
        ).one_or_none()
        if found is not None:
            return found
    if not _REFERENCE.fullmatch(reference):
        raise InvalidRequestError(
            "a referral is named by its id (or a prefix of it) or its consent receipt code",
            {"/referral": "not a referral reference"},
        )
    exact = list(session.scalars(select(Referral).where(Referral.referral_id == reference)))
    matches = exact or _by_prefix(session, reference)
    if not matches:
        raise NotFoundError(f"no referral {reference}: see 'exchange-node referral list'")
    if len(matches) > 1:
        raise InvalidRequestError(
            f"{reference} names more than one referral: give more of its id",
            {"/referral": "ambiguous"},
        )
    return matches[0]


def _by_prefix(session: Session, prefix: str) -> list[Referral]:
    if len(prefix) < MIN_PREFIX:
        raise InvalidRequestError(
            f"give the referral id or at least {MIN_PREFIX} of its first characters",
            {"/referral": "too short"},
        )
    query = select(Referral).where(Referral.referral_id.startswith(prefix, autoescape=True))
    return list(session.scalars(query.limit(2)))


def list_referrals(
    session: Session, *, role: str | None = None, status: str | None = None, limit: int = 100
) -> list[Referral]:
    """Referrals, newest first, of one role and status if given."""
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise InvalidRequestError(
            f"limit must be 1 to {MAX_LIST_LIMIT}", {"/limit": f"1 to {MAX_LIST_LIMIT}"}
        )
    query = select(Referral).order_by(Referral.created_at.desc(), Referral.id.desc())
    if role is not None:
        query = query.where(Referral.role == role)
    if status is not None:
        query = query.where(Referral.status == status)
    return list(session.scalars(query.limit(limit)))


def record_personal_access(session: Session, referral: Referral, *, actor: str, now: int) -> None:
    """Audit that ``actor`` was shown the referral's personal data (SPEC 14 item 7)."""
    audit.record(
        session,
        actor=actor,
        action="referral.personal_data_viewed",
        subject=referral.referral_id,
        details={"role": referral.role},
        now=now,
    )


def describe(node: Node, referral: Referral, *, personal: bool) -> dict[str, Any]:
    """A JSON-able summary of ``referral`` (attached to a session); personal data only
    when ``personal`` (``None`` once purged)."""
    session = _session_of(referral)
    peer = session.get_one(Peer, referral.peer_id)
    sent = referral.role == ReferralRole.SENT
    summary: dict[str, Any] = {
        "referral_id": referral.referral_id,
        "role": referral.role,
        "peer": {"entity_id": peer.entity_id, "organization": peer.organization_name},
        "service_id": referral.service_id,
        "service_name": referral.service_name,
        "status": referral.status,
        "consent_id": referral.consent_id,
        "consent_code": referral.consent_code if sent else None,
        "consent_expires_at": _time(referral.consent_expires_at),
        "override": referral.override,
        "capacity_version": referral.capacity_version,
        "created_by": referral.created_by,
    }
    for name in ("created_at", "updated_at", "closed_at", "withdrawn_at", "purged_at"):
        summary[name] = _time(getattr(referral, name))
    summary["purge_reason"] = referral.purge_reason
    summary["peer_deleted_at"] = _time(referral.peer_deleted_at)
    summary |= _delivery(session, referral)
    summary["timeline"] = [_event(node, referral, event, personal) for event in referral.events]
    if personal:
        summary |= _personal(node, referral)
    return summary


def _session_of(referral: Referral) -> Session:
    session = object_session(referral)
    if session is None:
        raise RuntimeError("describe() needs a referral attached to a session")
    return session


def _delivery(session: Session, referral: Referral) -> dict[str, Any]:
    """The referral message's delivery (sent referrals), and every message that failed."""
    rows = list(
        session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.referral_pk == referral.id)
            .order_by(OutboxMessage.id)
        )
    )
    first = next((row for row in rows if row.message_type == "referral"), None)
    return {
        "delivery": None if first is None else _message(first),
        "messages": [_message(row) for row in rows],
        "failed_messages": [_message(row) for row in rows if row.state == OutboxState.FAILED],
    }


def _message(row: OutboxMessage) -> dict[str, Any]:
    return {
        "message_type": row.message_type,
        "state": row.state,
        "attempts": row.attempts,
        "created_at": _time(row.created_at),
        "delivered_at": _time(row.delivered_at),
        "last_error_code": row.last_error_code,
        "last_error": row.last_error,
    }


def _event(node: Node, referral: Referral, event: ReferralEvent, personal: bool) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "time": _time(event.time),
        "kind": event.kind,
        "status": event.status,
        "side": event.side,
        "sequence": event.sequence,
        "reason_code": event.reason_code,
    }
    if personal:
        text = referral_store.open_event_text(node.data_key, referral, event)
        shown["note"] = text.get("note")
        shown["reason_text"] = text.get("reason_text")
    return shown


def _personal(node: Node, referral: Referral) -> dict[str, Any]:
    data = referral_store.open_personal_data(node.data_key, referral)
    if data is None:
        return {"person": None, "consent": None, "safe_contact": None, "override_reason": None}
    return {
        "person": dict(data.person),
        "consent": dict(data.consent),
        "safe_contact": dict(data.safe_contact),
        "override_reason": data.override_reason,
    }


def _time(value: int | None) -> str | None:
    return None if value is None else format_timestamp(value)


__all__ = [
    "MIN_PREFIX",
    "describe",
    "find_referral",
    "list_referrals",
    "record_personal_access",
]
