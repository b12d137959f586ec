"""Where a referral's personal data lives, how it is sealed, and how it is purged.

Every service that touches referrals (sending, the inbox, status changes,
withdrawal, retention) goes through these few functions, so there is one answer
to "where is the person's data?": in :attr:`Referral.sealed`, in
:attr:`ReferralEvent.sealed_text` and, until delivered, in the outbox's
``sealed_body`` and ``envelope``. Each sealed value is bound to its place (the
``context`` of :meth:`DataKeyRing.seal`), so a value copied to another row does
not open. :func:`purge` clears all of them and leaves the tombstone SPEC 5.9
describes: identifiers, codes, times and the status history.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from exchange_node.data_key import DataKeyRing
from exchange_node.db.models import (
    OutboxMessage,
    OutboxState,
    Referral,
    ReferralEvent,
    ReferralRole,
)
from exchange_node.errors import ConflictError
from exchange_node.protocol.states import TERMINAL_STATUSES, Side

#: ``Referral.purge_reason`` values.
WITHDRAWN = "withdrawn"
RETENTION = "retention"

#: ``ReferralEvent.kind`` values.
STATUS = "status"
WITHDRAWAL = "withdrawn"
PURGED = "purged"
DELETED_AT_PEER = "deleted-at-peer"
DELIVERY_FAILED = "delivery-failed"


@dataclass(frozen=True)
class PersonalData:
    """What :attr:`Referral.sealed` holds: the referral body's personal members (SPEC 5.3-5.6)."""

    person: Mapping[str, str]
    consent: Mapping[str, Any]
    safe_contact: Mapping[str, Any]
    override_reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "person": dict(self.person),
            "consent": dict(self.consent),
            "safe_contact": dict(self.safe_contact),
            "override_reason": self.override_reason,
        }


def referral_context(referral: Referral) -> str:
    return f"referrals/{referral.role}/{referral.peer_id}/{referral.referral_id}"


def seal_personal_data(keys: DataKeyRing, referral: Referral, data: PersonalData) -> None:
    """Store ``data`` on ``referral`` (whose role, peer and ``referral_id`` are set)."""
    referral.sealed = keys.seal_json(data.to_json(), context=referral_context(referral))


def open_personal_data(keys: DataKeyRing, referral: Referral) -> PersonalData | None:
    """The referral's personal data, or ``None`` once purged.

    Raises:
        DataKeyError: the value does not open (wrong or missing data key, or tampered).
    """
    if referral.sealed is None:
        return None
    value = keys.open_json(referral.sealed, context=referral_context(referral))
    return PersonalData(
        person=value["person"],
        consent=value["consent"],
        safe_contact=value["safe_contact"],
        override_reason=value.get("override_reason"),
    )


def event_context(referral: Referral, event: ReferralEvent) -> str:
    """An event's free text is bound to its referral and its place in the history."""
    place = f"{event.kind}/{event.side}/{event.sequence}/{event.time}"
    return f"{referral_context(referral)}/events/{place}"


def add_event(
    session: Session,
    referral: Referral,
    *,
    kind: str,
    now: int,
    status: str | None = None,
    side: str | None = None,
    sequence: int | None = None,
    reason_code: str | None = None,
    text: Mapping[str, str | None] | None = None,
    keys: DataKeyRing | None = None,
) -> ReferralEvent:
    """Append a timeline event; ``text`` (``note``, ``reason_text``) is sealed with ``keys``.

    Refuses free text on a purged referral: nothing personal is stored after a purge.
    """
    event = ReferralEvent(
        referral=referral,
        time=now,
        kind=kind,
        status=status,
        side=side,
        sequence=sequence,
        reason_code=reason_code,
    )
    kept = {name: value for name, value in (text or {}).items() if value}
    if kept:
        if referral.purged_at is not None:
            raise ConflictError("this referral's personal data was purged; no notes can be added")
        if keys is None:
            raise TypeError("free text is sealed: pass the data keys")
        event.sealed_text = keys.seal_json(kept, context=event_context(referral, event))
    session.add(event)
    return event


def record_status(
    session: Session,
    referral: Referral,
    *,
    status: str,
    side: str,
    sequence: int,
    changed_at: int,
    now: int,
    reason_code: str | None = None,
    text: Mapping[str, str | None] | None = None,
    keys: DataKeyRing | None = None,
) -> ReferralEvent:
    """Apply a status change the caller has checked (``check_transition``) and log it.

    Sets the status, the retention clock (``closed_at``) on a terminal status, and the
    side's sequence; appends the timeline event with the sealed note and reason text.
    """
    referral.status = status
    referral.updated_at = now
    if status in TERMINAL_STATUSES and referral.closed_at is None:
        referral.closed_at = changed_at
    own = (side == Side.SENDER) == (referral.role == ReferralRole.SENT)
    if own:
        referral.sent_sequence = max(referral.sent_sequence, sequence)
    else:
        referral.received_sequence = max(referral.received_sequence, sequence)
    return add_event(
        session,
        referral,
        kind=STATUS,
        now=changed_at,
        status=status,
        side=side,
        sequence=sequence,
        reason_code=reason_code,
        text=text,
        keys=keys,
    )


def open_event_text(keys: DataKeyRing, referral: Referral, event: ReferralEvent) -> dict[str, str]:
    """An event's ``note`` and ``reason_text``, if any and not purged."""
    if event.sealed_text is None:
        return {}
    value = keys.open_json(event.sealed_text, context=event_context(referral, event))
    return {str(name): str(text) for name, text in value.items()}


def purge(session: Session, referral: Referral, *, now: int, reason: str) -> bool:
    """Clear every copy of the referral's personal data; keep the tombstone.

    Clears the sealed person, consent and safe contact, every event's free text,
    and the sealed bodies and envelopes of its outbox messages (pending ones are
    cancelled: a referral whose data is gone is not delivered). Returns False when
    it was already purged. The caller records the audit entry.
    """
    if referral.purged_at is not None:
        return False
    referral.sealed = None
    referral.purged_at = now
    referral.purge_reason = reason
    referral.updated_at = now
    for event in referral.events:
        event.sealed_text = None
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.referral_pk == referral.id, OutboxMessage.state == OutboxState.PENDING)
        .where(OutboxMessage.message_type == "referral")
        .values(state=OutboxState.CANCELLED, lease_until=None, last_error_code="purged")
    )
    # Everything not waiting to go: the cancelled referral itself, and messages already
    # delivered or failed. Pending status and withdrawal messages carry no personal data
    # beyond staff notes meant for the peer; delivery clears them once done.
    session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.referral_pk == referral.id,
            OutboxMessage.state != OutboxState.PENDING,
        )
        .values(sealed_body=None, envelope=None)
    )
    add_event(session, referral, kind=PURGED, now=now, reason_code=reason)
    return True


def find(session: Session, role: str, peer_id: int, referral_id: str) -> Referral | None:
    return session.scalars(
        select(Referral).where(
            Referral.role == role, Referral.peer_id == peer_id, Referral.referral_id == referral_id
        )
    ).one_or_none()
