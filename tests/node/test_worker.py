"""The worker: its round (refresh due peers, back off failing ones, sync capacity documents,
forget expired nonces, purge past retention) and its delivery loop."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import func, select

from exchange_node import worker
from exchange_node.db import Database
from exchange_node.db.models import (
    DirectoryService,
    OutboxState,
    OwnKey,
    Peer,
    PeerStatus,
    Referral,
    SeenNonce,
)
from exchange_node.protocol.httpsig import sign_request
from exchange_node.protocol.keys import dump_private_keys
from exchange_node.services import peers
from tests.node.conftest import Federation
from tests.node.test_delivery import ScriptedInbox, make_referral, queue, row_of
from tests.node.test_delivery import inbox as inbox  # the fixture

if TYPE_CHECKING:  # imported by name, pytest would try to collect the Test* classes
    from tests.node.conftest import TestClock, TestNode

REFRESH = 3_600  # the default peer_refresh_seconds
POLL = 300  # the default capacity_poll_seconds
PEER_STATUS = "/federation/v1/peer-status"


def peer_of(holder: TestNode, other: TestNode) -> Peer:
    with holder.node.database.session() as session:
        peer = peers.get_peer(session, other.url)
        session.refresh(peer, ["keys"])  # loaded now, read after the session ends
        return peer


def count_nonces(test_node: TestNode) -> int:
    with test_node.node.database.session() as session:
        return len(session.query(SeenNonce).all())


def ask_peer_status(sender: TestNode, receiver: TestNode) -> None:
    node = sender.node
    with node.database.session() as session:
        key = node.ring(session).signing_key
    node.client.signed_request("GET", receiver.url + PEER_STATUS, key=key, now=node.now())


def refresh_counts(report: worker.RoundReport) -> tuple[int, int, int]:
    return report.refreshed, report.failed, report.nonces_forgotten


def sync_counts(report: worker.RoundReport) -> tuple[int, int, int]:
    return report.synced, report.unchanged, report.sync_failed


def test_round_refreshes_only_peers_that_are_due(
    community: TestNode, clinic: TestNode, clock: TestClock
) -> None:
    assert worker.run_round(community.node).refreshed == 0
    clock.advance(REFRESH)
    assert refresh_counts(worker.run_round(community.node)) == (1, 0, 0)
    peer = peer_of(community, clinic)
    assert (peer.refreshed_at, peer.next_refresh_at) == (clock(), clock() + REFRESH)


def test_round_leaves_pending_and_removed_peers_alone(
    federation: Federation, community: TestNode, clinic: TestNode, clock: TestClock
) -> None:
    school = federation.add("school", "school")
    with school.node.database.session() as session:
        peers.add_peer(school.node, session, community.url, community.thumbprint)
    with community.node.database.session() as session:  # school pending, clinic removed
        peers.change_status(community.node, session, clinic.url, PeerStatus.REMOVED)
    clock.advance(REFRESH)
    assert worker.run_round(community.node).refreshed == 0


def test_failing_peer_backs_off_and_recovers(
    federation: Federation, community: TestNode, clinic: TestNode, clock: TestClock
) -> None:
    clinic_app = federation.transport.apps.pop(clinic.url)
    clock.advance(REFRESH)
    delays = []
    for failures in (1, 2, 3):
        assert worker.run_round(community.node).failed == 1
        peer = peer_of(community, clinic)
        assert peer.refresh_failures == failures
        assert peer.last_error is not None
        assert peer.last_error.startswith("peer_unreachable:")
        assert peer.next_refresh_at is not None
        delays.append(peer.next_refresh_at - clock())
        assert worker.run_round(community.node).failed == 0  # not due again yet
        clock.advance(delays[-1])
    assert delays == sorted(set(delays))  # each wait longer than the one before
    assert 96 <= delays[0] <= 144  # two minutes, jittered by 20 %

    federation.transport.apps[clinic.url] = clinic_app
    assert worker.run_round(community.node).refreshed == 1
    peer = peer_of(community, clinic)
    assert (peer.refresh_failures, peer.last_error) == (0, None)


def test_backoff_never_exceeds_the_refresh_interval_plus_jitter(
    federation: Federation, community: TestNode, clinic: TestNode, clock: TestClock
) -> None:
    del federation.transport.apps[clinic.url]
    clock.advance(REFRESH)
    for _ in range(8):
        worker.run_round(community.node)
        next_refresh_at = peer_of(community, clinic).next_refresh_at
        assert next_refresh_at is not None
        assert next_refresh_at - clock() <= REFRESH * 1.2
        clock.advance(next_refresh_at - clock())


def test_peer_listing_another_peers_key_is_refused_and_recorded(
    federation: Federation, community: TestNode, clinic: TestNode, clock: TestClock
) -> None:
    """SPEC 3.6: a document listing a key of another peer is refused, the old one kept."""
    school = federation.add("school", "school")
    federation.peer(community, school)
    school_keys = [key.kid for key in peer_of(community, school).keys]
    node = school.node
    with clinic.node.database.session() as session:
        clinic_key = clinic.node.ring(session).signing_key
    node.keystore.path.write_bytes(
        dump_private_keys([*node.keystore.load().values(), clinic_key], None)
    )
    with node.database.session() as session:  # school pre-publishes the clinic's key
        session.add(
            OwnKey(kid=clinic_key.kid, use="sig", published_at=clock(), active_from=clock() + 10**6)
        )

    clock.advance(REFRESH)
    assert refresh_counts(worker.run_round(community.node)) == (1, 1, 0)
    school_peer = peer_of(community, school)
    assert school_peer.last_error is not None
    assert school_peer.last_error.startswith("conflict:")
    assert (school_peer.refresh_failures, [key.kid for key in school_peer.keys]) == (1, school_keys)
    assert school_peer.next_refresh_at is not None
    assert school_peer.next_refresh_at < clock() + REFRESH  # backed off, retried sooner


def test_round_syncs_the_capacity_documents_that_are_due(
    community: TestNode, clinic: TestNode, clock: TestClock
) -> None:
    clinic.publish()
    assert sync_counts(worker.run_round(community.node)) == (1, 0, 0)
    assert sync_counts(worker.run_round(community.node)) == (0, 0, 0)  # not due yet
    clock.advance(POLL * 11 // 10)
    assert sync_counts(worker.run_round(community.node)) == (0, 1, 0)  # 304
    clinic.publish()
    clock.advance(POLL * 11 // 10)
    assert sync_counts(worker.run_round(community.node)) == (1, 0, 0)
    with community.node.database.session() as session:
        assert session.scalar(select(func.count()).select_from(DirectoryService)) == 2


def test_a_failing_capacity_sync_does_not_stop_the_round(
    federation: Federation, community: TestNode, clinic: TestNode
) -> None:
    school = federation.add("school", "school")
    federation.peer(community, school)
    school.publish()
    del federation.transport.apps[clinic.url]
    report = worker.run_round(community.node)
    assert sync_counts(report) == (1, 0, 1)
    with community.node.database.session() as session:
        assert session.scalar(select(func.count()).select_from(DirectoryService)) == 1


def test_round_forgets_nonces_once_their_signatures_expired(
    community: TestNode, clinic: TestNode, clock: TestClock
) -> None:
    ask_peer_status(clinic, community)
    assert count_nonces(community) == 1
    limits = community.node.settings.limits
    clock.advance(limits.http_signature_window + limits.clock_skew)
    assert worker.run_round(community.node).nonces_forgotten == 0
    clock.advance(1)
    assert worker.run_round(community.node).nonces_forgotten == 1
    assert count_nonces(community) == 0


def test_forgotten_nonce_cannot_be_replayed(
    community: TestNode, clinic: TestNode, clock: TestClock
) -> None:
    """Forgetting is safe: by then the signature itself has expired."""
    with clinic.node.database.session() as session:
        key = clinic.node.ring(session).signing_key
    url = community.url + PEER_STATUS
    headers = sign_request("GET", url, {}, b"", key=key, now=clock())
    assert community.client().get(PEER_STATUS, headers=headers).status_code == 200
    clock.advance(200)
    assert worker.run_round(community.node).nonces_forgotten == 1
    response = community.client().get(PEER_STATUS, headers=headers)
    assert (response.status_code, response.get_json()["code"]) == (401, "signature_expired")


class StopAfterOneRound(threading.Event):
    """Stops ``run_forever`` where it would wait for the next round."""

    def wait(self, timeout: float | None = None) -> bool:
        self.set()
        return True


def test_run_forever_logs_a_failed_round_instead_of_dying(
    community: TestNode, caplog: pytest.LogCaptureFixture
) -> None:
    community.node.database.dispose()
    community.node.database = Database("postgresql://postgres@127.0.0.1:1/gone")
    worker.run_forever(community.node, StopAfterOneRound())
    assert "worker round failed: storage_unavailable" in caplog.text


def test_round_purges_personal_data_past_retention(
    community: TestNode, clinic: TestNode, clock: TestClock
) -> None:
    referral_pk = make_referral(community, clinic)
    with community.node.database.session() as session:
        session.get_one(Referral, referral_pk).closed_at = clock()
    assert worker.run_round(community.node).purged == 0
    clock.advance(90 * 86_400)  # the default retention_days
    assert worker.run_round(community.node).purged == 1
    with community.node.database.session() as session:
        referral = session.get_one(Referral, referral_pk)
        assert (referral.purged_at, referral.purge_reason) == (clock(), "retention")


def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_delivery_loop_sends_a_queued_message_at_once(
    community: TestNode, clinic: TestNode, inbox: ScriptedInbox
) -> None:
    node = community.node
    node.settings = dataclasses.replace(node.settings, delivery_poll_seconds=3_600.0)
    background = worker.start_in_background(node, upkeep=False)
    try:
        row_id = queue(community, clinic)
        node.notify_outbox()  # no poll within the test: only the signal wakes the loop
        assert wait_for(lambda: row_of(community, row_id).state == OutboxState.DELIVERED)
    finally:
        background.stop(timeout=10)
    assert not any(thread.is_alive() for thread in background.threads)
    assert len(inbox.posts) == 1


def test_delivery_loop_logs_a_failed_pass_instead_of_dying(
    community: TestNode, caplog: pytest.LogCaptureFixture
) -> None:
    stop = threading.Event()

    class StopWhenWaiting(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            stop.set()
            return True

    community.node.outbox_signal = StopWhenWaiting()
    community.node.database.dispose()
    community.node.database = Database("postgresql://postgres@127.0.0.1:1/gone")
    worker.run_deliveries(community.node, stop)
    assert "outbox delivery failed: storage_unavailable" in caplog.text
