"""Delivering the outbox (SPEC 7.5): claim due rows, POST each envelope, record the outcome.

:func:`deliver_due` claims the rows that are due in one short transaction (a
lease, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several workers never claim
the same row), then attempts them several at a time with no transaction open
during HTTP. Each attempt POSTs the row's exact envelope with a new HTTP
signature, re-sealing it first when its ``exp`` is near; the answer is read by
:mod:`exchange_node.services.delivery_outcomes` and written back in a short
transaction of its own, only if the row is still pending (a purge may have
cancelled it meanwhile). Messages about one referral go in the order they were
queued; a failing peer is backed off as a whole. This module queues nothing
(:mod:`exchange_node.services.outbox` does) and runs no loop (the worker does).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields

from sqlalchemy import ColumnElement, exists, or_, select, update
from sqlalchemy.orm import Session, aliased

from exchange_node.db.models import OutboxMessage, OutboxState, Peer, PeerStatus, Referral
from exchange_node.errors import ExchangeError, PeerUnreachableError
from exchange_node.node import Node
from exchange_node.protocol.errors import ProtocolError
from exchange_node.protocol.keys import NodeKey, import_jwk
from exchange_node.services import delivery_outcomes as outcomes
from exchange_node.services import outbox, peers
from exchange_node.services.delivery_outcomes import DELIVERED, FAILED, RETRY, Outcome, Sent

log = logging.getLogger("exchange_node.delivery")

ACTOR = outcomes.ACTOR
#: An envelope whose ``exp`` is this close is sealed again before it is sent.
RESEAL_MARGIN_SECONDS = 30
DEADLINE = outcomes.DEADLINE


@dataclass(frozen=True)
class DeliveryReport:
    """What one call delivered, scheduled for a retry, marked failed and re-sealed."""

    delivered: int = 0
    retried: int = 0
    failed: int = 0
    resealed: int = 0
    #: Rows leased for an attempt (some may have been left for later: peer backed off).
    claimed: int = 0

    def __add__(self, other: DeliveryReport) -> DeliveryReport:
        return DeliveryReport(
            *(getattr(self, f.name) + getattr(other, f.name) for f in fields(self))
        )


@dataclass(frozen=True)
class _Attempt:
    row_id: int
    url: str
    sent: Sent
    #: The envelope was sealed again just before this attempt.
    resealed: bool = False


def deliver_due(node: Node, *, now: int | None = None, limit: int = 100) -> DeliveryReport:
    """Attempt up to ``limit`` outbox rows that are due, oldest first, several at a time.

    With ``now`` fixed (tests), every attempt uses it; otherwise each reads the clock.
    A failing attempt is recorded on its row and its peer, never raised.

    Raises:
        StorageError: the database cannot be used (the claimed rows' leases then expire).
    """
    clock = node.now if now is None else _fixed_clock(now)
    with node.database.session() as session:
        key = node.ring(session).signing_key
        claimed = claim_due(node, session, now=clock(), limit=limit)
    if not claimed:
        return DeliveryReport()
    workers = max(1, min(node.settings.delivery_concurrency, len(claimed)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="exchange-delivery") as pool:
        reports = list(pool.map(lambda row_id: _deliver_one(node, row_id, key, clock), claimed))
    return sum(reports, DeliveryReport(claimed=len(claimed)))


def deliver_until_idle(node: Node, *, limit: int = 100) -> DeliveryReport:
    """Call :func:`deliver_due` until nothing more is due (what ``worker --once`` does).

    Another pass follows a full batch (more may be due) or one that delivered or failed
    something (the next message about the same referral may now go).
    """
    total = DeliveryReport()
    while True:
        report = deliver_due(node, limit=limit)
        total += report
        if report.claimed == 0 or (report.claimed < limit and not report.delivered + report.failed):
            return total


def _fixed_clock(now: int) -> Callable[[], int]:
    return lambda: now


def lease_seconds(node: Node) -> int:
    """How long a claimed row stays claimed: two request timeouts and a margin."""
    return math.ceil(2 * node.settings.http_timeout_seconds) + 30


def claim_due(node: Node, session: Session, *, now: int, limit: int) -> list[int]:
    """Lease the rows that are due and return their ids, oldest first (SPEC 7.5).

    Due: pending, not leased (or the lease ran out), and either its peer is trusted and
    not backed off and its time has come, or its deadline has passed (it is then marked
    failed without an attempt). A row waits while an earlier message about the same
    referral is pending. The lease is set conditionally, so a row another process leased
    in the meantime is skipped (the database write lock serializes claims on SQLite).
    """
    earlier = aliased(OutboxMessage)
    waits_for_earlier = exists().where(
        earlier.referral_pk == OutboxMessage.referral_pk,
        earlier.state == OutboxState.PENDING,
        earlier.id < OutboxMessage.id,
    )
    ready = (
        (Peer.status == PeerStatus.TRUSTED)
        & or_(Peer.delivery_retry_at.is_(None), Peer.delivery_retry_at <= now)
        & (OutboxMessage.next_attempt_at <= now)
    )
    query = (
        select(OutboxMessage.id)
        .join(Peer, Peer.id == OutboxMessage.peer_id)
        .where(OutboxMessage.state == OutboxState.PENDING, _lease_free(now))
        .where(or_(ready, OutboxMessage.deadline <= now), ~waits_for_earlier)
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    if not node.database.is_sqlite:
        query = query.with_for_update(skip_locked=True, of=OutboxMessage)
    due = session.scalars(query).all()
    if not due:
        return []
    leased = session.scalars(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(due), OutboxMessage.state == OutboxState.PENDING)
        .where(_lease_free(now))
        .values(lease_until=now + lease_seconds(node))
        .returning(OutboxMessage.id)
        .execution_options(synchronize_session=False)
    ).all()
    return sorted(leased)


def _lease_free(now: int) -> ColumnElement[bool]:
    return or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until < now)


def _deliver_one(node: Node, row_id: int, key: NodeKey, clock: Callable[[], int]) -> DeliveryReport:
    try:
        prepared = _prepare(node, row_id, clock())
        if not isinstance(prepared, _Attempt):
            return prepared
        try:
            response = node.client.post_envelope(
                prepared.url, prepared.sent.envelope, key=key, now=clock()
            )
            outcome = outcomes.read_answer(
                response, prepared.sent, now=clock(), limits=node.settings.limits
            )
        except PeerUnreachableError as e:
            outcome = outcomes.unreachable(e)
        return _finish(node, prepared, outcome, clock())
    except ExchangeError as e:  # the database went away: the lease runs out, it is retried
        log.error("delivering outbox message %s failed: %s", row_id, e.code)
        return DeliveryReport()


def _prepare(node: Node, row_id: int, now: int) -> _Attempt | DeliveryReport:
    """Check the row before its attempt: deadline, peer, envelope lifetime (re-seal)."""
    with node.database.session() as session:
        row = _lock_pending(session, row_id)
        if row is None:
            return DeliveryReport()  # cancelled or delivered meanwhile
        peer = session.get_one(Peer, row.peer_id)
        if now >= row.deadline:
            outcomes.record_deadline(session, row, peer, now)
            return DeliveryReport(failed=1)
        if peer.status != PeerStatus.TRUSTED or (peer.delivery_retry_at or 0) > now:
            # Suspended, or backed off by another attempt of this batch: wait, uncounted.
            row.lease_until = None
            row.next_attempt_at = max(row.next_attempt_at, peer.delivery_retry_at or now)
            return DeliveryReport()
        resealed = row.envelope is None or row.expires_at <= now + RESEAL_MARGIN_SECONDS
        if resealed:
            failure = _reseal(node, session, row, peer, now)
            if failure is not None:
                error = f"could not seal the message again: {failure.detail}"
                outcomes.record_failed(session, row, peer, code=failure.code, error=error, now=now)
                return DeliveryReport(failed=1)
        keys = tuple(import_jwk(k.jwk, "sig") for k in peer.keys if k.use == "sig")
        assert row.envelope is not None  # noqa: S101 - sealed above when it was not
        sent = Sent(node.settings.url, peer.entity_id, keys, row.jti, row.envelope)
        return _Attempt(row_id, peer.inbox_endpoint, sent, resealed)


def _finish(node: Node, attempt: _Attempt, outcome: Outcome, now: int) -> DeliveryReport:
    """Record the outcome, only if the row is still pending; refresh and re-seal if needed."""
    report = DeliveryReport(resealed=int(attempt.resealed))
    with node.database.session() as session:
        row = _lock_pending(session, attempt.row_id)
        if row is None:
            return report  # cancelled (purged) during the attempt: nothing to record
        peer = session.get_one(Peer, row.peer_id)
        backed_off = peer.delivery_failures > 0 or peer.delivery_retry_at is not None
        if outcome.kind == RETRY or (outcome.peer_answered and backed_off):
            peer = _lock_peer(session, row.peer_id)  # counted by one attempt at a time
        if outcome.peer_answered:
            outcomes.reset_backoff(peer)
        if outcome.kind == DELIVERED:
            outcomes.record_delivered(row, outcome, now)
            return report + DeliveryReport(delivered=1)
        if outcome.kind == FAILED:
            code, error = outcome.code or "unknown", outcome.error or ""
            outcomes.record_failed(session, row, peer, code=code, error=error, now=now)
            return report + DeliveryReport(failed=1)
        outcomes.record_retry(row, peer, outcome, now)
        if outcome.reseal and not outcome.refresh_peer:
            # On failure the old envelope stays; the next attempt seals again, or fails.
            resealed = _reseal(node, session, row, peer, now) is None
            report += DeliveryReport(resealed=int(resealed))
    if outcome.refresh_peer:
        resealed = _refresh_and_reseal(node, attempt, now, reseal=outcome.reseal)
        report += DeliveryReport(resealed=int(resealed))
    return report + DeliveryReport(retried=1)


def _refresh_and_reseal(node: Node, attempt: _Attempt, now: int, *, reseal: bool) -> bool:
    """Fetch the peer's entity configuration again, then re-seal to its current key."""
    with node.database.session() as session:
        try:
            peers.refresh_peer(
                node, session, peers.get_peer(session, attempt.sent.peer), actor=ACTOR
            )
        except (ExchangeError, ProtocolError) as e:  # recorded on the peer by refresh_peer
            log.warning("refreshing %s after delivery failed: %s", attempt.sent.peer, e.code)
    if not reseal:
        return False
    with node.database.session() as session:
        row = _lock_pending(session, attempt.row_id)
        if row is None:
            return False
        peer = session.get_one(Peer, row.peer_id)
        return _reseal(node, session, row, peer, now) is None


def _lock_pending(session: Session, row_id: int) -> OutboxMessage | None:
    """The row, locked for this transaction, if it is still pending; else None.

    The no-op update takes the row lock on PostgreSQL and the write lock on SQLite, so
    nothing (a purge, another worker) changes the row until this transaction ends.
    """
    locked = session.scalars(
        update(OutboxMessage)
        .where(OutboxMessage.id == row_id, OutboxMessage.state == OutboxState.PENDING)
        .values(lease_until=OutboxMessage.lease_until)
        .returning(OutboxMessage.id)
        .execution_options(synchronize_session=False)
    ).first()
    if locked is None:
        return None
    return session.get(OutboxMessage, row_id, populate_existing=True)


def _lock_peer(session: Session, peer_id: int) -> Peer:
    peer = session.get(Peer, peer_id, with_for_update=True, populate_existing=True)
    assert peer is not None  # noqa: S101 - an outbox row's peer is never deleted
    return peer


def _reseal(
    node: Node, session: Session, row: OutboxMessage, peer: Peer, now: int
) -> ProtocolError | None:
    """Seal the row's body again with a new ``jti``; the error if it no longer seals."""
    if row.sealed_body is None:
        return ProtocolError("the message's body was purged; it cannot be sealed again")
    old_jti = row.jti
    try:
        outbox.reseal(node, session, row, peer, now)
    except ProtocolError as e:  # e.g. the consent expired since it was queued
        return e
    if row.message_type == "consent-withdrawal" and row.referral_pk is not None:
        # The deletion receipt will name the jti that was delivered (SPEC 5.10).
        session.execute(
            update(Referral)
            .where(Referral.id == row.referral_pk, Referral.withdrawal_jti == old_jti)
            .values(withdrawal_jti=row.jti)
            .execution_options(synchronize_session=False)
        )
    return None
