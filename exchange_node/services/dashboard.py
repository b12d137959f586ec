"""What the dashboard reads: what needs someone's attention on this node.

:func:`attention` gathers referrals received and still open, referrals sent and still
waiting for their outcome, messages whose delivery failed (with the peer's error code),
and trusted peers that fail or have not been heard from for long. Everything here is
identifiers, statuses, codes and times, never a referred person's data; nothing here
changes anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from exchange_node.db.models import (
    OutboxMessage,
    OutboxState,
    Peer,
    PeerDirectory,
    PeerStatus,
    Referral,
    ReferralRole,
)
from exchange_node.node import Node
from exchange_node.protocol.states import TERMINAL_STATUSES, ReferralStatus

__all__ = [
    "PEER_PROBLEMS",
    "Attention",
    "FailedDelivery",
    "Listing",
    "PeerProblem",
    "ReferralLine",
    "attention",
]

#: How many lines each list of the dashboard shows (the counts cover all).
SHOWN = 10
#: A peer not refreshed or synced for this many of its periods is reported.
MISSED_PERIODS = 3
#: Received referrals that wait for this node: not yet answered, or accepted and not done.
OPEN_INCOMING = (
    ReferralStatus.REQUESTED,
    ReferralStatus.ACCEPTED,
    ReferralStatus.IN_PROGRESS,
    ReferralStatus.ON_HOLD,
)
#: Codes of what can be wrong with a peer, in the order the dashboard explains them.
PEER_PROBLEMS = (
    "delivery_failing",
    "capacity_missing",
    "capacity_stale",
    "capacity_failing",
    "capacity_old",
    "configuration_expired",
    "configuration_failing",
    "configuration_old",
)

T = TypeVar("T")


@dataclass(frozen=True)
class Listing(Generic[T]):
    """How many there are, and the first few."""

    total: int
    shown: tuple[T, ...]


@dataclass(frozen=True)
class ReferralLine:
    referral_id: str
    service_name: str
    peer_organization: str
    status: str
    updated_at: int


@dataclass(frozen=True)
class FailedDelivery:
    """A message this node gave up delivering: what it was about, and what the peer said."""

    referral_id: str | None
    message_type: str
    peer_organization: str
    error_code: str | None
    attempts: int
    created_at: int


@dataclass(frozen=True)
class PeerProblem:
    entity_id: str
    organization_name: str
    #: Codes from :data:`PEER_PROBLEMS`.
    problems: tuple[str, ...]
    delivery_failures: int
    delivery_retry_at: int | None
    synced_at: int | None
    refreshed_at: int | None
    last_error_code: str | None


@dataclass(frozen=True)
class Attention:
    incoming: Listing[ReferralLine]
    outgoing: Listing[ReferralLine]
    failed: Listing[FailedDelivery]
    peers: tuple[PeerProblem, ...]


def attention(node: Node, session: Session, *, now: int, limit: int = SHOWN) -> Attention:
    """Everything the dashboard shows, newest first in each list."""
    incoming = _open_referrals(ReferralRole.RECEIVED).where(Referral.status.in_(OPEN_INCOMING))
    outgoing = _open_referrals(ReferralRole.SENT).where(Referral.status.not_in(TERMINAL_STATUSES))
    return Attention(
        incoming=_referral_listing(session, incoming, limit),
        outgoing=_referral_listing(session, outgoing, limit),
        failed=_failed_deliveries(session, limit),
        peers=_peer_problems(node, session, now),
    )


def _open_referrals(role: str) -> Select[Referral, str]:
    return (
        select(Referral, Peer.organization_name)
        .join(Peer, Peer.id == Referral.peer_id)
        .where(Referral.role == role, Referral.withdrawn_at.is_(None))
        .where(Referral.purged_at.is_(None))
    )


def _referral_listing(
    session: Session, query: Select[Referral, str], limit: int
) -> Listing[ReferralLine]:
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(
        query.order_by(Referral.updated_at.desc(), Referral.id.desc()).limit(limit)
    )
    lines = tuple(
        ReferralLine(
            referral_id=referral.referral_id,
            service_name=referral.service_name,
            peer_organization=organization,
            status=referral.status,
            updated_at=referral.updated_at,
        )
        for referral, organization in rows
    )
    return Listing(int(total), lines)


def _failed_deliveries(session: Session, limit: int) -> Listing[FailedDelivery]:
    failed = OutboxMessage.state == OutboxState.FAILED
    total = session.scalar(select(func.count()).select_from(OutboxMessage).where(failed)) or 0
    rows = session.execute(
        select(OutboxMessage, Peer.organization_name, Referral.referral_id)
        .join(Peer, Peer.id == OutboxMessage.peer_id)
        .outerjoin(Referral, Referral.id == OutboxMessage.referral_pk)
        .where(failed)
        .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
        .limit(limit)
    )
    lines = tuple(
        FailedDelivery(
            referral_id=referral_id,
            message_type=message.message_type,
            peer_organization=organization,
            error_code=message.last_error_code,
            attempts=message.attempts,
            created_at=message.created_at,
        )
        for message, organization, referral_id in rows
    )
    return Listing(int(total), lines)


def _peer_problems(node: Node, session: Session, now: int) -> tuple[PeerProblem, ...]:
    rows = session.execute(
        select(Peer, PeerDirectory)
        .outerjoin(PeerDirectory, PeerDirectory.peer_id == Peer.id)
        .where(Peer.status == PeerStatus.TRUSTED)
        .order_by(Peer.organization_name, Peer.id)
    )
    found = []
    for peer, directory in rows:
        problems = _problems_of(node, peer, directory, now)
        if problems:
            found.append(
                PeerProblem(
                    entity_id=peer.entity_id,
                    organization_name=peer.organization_name,
                    problems=problems,
                    delivery_failures=peer.delivery_failures,
                    delivery_retry_at=peer.delivery_retry_at,
                    synced_at=None if directory is None else directory.synced_at,
                    refreshed_at=peer.refreshed_at,
                    last_error_code=None if directory is None else directory.last_error_code,
                )
            )
    return tuple(found)


def _problems_of(
    node: Node, peer: Peer, directory: PeerDirectory | None, now: int
) -> tuple[str, ...]:
    """The codes of :data:`PEER_PROBLEMS` that hold for this peer now."""
    settings = node.settings
    capacity_due = now - MISSED_PERIODS * settings.capacity_poll_seconds
    refresh_due = now - MISSED_PERIODS * settings.peer_refresh_seconds
    expires_at = None if directory is None else directory.expires_at
    synced_at = None if directory is None else directory.synced_at
    checks = {
        "delivery_failing": peer.delivery_failures > 0,
        "capacity_missing": expires_at is None,
        "capacity_stale": expires_at is not None and expires_at <= now,
        "capacity_failing": directory is not None and directory.failures > 0,
        "capacity_old": expires_at is not None and _older(synced_at, capacity_due),
        "configuration_expired": peer.configuration_expires_at <= now,
        "configuration_failing": peer.refresh_failures > 0,
        "configuration_old": _older(peer.refreshed_at or peer.created_at, refresh_due),
    }
    return tuple(code for code in PEER_PROBLEMS if checks[code])


def _older(time: int | None, due: int) -> bool:
    return time is None or time < due
