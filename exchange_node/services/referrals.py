"""Sending a consented referral, and the public face of the referral services.

:func:`create_referral` checks a :class:`ReferralDraft` against everything SPEC 5
asks of a sender (a trusted peer, a service from its synced directory that is
taking referrals unless overridden, only the intake fields that service asked for,
only data categories the person consented to, a valid consent record and safe
contact), then stores the referral with its personal data sealed, its timeline's
first event, the sealed message in the outbox and an audit entry, all in the
caller's transaction. The caller commits, then calls :meth:`Node.notify_outbox`.

Status changes and withdrawal are in :mod:`~exchange_node.services.referral_changes`,
finding and describing referrals in :mod:`~exchange_node.services.referral_queries`;
both are re-exported here. Nothing here delivers: that is the worker's.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange_node.db.models import (
    CapacityStatus,
    DirectoryService,
    Peer,
    PeerDirectory,
    PeerStatus,
    Referral,
    ReferralRole,
)
from exchange_node.errors import (
    ExchangeError,
    InvalidRequestError,
    NotFoundError,
    PeerNotTrustedError,
)
from exchange_node.node import Node
from exchange_node.protocol import wire
from exchange_node.protocol.intake import (
    DATA_CATEGORIES,
    INTAKE_FIELDS,
    SENSITIVE_CATEGORIES,
    category_of,
)
from exchange_node.protocol.messages import format_timestamp
from exchange_node.protocol.states import ReferralStatus, Side
from exchange_node.services import audit, outbox, peers, referral_store
from exchange_node.services.referral_changes import check_message_body, update_status, withdraw
from exchange_node.services.referral_queries import describe, find_referral, list_referrals

#: Crockford's base32 alphabet (no I, L, O, U): codes read aloud and typed without confusion.
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
MAX_CAPTURED_BY_LENGTH = 128
#: The protocol's clock skew (SPEC 11.1), for a consent recorded "now" on another clock.
CLOCK_SKEW = 60


class ServiceNotAcceptingError(ExchangeError):
    """The service is not taking referrals now; sending needs an override with a reason."""

    code = "service_not_accepting"
    title = "Service not accepting referrals"
    status = 409


@dataclass(frozen=True)
class ReferralDraft:
    """What staff enter to refer a person: the service, the data, the consent, safe contact."""

    #: The peer's entity identifier (its URL).
    peer: str
    service_id: str
    #: Intake field name -> value (SPEC 5.4).
    person: Mapping[str, str]
    #: The data categories the person consented to share.
    categories: Sequence[str]
    purpose: str
    given_by: str
    method: str
    #: Opaque reference of the staff member who recorded the consent (never a name).
    captured_by: str
    expires_at: int
    safe_contact: Mapping[str, Any] = field(default_factory=dict)
    captured_at: int | None = None
    #: Why to send although the service is not accepting (sealed; sent to the peer).
    override_reason: str | None = None


def create_referral(
    node: Node, session: Session, draft: ReferralDraft, *, actor: str, now: int
) -> Referral:
    """Check ``draft``, store the referral (personal data sealed) and queue its message.

    Raises:
        NotFoundError: no such peer, or the service is not in its synced directory.
        PeerNotTrustedError: the peer is pending, suspended or removed.
        ServiceNotAcceptingError: not accepting, no capacity or a stale directory, and
            no override reason.
        InvalidRequestError: fields (JSON Pointers into the referral body) say what is wrong.
    """
    peer = _trusted_peer(session, draft.peer)
    entry, directory = _directory_entry(session, peer, draft.service_id)
    override_reason = _override_reason(entry, directory, draft.override_reason, now)
    _check_draft(draft, entry, now)
    body = _referral_body(peer, entry, directory, draft, override_reason, now)
    referral = Referral(
        referral_id=body["referral_id"],
        role=ReferralRole.SENT,
        peer_id=peer.id,
        service_id=entry.service_id,
        service_name=entry.name,
        status=ReferralStatus.REQUESTED,
        consent_id=body["consent"]["consent_id"],
        consent_code=_new_consent_code(session),
        consent_expires_at=draft.expires_at,
        override=override_reason is not None,
        capacity_version=body.get("capacity_version"),
        created_by=actor,
        created_at=now,
        updated_at=now,
    )
    session.add(referral)
    session.flush()
    personal = referral_store.PersonalData(
        body["person"], body["consent"], body["safe_contact"], override_reason
    )
    referral_store.seal_personal_data(node.data_key, referral, personal)
    referral_store.add_event(
        session,
        referral,
        kind=referral_store.STATUS,
        now=now,
        status=ReferralStatus.REQUESTED,
        side=Side.SENDER,
    )
    outbox.enqueue(
        node, session, peer=peer, message_type="referral", body=body, referral=referral, now=now
    )
    audit.record(
        session,
        actor=actor,
        action="referral.created",
        subject=referral.referral_id,
        details={
            "peer": peer.entity_id,
            "service_id": entry.service_id,
            "override": referral.override,
        },
        now=now,
    )
    return referral


def _trusted_peer(session: Session, reference: str) -> Peer:
    peer = peers.get_peer(session, reference.strip())
    if peer.status != PeerStatus.TRUSTED:
        raise PeerNotTrustedError(
            f"{peer.entity_id} is {peer.status}: referrals go only to trusted peers"
        )
    return peer


def _directory_entry(
    session: Session, peer: Peer, service_id: str
) -> tuple[DirectoryService, PeerDirectory | None]:
    entry = session.scalars(
        select(DirectoryService).where(
            DirectoryService.peer_id == peer.id, DirectoryService.service_id == service_id
        )
    ).one_or_none()
    if entry is None:
        raise NotFoundError(
            f"{peer.entity_id} publishes no service {service_id!r} in the directory this node "
            "holds: run 'exchange-node directory sync' and search again"
        )
    return entry, session.get(PeerDirectory, peer.id)


def _override_reason(
    entry: DirectoryService, directory: PeerDirectory | None, reason: str | None, now: int
) -> str | None:
    """The override reason to send, when one is needed; refuse when needed and missing.

    A reason given for a service that is accepting is not sent (nothing to override).
    """
    problems = not_accepting_reasons(entry, directory, now)
    if not problems:
        return None
    if reason is None or not reason.strip():
        raise ServiceNotAcceptingError(
            f"{entry.name!r} cannot be referred to now: {'; '.join(problems)}. "
            "Send anyway only with an override reason for the receiving staff"
        )
    return reason.strip()


def not_accepting_reasons(
    entry: DirectoryService, directory: PeerDirectory | None, now: int
) -> list[str]:
    """Why a service is not taking referrals as far as this node knows (empty: it is)."""
    problems = []
    if not entry.accepting_referrals:
        problems.append("it is not accepting referrals")
    if entry.capacity_status == CapacityStatus.NO_CAPACITY:
        problems.append("it has no capacity")
    # Stale exactly as directory search shows it: the held document expired, or none is held.
    if directory is None or directory.expires_at is None or directory.expires_at <= now:
        problems.append("its capacity document is stale (run 'exchange-node directory sync')")
    return problems


def _check_draft(draft: ReferralDraft, entry: DirectoryService, now: int) -> None:
    """The rules a schema cannot see: minimum data, consent coverage, times, staff reference."""
    problems: dict[str, str] = {}
    unknown = [name for name in draft.categories if name not in DATA_CATEGORIES]
    if unknown:
        problems["/consent/data_categories"] = (
            f"unknown categories {', '.join(unknown)}; known: {', '.join(DATA_CATEGORIES)}"
        )
    requested = set(entry.intake_fields)
    for name in draft.person:
        problem = _field_problem(name, requested, set(draft.categories))
        if problem:
            problems[f"/person/{name}"] = problem
    captured_by = draft.captured_by
    if (
        not captured_by
        or len(captured_by) > MAX_CAPTURED_BY_LENGTH
        or "@" in captured_by
        or any(c.isspace() for c in captured_by)
    ):
        problems["/consent/captured_by"] = (
            f"an opaque staff reference (1-{MAX_CAPTURED_BY_LENGTH} characters, no spaces, "
            "no '@'), never a name or an e-mail address"
        )
    captured_at = now if draft.captured_at is None else draft.captured_at
    if captured_at > now + CLOCK_SKEW:
        problems["/consent/captured_at"] = "in the future"
    if draft.expires_at <= now:
        problems["/consent/expires_at"] = "the consent has expired: it must end after now"
    elif draft.expires_at <= captured_at:
        problems["/consent/expires_at"] = "must be later than when consent was given"
    if problems:
        raise InvalidRequestError(_summary(problems), problems)


def _field_problem(name: str, requested: set[str], consented: set[str]) -> str | None:
    if name not in INTAKE_FIELDS:
        return "not an intake field (SPEC 5.4)"
    if name not in requested:
        return "not requested by this service"
    category = category_of(name)
    if category in consented:
        return None
    if category in SENSITIVE_CATEGORIES:
        return (
            f"its category {category} is sensitive and not consented: "
            "the consent must name it explicitly"
        )
    return f"its category {category} is not consented"


def _summary(problems: Mapping[str, str]) -> str:
    first, reason = next(iter(problems.items()))
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"the referral cannot be sent: {first.lstrip('/')}: {reason}{more}"


def _referral_body(
    peer: Peer,
    entry: DirectoryService,
    directory: PeerDirectory | None,
    draft: ReferralDraft,
    override_reason: str | None,
    now: int,
) -> dict[str, Any]:
    """The referral message body (SPEC 5.3), checked against the wire schema."""
    consent = {
        "consent_id": str(uuid.uuid4()),
        "given_by": draft.given_by,
        "recipient": peer.entity_id,
        "service_id": entry.service_id,
        "data_categories": list(dict.fromkeys(draft.categories)),
        "purpose": draft.purpose,
        "method": draft.method,
        "captured_by": draft.captured_by,
        "captured_at": format_timestamp(now if draft.captured_at is None else draft.captured_at),
        "expires_at": format_timestamp(draft.expires_at),
    }
    body: dict[str, Any] = {
        "referral_id": str(uuid.uuid4()),
        "service_id": entry.service_id,
        "person": dict(draft.person),
        "consent": consent,
        "safe_contact": dict(draft.safe_contact),
    }
    if directory is not None and directory.version is not None:
        body["capacity_version"] = directory.version
    if override_reason is not None:
        body["override"] = {"reason": override_reason}
    check_message_body(wire.ReferralBodySchema, body, "the referral")
    return body


def _new_consent_code(session: Session) -> str:
    """A fresh receipt code: 8 random Crockford base32 characters, shown as XXXX-XXXX."""
    for _ in range(8):
        raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))
        code = f"{raw[:4]}-{raw[4:]}"
        if session.scalar(select(Referral.id).where(Referral.consent_code == code)) is None:
            return code
    raise ExchangeError("could not find an unused consent code")  # 2^40 codes: not in practice


__all__ = [
    "CODE_ALPHABET",
    "ReferralDraft",
    "ServiceNotAcceptingError",
    "create_referral",
    "describe",
    "find_referral",
    "list_referrals",
    "not_accepting_reasons",
    "update_status",
    "withdraw",
]
