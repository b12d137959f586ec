"""Look-ups the referral pages need that the referral services do not offer.

The services a referral can be sent to (for a picker), one such service with what its
form needs (the intake fields it asks for, whether it is taking referrals), a referral
found by its exact id (what a page URL carries), and the referral list a page at a time
(:func:`list_page`: two queries whatever the page holds, never the person's data).
Explicit arguments, no Flask; nothing here changes anything: sending, status changes
and withdrawal are :mod:`exchange_node.services.referrals`'.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from exchange_node.db.models import (
    DirectoryService,
    OutboxMessage,
    OutboxState,
    Peer,
    PeerDirectory,
    PeerStatus,
    Referral,
    ReferralRole,
)
from exchange_node.errors import InvalidRequestError, NotFoundError
from exchange_node.protocol.intake import INTAKE_FIELDS
from exchange_node.services import directory_search, peers
from exchange_node.services.referral_queries import find_referral
from exchange_node.services.referrals import not_accepting_reasons

MAX_PEER_LENGTH = 512
MAX_SERVICE_ID_LENGTH = 128
#: Rows per page of the referral list.
LIST_PAGE = 50


@dataclass(frozen=True)
class ServiceChoice:
    """A service of a trusted peer, as the "pick a service" list shows it."""

    peer_entity_id: str
    peer_organization: str
    service_id: str
    name: str
    accepting_referrals: bool
    capacity_status: str
    stale: bool


@dataclass(frozen=True)
class ReferralTarget:
    """One peer's service as this node's directory holds it, and what its form needs."""

    peer_entity_id: str
    peer_organization: str
    peer_trusted: bool
    service_id: str
    service_name: str
    #: The intake fields the service asks for, in the vocabulary's order (SPEC 5.4).
    intake_fields: tuple[str, ...]
    #: Why it is not taking referrals now (empty: it is); sending then needs an override.
    not_accepting: tuple[str, ...]
    capacity_status: str
    wait_days: int | None


@dataclass(frozen=True)
class ReferralRow:
    """One referral as the list shows it: identifiers, codes and times, nothing personal."""

    #: The row's id here: what the next page starts before.
    pk: int
    referral_id: str
    role: str
    service_id: str
    service_name: str
    peer_organization: str
    status: str
    created_at: int
    updated_at: int
    #: Sent referrals: ``failed`` when a message about it failed, else the state of the
    #: referral message (None: nothing queued, or a received referral).
    delivery: str | None


@dataclass(frozen=True)
class ReferralListPage:
    rows: tuple[ReferralRow, ...]
    #: ``before`` of the next, older page; None on the last page.
    older: int | None


def service_choices(session: Session, *, now: int) -> list[ServiceChoice]:
    """Services of trusted peers (not defunct), by organization and name; at most
    :data:`directory_search.MAX_LIMIT`, best first as the directory ranks them."""
    query = directory_search.DirectoryQuery(limit=directory_search.MAX_LIMIT)
    found = directory_search.search(session, query, now=now).results
    choices = [
        ServiceChoice(
            peer_entity_id=result.peer_entity_id,
            peer_organization=result.peer_organization,
            service_id=result.service_id,
            name=result.name,
            accepting_referrals=result.accepting_referrals,
            capacity_status=result.capacity_status,
            stale=result.stale,
        )
        for result in found
    ]
    return sorted(choices, key=lambda choice: (choice.peer_organization, choice.name))


def find_target(session: Session, peer: str, service_id: str, *, now: int) -> ReferralTarget:
    """The service ``service_id`` of the peer ``peer`` (its entity id) in this node's directory.

    Raises:
        InvalidRequestError: an empty or oversized peer or service id.
        NotFoundError: no such peer, or it publishes no such service here.
    """
    if not 0 < len(peer) <= MAX_PEER_LENGTH or not 0 < len(service_id) <= MAX_SERVICE_ID_LENGTH:
        raise InvalidRequestError(
            "a referral goes to a service (its id) of a peer (its URL)",
            {"/peer": "1 to 512 characters", "/service": "1 to 128 characters"},
        )
    found = peers.get_peer(session, peer)
    entry = session.scalars(
        select(DirectoryService).where(
            DirectoryService.peer_id == found.id, DirectoryService.service_id == service_id
        )
    ).one_or_none()
    if entry is None:
        raise NotFoundError("this peer publishes no such service in this node's directory")
    directory = session.get(PeerDirectory, found.id)
    requested = set(entry.intake_fields)
    return ReferralTarget(
        peer_entity_id=found.entity_id,
        peer_organization=found.organization_name,
        peer_trusted=found.status == PeerStatus.TRUSTED,
        service_id=entry.service_id,
        service_name=entry.name,
        intake_fields=tuple(name for name in INTAKE_FIELDS if name in requested),
        not_accepting=tuple(not_accepting_reasons(entry, directory, now)),
        capacity_status=entry.capacity_status,
        wait_days=entry.wait_days,
    )


def find_by_id(session: Session, referral_id: str) -> Referral:
    """The referral whose id is exactly ``referral_id`` (no prefixes or receipt codes).

    Raises:
        NotFoundError: none, or the id is not one.
    """
    try:
        referral = find_referral(session, referral_id)
    except (InvalidRequestError, NotFoundError):
        referral = None
    if referral is None or referral.referral_id != referral_id:
        raise NotFoundError("this node holds no referral with this id")
    return referral


def list_page(
    session: Session,
    *,
    role: str,
    status: str | None = None,
    before: int | None = None,
    limit: int = LIST_PAGE,
) -> ReferralListPage:
    """Referrals of ``role`` (and ``status``), newest first, that come after the row
    ``before`` (its ``pk``) in that order; at most ``limit``.

    One query for the rows (the peer's name joined) and, for sent referrals, one for
    their deliveries, however many rows the page holds.
    """
    query = (
        select(
            Referral.id,
            Referral.referral_id,
            Referral.role,
            Referral.service_id,
            Referral.service_name,
            Referral.status,
            Referral.created_at,
            Referral.updated_at,
            Peer.organization_name,
        )
        .join(Peer, Peer.id == Referral.peer_id)
        .where(Referral.role == role)
        .order_by(Referral.created_at.desc(), Referral.id.desc())
        .limit(limit + 1)
    )
    if status is not None:
        query = query.where(Referral.status == status)
    if before is not None:
        start = select(Referral.created_at).where(Referral.id == before).scalar_subquery()
        query = query.where(
            or_(
                Referral.created_at < start,
                and_(Referral.created_at == start, Referral.id < before),
            )
        )
    found = session.execute(query).all()
    shown = found[:limit]
    sent = [row.id for row in shown if row.role == ReferralRole.SENT]
    deliveries = _delivery_states(session, sent) if sent else {}
    rows = tuple(
        ReferralRow(
            pk=row.id,
            referral_id=row.referral_id,
            role=row.role,
            service_id=row.service_id,
            service_name=row.service_name,
            peer_organization=row.organization_name,
            status=row.status,
            created_at=row.created_at,
            updated_at=row.updated_at,
            delivery=deliveries.get(row.id),
        )
        for row in shown
    )
    return ReferralListPage(rows, rows[-1].pk if len(found) > limit else None)


def _delivery_states(session: Session, referral_pks: list[int]) -> dict[int, str]:
    """Referral row id -> ``failed`` if one of its messages failed, else the state of
    its referral message (as the referral's page shows them)."""
    messages = session.execute(
        select(OutboxMessage.referral_pk, OutboxMessage.message_type, OutboxMessage.state)
        .where(OutboxMessage.referral_pk.in_(referral_pks))
        .order_by(OutboxMessage.id)
    )
    states: dict[int, str] = {}
    for referral_pk, message_type, state in messages:
        if referral_pk is None:
            continue
        if state == OutboxState.FAILED:
            states[referral_pk] = OutboxState.FAILED.value
        elif message_type == "referral":
            states.setdefault(referral_pk, state)
    return states


__all__ = [
    "LIST_PAGE",
    "ReferralListPage",
    "ReferralRow",
    "ReferralTarget",
    "ServiceChoice",
    "find_by_id",
    "find_target",
    "list_page",
    "service_choices",
]
