"""The background worker: periodic upkeep that no request waits for.

Each round refreshes the peers that are due (which is how key rotations are
followed), with backoff for failing ones, polls the capacity documents of the
trusted peers that are due (:mod:`exchange_node.services.directory_sync`), and
forgets expired nonces. It runs in the ``serve`` process by default, or alone as
``exchange-node worker``.
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
from exchange_node.services import directory_sync, peers
from exchange_node.services.federation_auth import forget_expired_nonces

log = logging.getLogger("exchange_node.worker")


@dataclass(frozen=True)
class RoundReport:
    refreshed: int
    failed: int
    nonces_forgotten: int
    #: Capacity polls: a new version stored / nothing new (304 or a re-signature) / failed.
    synced: int = 0
    unchanged: int = 0
    sync_failed: int = 0


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
                peers.refresh_peer(node, session, peer, actor="worker")
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


def start_in_background(node: Node) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(
        target=run_forever, args=(node, stop), name="exchange-worker", daemon=True
    )
    thread.start()
    return thread, stop
