"""Look-ups the referral pages need that the referral services do not offer.

The services a referral can be sent to (for a picker), one such service with what its
form needs (the intake fields it asks for, whether it is taking referrals), and a
referral found by its exact id (what a page URL carries). Explicit arguments, no
Flask; nothing here changes anything: sending, status changes and withdrawal are
:mod:`exchange_node.services.referrals`'.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange_node.db.models import (
    DirectoryService,
    PeerDirectory,
    PeerStatus,
    Referral,
)
from exchange_node.errors import InvalidRequestError, NotFoundError
from exchange_node.protocol.intake import INTAKE_FIELDS
from exchange_node.services import directory_search, peers
from exchange_node.services.referral_queries import find_referral
from exchange_node.services.referrals import not_accepting_reasons

MAX_PEER_LENGTH = 512
MAX_SERVICE_ID_LENGTH = 128


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


__all__ = ["ReferralTarget", "ServiceChoice", "find_by_id", "find_target", "service_choices"]
