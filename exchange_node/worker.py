"""The background worker: the outbox, and periodic upkeep that no request waits for.

Two loops. Delivery (:func:`run_deliveries`) sends the outbox
(:mod:`exchange_node.services.delivery`) whenever a message is queued in this
process (``Node.outbox_signal``) and at least every ``delivery_poll_seconds``.
Each upkeep round (:func:`run_round`) refreshes the peers that are due (which is
how key rotations are followed), with backoff for failing ones, polls the
capacity documents of the trusted peers that are due
(:mod:`exchange_node.services.directory_sync`), forgets expired nonces and
purges personal data past retention (:mod:`exchange_node.services.retention`).
Both run in the ``serve`` process by default, or alone as ``exchange-node
worker``; several workers may share one PostgreSQL database.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import or_, select

from exchange_node.db.models import Peer, PeerStatus
from exchange_node.errors import ExchangeError
from exchange_node.node import Node
from exchange_node.protocol.errors import ProtocolError
from exchange_node.services import delivery, directory_sync, peers, retention
from exchange_node.services.federation_auth import forget_expired_nonces

log = logging.getLogger("exchange_node.worker")

ACTOR = "worker"


@dataclass(frozen=True)
class RoundReport:
    refreshed: int
    failed: int
    nonces_forgotten: int
    #: Capacity polls: a new version stored / nothing new (304 or a re-signature) / failed.
    synced: int = 0
    unchanged: int = 0
    sync_failed: int = 0
    #: Referrals whose personal data was purged, past retention.
    purged: int = 0


def run_round(node: Node) -> RoundReport:
    """One round of upkeep; a failing peer is recorded on the peer, not raised."""
    now = node.now()
    with node.database.session() as session:
        due = session.scalars(
            select(Peer.entity_id).where(
                Peer.status.in_([PeerStatus.TRUSTED, PeerStatus.SUSPENDED]),
                or_(Peer.next_refresh_at.is_(None), Peer.next_refresh_at <= now),
            )
        ).all()
        forgotten = forget_expired_nonces(session, now)
    refreshed = failed = 0
    for entity_id in due:
        with node.database.session() as session:
            peer = peers.get_peer(session, entity_id)
            try:
                peers.refresh_peer(node, session, peer, actor=ACTOR)
                refreshed += 1
            except (ExchangeError, ProtocolError) as e:
                failed += 1
                log.warning("refreshing %s failed: %s", entity_id, e.code)
    outcomes = Counter(result.outcome for result in directory_sync.sync_round(node))
    return RoundReport(
        refreshed,
        failed,
        forgotten,
        synced=outcomes[directory_sync.UPDATED],
        unchanged=outcomes[directory_sync.UNCHANGED],
        sync_failed=outcomes[directory_sync.FAILED],
        purged=retention.purge_expired(node, now=now, actor=ACTOR),
    )


def run_forever(node: Node, stop: threading.Event) -> None:
    """Run rounds every ``worker_interval_seconds`` until ``stop`` is set."""
    while not stop.is_set():
        try:
            report = run_round(node)
            if report.refreshed or report.failed:
                log.info("worker round: %s refreshed, %s failed", report.refreshed, report.failed)
            if report.synced or report.sync_failed:
                log.info(
                    "worker round: %s capacity documents updated, %s unchanged, %s failed",
                    report.synced,
                    report.unchanged,
                    report.sync_failed,
                )
        except ExchangeError as e:
            log.error("worker round failed: %s", e.code)
        stop.wait(node.settings.worker_interval_seconds)


def run_deliveries(node: Node, stop: threading.Event) -> None:
    """Deliver what is due until ``stop`` is set: at once when a message is queued here,
    and every ``delivery_poll_seconds`` (for messages queued by other processes, retries).

    Set ``node.outbox_signal`` after ``stop`` to end the wait at once.
    """
    signal = node.outbox_signal
    while not stop.is_set():
        signal.clear()  # a message queued from here on wakes the next wait
        try:
            report = delivery.deliver_until_idle(node)
            if report.claimed:
                log.info(
                    "outbox: %s delivered, %s to retry, %s failed, %s re-sealed",
                    report.delivered,
                    report.retried,
                    report.failed,
                    report.resealed,
                )
        except ExchangeError as e:
            log.error("outbox delivery failed: %s", e.code)
        signal.wait(node.settings.delivery_poll_seconds)


@dataclass
class BackgroundWorker:
    """The worker's two loops running in threads of this process."""

    threads: tuple[threading.Thread, ...]
    stop_event: threading.Event
    node: Node

    def stop(self, timeout: float | None = None) -> None:
        """Ask both loops to end (after the attempt in progress) and wait up to ``timeout``."""
        self.stop_event.set()
        self.node.outbox_signal.set()
        for thread in self.threads:
            thread.join(timeout)


def start_in_background(node: Node, *, upkeep: bool = True) -> BackgroundWorker:
    """Start the delivery loop, and unless ``upkeep`` is False the upkeep rounds, as daemons."""
    stop = threading.Event()
    loops = [("exchange-delivery", run_deliveries)]
    if upkeep:
        loops.append(("exchange-worker", run_forever))
    threads = tuple(
        threading.Thread(target=target, args=(node, stop), name=name, daemon=True)
        for name, target in loops
    )
    for thread in threads:
        thread.start()
    return BackgroundWorker(threads, stop, node)
