"""Delivering the outbox (SPEC 7.5): claim due rows, POST each envelope, record the outcome.

:func:`deliver_due` claims the rows that are due and prepares them (the
deadline, the peer, re-sealing an envelope whose ``exp`` is near) in one short
transaction: a lease, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several
workers never claim the same row. Then it POSTs them several at a time, each
with a new HTTP signature over kept-alive connections, with no transaction
open during HTTP. The calling thread alone writes the answers back (read by
:mod:`exchange_node.services.delivery_outcomes`): the attempts that have ended,
a group at a time, in one short transaction per group, each row only if it is
still pending (a purge may have cancelled it meanwhile). Messages about one
referral go in the order they were queued; a failing peer is backed off as a
whole, and the rest of the batch to it waits. This module queues nothing
(:mod:`exchange_node.services.outbox` does) and runs no loop (the worker does).
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, fields

from sqlalchemy import ColumnElement, Connection, exists, or_, select, update
from sqlalchemy.orm import Session, aliased, selectinload

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
#: Once an attempt has ended, how long to wait for others to record them together.
GATHER_SECONDS = 0.01


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
    peer_id: int
    url: str
    sent: Sent
    #: The envelope was sealed again just before this attempt.
    resealed: bool = False


@dataclass(frozen=True)
class _Result:
    attempt: _Attempt
    #: None: not attempted, as its peer stopped answering or its lease was running out.
    outcome: Outcome | None
    #: The order in which the attempts ended: outcomes are recorded in it.
    ended: int


@dataclass
class _Batch:
    """What the attempts of one call share (the pool threads read it, and add to ``silent``)."""

    node: Node
    key: NodeKey
    clock: Callable[[], int]
    #: When the claimed rows' leases end: an attempt that could outlast it is not started.
    lease_until: int
    #: Peers that did not answer during this call: their other messages wait.
    silent: set[int] = field(default_factory=set)
    order: Iterator[int] = field(default_factory=itertools.count)


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
        claimed_at = clock()
        claimed = claim_due(node, session, now=claimed_at, limit=limit)
        attempts, report = _prepare(node, session, claimed, clock())
    report += DeliveryReport(claimed=len(claimed))
    if attempts:
        batch = _Batch(node, key, clock, lease_until=claimed_at + lease_seconds(node))
        report += _attempt_all(batch, attempts)
    return report


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
    """How long a claimed row stays claimed: the setting, and never less than two request
    timeouts and a second (an attempt may refresh the peer before it posts)."""
    settings = node.settings
    return max(settings.delivery_lease_seconds, math.ceil(2 * settings.http_timeout_seconds) + 1)


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


def _prepare(
    node: Node, session: Session, row_ids: Sequence[int], now: int
) -> tuple[list[_Attempt], DeliveryReport]:
    """The claimed rows' attempts, in the claim's transaction; what was settled without one."""
    if not row_ids:
        return [], DeliveryReport()
    rows = session.scalars(
        select(OutboxMessage).where(OutboxMessage.id.in_(row_ids)).order_by(OutboxMessage.id)
    ).all()
    peer_rows = session.scalars(
        select(Peer)
        .where(Peer.id.in_({row.peer_id for row in rows}))
        .options(selectinload(Peer.keys))
    )
    by_id = {peer.id: peer for peer in peer_rows}
    peer_keys: dict[int, tuple[NodeKey, ...]] = {}
    attempts, report = [], DeliveryReport()
    for row in rows:
        prepared = _prepare_row(node, session, row, by_id[row.peer_id], now, peer_keys)
        if isinstance(prepared, _Attempt):
            attempts.append(prepared)
        else:
            report += prepared
    return attempts, report


def _prepare_row(
    node: Node,
    session: Session,
    row: OutboxMessage,
    peer: Peer,
    now: int,
    peer_keys: dict[int, tuple[NodeKey, ...]],
) -> _Attempt | DeliveryReport:
    """Check a row before its attempt: deadline, peer, envelope lifetime (re-seal)."""
    if now >= row.deadline:
        outcomes.record_deadline(session, row, peer, now)
        return DeliveryReport(failed=1)
    if peer.status != PeerStatus.TRUSTED or (peer.delivery_retry_at or 0) > now:
        _wait_for_peer(row, peer, now)  # suspended or backed off since the claim's query
        return DeliveryReport()
    resealed = row.envelope is None or row.expires_at <= now + RESEAL_MARGIN_SECONDS
    if resealed:
        try:
            failure = _reseal(node, session, row, peer, now)
        except ExchangeError as e:  # its body does not open: tried again once the lease ends
            log.error("re-sealing outbox message %s failed: %s", row.id, e.code)
            return DeliveryReport()
        if failure is not None:
            error = f"could not seal the message again: {failure.detail}"
            outcomes.record_failed(session, row, peer, code=failure.code, error=error, now=now)
            return DeliveryReport(failed=1)
    keys = peer_keys.get(peer.id)
    if keys is None:
        keys = peer_keys[peer.id] = tuple(
            import_jwk(k.jwk, "sig") for k in peer.keys if k.use == "sig"
        )
    assert row.envelope is not None  # noqa: S101 - sealed above when it was not
    sent = Sent(node.settings.url, peer.entity_id, keys, row.jti, row.envelope)
    return _Attempt(row.id, peer.id, peer.inbox_endpoint, sent, resealed)


def _wait_for_peer(row: OutboxMessage, peer: Peer, now: int) -> None:
    """Give the row back, not attempted nor counted (its peer may be backed off: it waits)."""
    row.lease_until = None
    row.next_attempt_at = max(row.next_attempt_at, peer.delivery_retry_at or now)


def _attempt_all(batch: _Batch, attempts: Sequence[_Attempt]) -> DeliveryReport:
    """POST the envelopes several at a time; this thread alone records what they came to.

    Each time some attempts have ended (and :data:`GATHER_SECONDS` more), their outcomes
    are written in one transaction while the others go on. Rows whose peer stopped
    answering are given back last.
    """
    report, waiting, errors = DeliveryReport(), list[_Result](), list[BaseException]()
    workers = max(1, min(batch.node.settings.delivery_concurrency, len(attempts)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="exchange-delivery") as pool:
        running = {pool.submit(_attempt, batch, attempt) for attempt in attempts}
        while running:
            done, running = wait(running, return_when=FIRST_COMPLETED)
            if running:  # a little longer, so that each transaction records several
                more, running = wait(running, timeout=GATHER_SECONDS)
                done |= more
            errors += filter(None, (future.exception() for future in done))
            ended = sorted(_results(done), key=lambda result: result.ended)
            waiting += (result for result in ended if result.outcome is None)
            report += _record_safely(batch, [r for r in ended if r.outcome is not None])
    report += _record_safely(batch, waiting)
    if errors:
        raise errors[0]
    return report


def _attempt(batch: _Batch, attempt: _Attempt) -> _Result:
    """POST one envelope and read the answer (in a pool thread: no database here).

    Not attempted when its peer stopped answering, or when the attempt could outlast the
    lease (a slow peer, a long batch): another worker may claim the row by then.
    """
    node = batch.node
    latest_start = batch.lease_until - 2 * node.settings.http_timeout_seconds
    if attempt.peer_id in batch.silent or batch.clock() > latest_start:
        return _Result(attempt, None, next(batch.order))
    try:
        response = node.client.post_envelope(
            attempt.url, attempt.sent.envelope, key=batch.key, now=batch.clock()
        )
        outcome = outcomes.read_answer(
            response, attempt.sent, now=batch.clock(), limits=node.settings.limits
        )
    except PeerUnreachableError as e:
        outcome = outcomes.unreachable(e)
    ended = next(batch.order)  # before ``silent``: a row that waits for it is recorded after
    if outcome.kind == RETRY and not outcome.peer_answered:
        batch.silent.add(attempt.peer_id)
    return _Result(attempt, outcome, ended)


def _results(done: set[Future[_Result]]) -> Iterator[_Result]:
    return (future.result() for future in done if future.exception() is None)


def _record_safely(batch: _Batch, results: Sequence[_Result]) -> DeliveryReport:
    if not results:
        return DeliveryReport()
    try:
        return _record(batch.node, results, batch.clock())
    except ExchangeError as e:  # the database went away: the leases run out, they are retried
        log.error("recording %s delivery attempts failed: %s", len(results), e.code)
        return DeliveryReport()


def _record(node: Node, results: Sequence[_Result], now: int) -> DeliveryReport:
    """Write a group's outcomes in one transaction, in the order the attempts ended.

    Only rows still pending are written (a row cancelled by a purge meanwhile stays so).
    A group that all delivered (the usual case) takes three statements and no ORM.
    """
    report = DeliveryReport(resealed=sum(result.attempt.resealed for result in results))
    if all(_delivered(result.outcome) for result in results):
        with node.database.transaction() as connection:
            live = _live(connection, results)
            outcomes.record_delivered(connection, _receipts(live), now)
            if live:
                outcomes.reset_backoffs(connection, {r.attempt.peer_id for r in live})
        return report + DeliveryReport(delivered=len(live))
    return report + _record_mixed(node, results, now)


def _record_mixed(node: Node, results: Sequence[_Result], now: int) -> DeliveryReport:
    """Record a group with outcomes other than delivered, on the rows and peers, with the ORM.

    A peer is locked when its backoff may change, so that it is counted once at a time.
    """
    report, refreshes = DeliveryReport(), list[tuple[_Attempt, bool]]()
    with node.database.session() as session:
        live = _live(session.connection(), results)
        peers_by_id = _peers_of(session, live)
        rows = _rows(session, [r.attempt.row_id for r in live if not _delivered(r.outcome)])
        for result in live:
            peer, outcome = peers_by_id[result.attempt.peer_id], result.outcome
            if outcome is None:
                _wait_for_peer(rows[result.attempt.row_id], peer, now)
                continue
            if outcome.peer_answered:
                outcomes.reset_backoff(peer)
            if outcome.kind == DELIVERED:
                report += DeliveryReport(delivered=1)
                continue
            report += _record_one(node, session, rows[result.attempt.row_id], peer, outcome, now)
            if outcome.kind == RETRY and outcome.refresh_peer:
                refreshes.append((result.attempt, outcome.reseal))
        session.flush()  # the peers' backoff, before the delivered rows' statement
        outcomes.record_delivered(session.connection(), _receipts(live), now)
    for attempt, reseal in refreshes:
        resealed = _refresh_and_reseal(node, attempt, now, reseal=reseal)
        report += DeliveryReport(resealed=int(resealed))
    return report


def _live(connection: Connection, results: Sequence[_Result]) -> list[_Result]:
    """The results whose rows are still pending, locked for this transaction."""
    pending = outcomes.lock_pending(connection, [result.attempt.row_id for result in results])
    return [result for result in results if result.attempt.row_id in pending]


def _receipts(results: Sequence[_Result]) -> list[tuple[int, str]]:
    return [
        (result.attempt.row_id, result.outcome.receipt or "")
        for result in results
        if result.outcome is not None and result.outcome.kind == DELIVERED
    ]


def _record_one(
    node: Node, session: Session, row: OutboxMessage, peer: Peer, outcome: Outcome, now: int
) -> DeliveryReport:
    """Record an attempt that did not deliver: failed, or to be retried (maybe re-sealed)."""
    if outcome.kind == FAILED:
        code, error = outcome.code or "unknown", outcome.error or ""
        outcomes.record_failed(session, row, peer, code=code, error=error, now=now)
        return DeliveryReport(failed=1)
    settings = node.settings
    outcomes.record_retry(
        row,
        peer,
        outcome,
        now,
        base=settings.delivery_backoff_seconds,
        largest=settings.delivery_max_backoff_seconds,
    )
    resealed = False
    if outcome.reseal and not outcome.refresh_peer:
        # On failure the old envelope stays; the next attempt seals again, or fails.
        resealed = _reseal(node, session, row, peer, now) is None
    return DeliveryReport(retried=1, resealed=int(resealed))


def _delivered(outcome: Outcome | None) -> bool:
    return outcome is not None and outcome.kind == DELIVERED


def _peers_of(session: Session, results: Sequence[_Result]) -> dict[int, Peer]:
    """The results' peers; locked (before any change) where an outcome may change backoff."""
    ids = {result.attempt.peer_id for result in results}
    by_id = {peer.id: peer for peer in session.scalars(select(Peer).where(Peer.id.in_(ids)))}
    to_lock = {
        result.attempt.peer_id
        for result in results
        if result.outcome is not None
        and (
            result.outcome.kind == RETRY
            or (result.outcome.peer_answered and _backed_off(by_id[result.attempt.peer_id]))
        )
    }
    if to_lock:
        locked = session.scalars(
            select(Peer)
            .where(Peer.id.in_(to_lock))
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        by_id |= {peer.id: peer for peer in locked}
    return by_id


def _backed_off(peer: Peer) -> bool:
    return peer.delivery_failures > 0 or peer.delivery_retry_at is not None


def _rows(session: Session, row_ids: Sequence[int]) -> dict[int, OutboxMessage]:
    if not row_ids:
        return {}
    query = select(OutboxMessage).where(OutboxMessage.id.in_(row_ids))
    return {row.id: row for row in session.scalars(query)}


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
        if not outcomes.lock_pending(session.connection(), [attempt.row_id]):
            return False
        row = session.get_one(OutboxMessage, attempt.row_id)
        peer = session.get_one(Peer, row.peer_id)
        return _reseal(node, session, row, peer, now) is None


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
