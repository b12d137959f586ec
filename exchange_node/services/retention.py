"""The retention purge (SPEC 14.6): personal data past the node's retention period is purged.

A referral's personal data is kept ``retention_days`` after the referral closed (reached a
terminal status) or after its consent expired, whichever comes first; then
:func:`purge_expired` clears it through :func:`referral_store.purge`, leaving the tombstone
of SPEC 5.9, and records one ``data.purged`` audit entry per referral. It works through the
backlog in batches, each in a transaction of its own, so a node that was off for months
does not build one huge transaction. Both roles are purged alike; nothing is sent to the
peer, which runs its own retention. This module decides what is due, not how a purge is
done (:mod:`exchange_node.services.referral_store`), nor when it runs (the worker and
``exchange-node purge``).
"""

from __future__ import annotations

import logging

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session, selectinload

from exchange_node.db.models import Referral
from exchange_node.node import Node
from exchange_node.services import audit, referral_store

__all__ = ["BATCH_SIZE", "count_expired", "purge_batch", "purge_expired", "retention_cutoff"]

log = logging.getLogger("exchange_node.retention")

#: Referrals purged per transaction.
BATCH_SIZE = 500
DAY_SECONDS = 86_400


def retention_cutoff(node: Node, now: int) -> int:
    """A referral closed, or whose consent expired, at or before this time is due."""
    return now - node.settings.retention_days * DAY_SECONDS


def count_expired(node: Node, session: Session, *, now: int) -> int:
    """How many referrals :func:`purge_expired` would purge at ``now`` (for a dry run)."""
    query = select(func.count()).select_from(Referral).where(_due(retention_cutoff(node, now)))
    return int(session.scalar(query) or 0)


def purge_expired(node: Node, *, now: int, actor: str, batch_size: int = BATCH_SIZE) -> int:
    """Purge every referral past retention, a batch per transaction; how many were purged.

    A batch that fails rolls back alone: the batches before it stay purged.

    Raises:
        StorageError: the database failed.
    """
    purged, after = 0, 0
    while True:
        with node.database.session() as session:
            count, last = purge_batch(
                node, session, now=now, actor=actor, after=after, limit=batch_size
            )
        purged += count
        if last is None:
            break
        after = last
    if purged:
        log.info("retention purge: %d referrals past %d days", purged, node.settings.retention_days)
    return purged


def purge_batch(
    node: Node, session: Session, *, now: int, actor: str, after: int = 0, limit: int = BATCH_SIZE
) -> tuple[int, int | None]:
    """Purge up to ``limit`` due referrals whose row id is above ``after``, in ``session``.

    Returns how many were purged, and the last row id looked at (``None`` when this
    was the last batch), from which the next batch goes on. On PostgreSQL the rows are
    locked and rows another transaction holds are skipped, so two purges at once never
    purge (and log) a referral twice.
    """
    query = (
        select(Referral)
        .where(_due(retention_cutoff(node, now)), Referral.id > after)
        .order_by(Referral.id)
        .limit(limit)
        .options(selectinload(Referral.events))
        .with_for_update(skip_locked=True, of=Referral)
    )
    referrals = list(session.scalars(query))
    purged = 0
    for referral in referrals:
        if referral_store.purge(session, referral, now=now, reason=referral_store.RETENTION):
            audit.record(
                session,
                actor=actor,
                action="data.purged",
                subject=referral.referral_id,
                details={"reason": referral_store.RETENTION, "role": referral.role},
                now=now,
            )
            purged += 1
    last = referrals[-1].id if len(referrals) == limit else None
    return purged, last


def _due(cutoff: int) -> ColumnElement[bool]:
    return Referral.purged_at.is_(None) & or_(
        Referral.closed_at <= cutoff, Referral.consent_expires_at <= cutoff
    )
