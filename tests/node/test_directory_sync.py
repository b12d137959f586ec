"""Syncing peers' capacity documents: stored when verified and newer, kept otherwise (SPEC 4)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import func, select, text, update

from exchange_node.db.models import (
    CapacityPublication,
    DirectoryService,
    DirectoryTag,
    PeerDirectory,
    PeerStatus,
    Service,
)
from exchange_node.errors import ConflictError
from exchange_node.protocol import _jose
from exchange_node.protocol.capacity import (
    CAPACITY_MEDIA_TYPE,
    build_capacity_claims,
    sign_capacity_document,
)
from exchange_node.protocol.keys import generate_key
from exchange_node.services import directory_sync, peers
from exchange_node.services.directory_sync import HeldDirectory, SyncResult
from exchange_node.services.publication import current_document
from tests.node.conftest import Federation, hsds_service

if TYPE_CHECKING:  # imported by name, pytest would try to collect the Test* classes
    from tests.node.conftest import TestClock, TestNode

POLL = 300  # the default capacity_poll_seconds
LIFETIME = 86_400  # the default capacity document lifetime
WsgiApp = Callable[..., Iterable[bytes]]


class Recorder:
    """A peer's app, wrapped to record the status of every answer and the headers asked with."""

    def __init__(self, app: WsgiApp) -> None:
        self.app = app
        self.statuses: list[int] = []
        self.if_none_match: list[str | None] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        self.if_none_match.append(environ.get("HTTP_IF_NONE_MATCH"))

        def record(status: str, headers: Any, *args: Any) -> Any:
            self.statuses.append(int(status.split()[0]))
            return start_response(status, headers, *args)

        return self.app(environ, record)


def serving(token: str, etag: str = '"served"') -> WsgiApp:
    """A peer that answers every request with ``token`` (signed or not, old or forged)."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("Content-Type", CAPACITY_MEDIA_TYPE), ("ETag", etag)])
        return [token.encode("ascii")]

    return app


def sync(holder: TestNode) -> SyncResult:
    """Force a round on a node with one peer; that peer's result."""
    (result,) = directory_sync.sync_round(holder.node, force=True)
    return result


def held(holder: TestNode, peer: TestNode) -> HeldDirectory:
    with holder.node.database.session() as session:
        found = directory_sync.held_directories(holder.node, session)
    return next(entry for entry in found if entry.entity_id == peer.url)


def directory_rows(holder: TestNode) -> list[DirectoryService]:
    with holder.node.database.session() as session:
        return list(session.scalars(select(DirectoryService).order_by(DirectoryService.name)))


def held_token(holder: TestNode) -> str:
    with holder.node.database.session() as session:
        token = session.scalar(select(PeerDirectory.token))
    assert token is not None
    return token


def change_capacity(publisher: TestNode, status: str, *, raise_version: bool = True) -> None:
    """Change every service's capacity status, as the catalog would (or breaking its duty)."""
    now = publisher.node.now()
    with publisher.node.database.session() as session:
        session.execute(update(Service).values(capacity_status=status, capacity_updated_at=now))
        if raise_version:
            session.execute(
                update(CapacityPublication).values(version=CapacityPublication.version + 1)
            )


def language(code: str, name: str) -> dict[str, str]:
    return {"id": str(uuid.uuid4()), "name": name, "code": code}


def test_first_sync_stores_the_peers_services_with_their_capacity(
    community: TestNode, clinic: TestNode, clock: TestClock
) -> None:
    service_id = clinic.publish(
        hsds_service("Youth drop-in", languages=[language("ar", "Arabic")]),
        status="waitlist",
        accepting=False,
        wait_days=5,
        notes="Call first",
        verified_at=clock() - 600,
        intake_fields=("preferred_name", "phone"),
    )
    result = sync(community)
    assert (result.outcome, result.held.version, result.held.services) == ("updated", 2, 1)
    assert (result.held.synced_at, result.held.expires_at, result.held.stale) == (
        clock(),
        clock() + LIFETIME,
        False,
    )
    (row,) = directory_rows(community)
    assert (row.service_id, row.name, row.organization_name) == (
        service_id,
        "Youth drop-in",
        "Clinic",
    )
    assert (row.capacity_status, row.accepting_referrals, row.wait_days, row.notes) == (
        "waitlist",
        False,
        5,
        "Call first",
    )
    assert (row.intake_fields, row.verified_at) == (["preferred_name", "phone"], clock() - 600)
    with community.node.database.session() as session:
        tags = session.execute(select(DirectoryTag.kind, DirectoryTag.value)).all()
    assert sorted(map(tuple, tags)) == [("language", "ar"), ("language", "arabic")]


def test_a_capacity_change_shows_after_the_next_sync(
    community: TestNode, clinic: TestNode, clock: TestClock
) -> None:
    clinic.publish(status="capacity")
    sync(community)
    clock.advance(POLL)
    change_capacity(clinic, "no-capacity")
    result = sync(community)
    assert (result.outcome, result.held.version) == ("updated", 3)
    assert [row.capacity_status for row in directory_rows(community)] == ["no-capacity"]


def test_an_unchanged_document_is_answered_304_and_nothing_is_rewritten(
    federation: Federation, community: TestNode, clinic: TestNode, clock: TestClock
) -> None:
    recorder = Recorder(clinic.app)
    federation.transport.apps[clinic.url] = recorder
    clinic.publish()
    sync(community)
    before = [row.id for row in directory_rows(community)]
    clock.advance(POLL)
    result = sync(community)
    assert recorder.statuses == [200, 304]
    assert recorder.if_none_match[0] is None
    assert recorder.if_none_match[1] is not None
    assert (result.outcome, result.held.synced_at, result.held.version) == ("unchanged", clock(), 2)
    assert [row.id for row in directory_rows(community)] == before


def test_a_re_signed_document_of_the_same_version_extends_what_is_held(
    community: TestNode, clinic: TestNode, clock: TestClock
) -> None:
    clinic.publish()
    sync(community)
    before = [row.id for row in directory_rows(community)]
    clock.advance(LIFETIME // 2)  # the publisher signs again, same version
    result = sync(community)
    assert (result.outcome, result.held.version) == ("unchanged", 2)
    assert result.held.expires_at == clock() + LIFETIME
    assert [row.id for row in directory_rows(community)] == before


def test_the_same_version_with_other_services_is_refused(
    community: TestNode, clinic: TestNode, clock: TestClock
) -> None:
    """SPEC 4.5: the publisher broke its duty; keep what is held."""
    clinic.publish(status="capacity")
    sync(community)
    change_capacity(clinic, "no-capacity", raise_version=False)
    clock.advance(LIFETIME // 2)
    result = sync(community)
    assert (result.outcome, result.held.last_error_code) == ("failed", "version_reused")
    assert [row.capacity_status for row in directory_rows(community)] == ["capacity"]
    assert result.held.expires_at == clock() + LIFETIME // 2  # the held document's


def test_a_rolled_back_document_is_refused_and_what_is_held_kept(
    federation: Federation, community: TestNode, clinic: TestNode, clock: TestClock
) -> None:
    clinic.publish(hsds_service("First"))
    sync(community)
    old_token = held_token(community)
    clinic.publish(hsds_service("Second"))
    clock.advance(POLL)
    assert sync(community).held.version == 3
    federation.transport.apps[clinic.url] = serving(old_token)
    clock.advance(POLL)
    result = sync(community)
    assert (result.outcome, result.held.last_error_code) == ("failed", "rollback")
    assert (result.held.version, result.held.services, result.held.failures) == (3, 2, 1)
    assert [row.name for row in directory_rows(community)] == ["First", "Second"]


def forged_by_another_key(publisher: TestNode, now: int) -> str:
    claims = build_capacity_claims(issuer=publisher.url, version=99, services=[], now=now)
    return sign_capacity_document(claims, generate_key("sig"))


def forged_payload(publisher: TestNode, now: int) -> str:
    """The publisher's genuine header and signature, over claims it never signed."""
    with publisher.node.database.session() as session:
        token = current_document(publisher.node, session).token
    claims = build_capacity_claims(issuer=publisher.url, version=99, services=[], now=now)
    header, _payload, signature = token.split(".")
    return f"{header}.{_jose.b64url_encode(json.dumps(claims).encode())}.{signature}"


@pytest.mark.parametrize(
    ("forge", "code"),
    [(forged_by_another_key, "untrusted_key"), (forged_payload, "bad_signature")],
)
def test_a_forged_document_is_refused_and_what_is_held_kept(
    federation: Federation,
    community: TestNode,
    clinic: TestNode,
    clock: TestClock,
    forge: Callable[[TestNode, int], str],
    code: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    clinic.publish(hsds_service("Genuine"))
    sync(community)
    federation.transport.apps[clinic.url] = serving(forge(clinic, clock()))
    clock.advance(POLL)
    result = sync(community)
    assert (result.outcome, result.held.last_error_code) == ("failed", code)
    assert (result.held.version, result.held.services) == (2, 1)
    assert [row.name for row in directory_rows(community)] == ["Genuine"]
    (alert,) = [record for record in caplog.records if record.levelname == "ERROR"]
    assert alert.getMessage() == f"capacity sync of {clinic.url} failed: {code}"


def test_an_expired_document_keeps_the_services_held_and_shows_them_stale(
    federation: Federation, community: TestNode, clinic: TestNode, clock: TestClock
) -> None:
    clinic.publish()
    sync(community)
    old_token = held_token(community)
    clinic_app = federation.transport.apps.pop(clinic.url)
    clock.advance(LIFETIME)
    result = sync(community)
    assert (result.outcome, result.held.last_error_code) == ("failed", "peer_unreachable")
    assert (result.held.services, result.held.stale) == (1, True)

    federation.transport.apps[clinic.url] = serving(old_token)  # authentic, but expired
    clock.advance(POLL)
    result = sync(community)
    assert (result.outcome, result.held.last_error_code) == ("failed", "expired")
    assert (result.held.services, result.held.stale, len(directory_rows(community))) == (1, True, 1)

    federation.transport.apps[clinic.url] = clinic_app  # back, and signing afresh
    result = sync(community)
    assert (result.outcome, result.held.stale, result.held.failures) == ("unchanged", False, 0)


def test_a_peer_that_refuses_is_recorded_with_its_code(
    community: TestNode, clinic: TestNode
) -> None:
    with clinic.node.database.session() as session:
        peers.change_status(clinic.node, session, community.url, PeerStatus.SUSPENDED)
    result = sync(community)
    assert (result.outcome, result.held.last_error_code) == ("failed", "peer_refused")
    assert result.held.last_error is not None
    assert "peer_not_trusted" in result.held.last_error


def test_a_failing_peer_backs_off_and_recovers(
    federation: Federation, community: TestNode, clinic: TestNode, clock: TestClock
) -> None:
    clinic_app = federation.transport.apps.pop(clinic.url)
    for failures in (1, 2, 3, 4):
        (result,) = directory_sync.sync_round(community.node)
        assert (result.outcome, result.held.failures) == ("failed", failures)
        assert result.held.next_sync_at is not None
        delay = result.held.next_sync_at - clock()
        expected = POLL * 2 ** (failures - 1)
        assert expected * 0.9 <= delay <= expected * 1.1
        clock.advance(delay - 1)
        assert directory_sync.sync_round(community.node) == []  # not due yet
        clock.advance(1)
    federation.transport.apps[clinic.url] = clinic_app
    (result,) = directory_sync.sync_round(community.node)
    assert (result.outcome, result.held.failures, result.held.last_error_code) == (
        "updated",
        0,
        None,
    )
    assert result.held.next_sync_at is not None
    assert POLL * 0.9 <= result.held.next_sync_at - clock() <= POLL * 1.1


def test_a_peer_is_not_polled_again_before_it_is_due_unless_forced(
    community: TestNode, clinic: TestNode, clock: TestClock
) -> None:
    assert directory_sync.sync_round(community.node)[0].outcome == "updated"
    assert directory_sync.sync_round(community.node) == []
    assert directory_sync.sync_peer(community.node, clinic.url).outcome == "not_due"
    assert directory_sync.sync_peer(community.node, clinic.url, force=True).outcome == "unchanged"
    clock.advance(int(POLL * 1.1))
    assert [r.outcome for r in directory_sync.sync_round(community.node)] == ["unchanged"]


def test_next_sync_is_jittered_capped_and_never_within_a_minute() -> None:
    now = 1_000_000
    delays = {directory_sync.next_sync_at(POLL, now) - now for _ in range(200)}
    assert min(delays) >= POLL * 0.9
    assert max(delays) <= POLL * 1.1
    assert len(delays) > 10  # spread, not one fixed delay
    for failures in (10, 40):
        delay = directory_sync.next_sync_at(POLL, now, failures=failures) - now
        assert delay <= directory_sync.MAX_BACKOFF_SECONDS * 1.1
    assert directory_sync.next_sync_at(60, now) - now >= 60


def test_a_document_near_its_expiry_is_polled_sooner() -> None:
    """SPEC 4.1: poll when the held document is within 10 % of its lifetime of ``exp``."""
    now = 1_000_000
    due = directory_sync.next_sync_at(3_600, now, issued_at=now - 500, expires_at=now + 1_500)
    assert due == now + 1_300
    due = directory_sync.next_sync_at(3_600, now, issued_at=now - 1_950, expires_at=now + 50)
    assert due == now + 60  # already in the last tenth: no sooner than a minute
    due = directory_sync.next_sync_at(3_600, now, issued_at=now - 9_500, expires_at=now + 500)
    assert due == now + 250  # in the last tenth: half the time left


def test_a_suspended_peer_is_not_polled_and_its_services_are_kept(
    community: TestNode, clinic: TestNode
) -> None:
    clinic.publish()
    sync(community)
    with community.node.database.session() as session:
        peers.change_status(community.node, session, clinic.url, PeerStatus.SUSPENDED)
    assert directory_sync.sync_round(community.node, force=True) == []
    with pytest.raises(ConflictError, match="suspended"):
        directory_sync.sync_peer(community.node, clinic.url, force=True)
    assert len(directory_rows(community)) == 1  # hidden by search, back when resumed
    assert held(community, clinic).services == 1


def test_removing_a_peer_forgets_its_services_and_document(
    community: TestNode, clinic: TestNode
) -> None:
    clinic.publish()
    clinic.publish()
    sync(community)
    with community.node.database.session() as session:
        peers.change_status(community.node, session, clinic.url, PeerStatus.REMOVED)
    assert directory_rows(community) == []
    with community.node.database.session() as session:
        assert session.scalar(select(func.count()).select_from(PeerDirectory)) == 0
        assert session.scalar(text("SELECT count(*) FROM directory_fts")) == 0
        assert directory_sync.held_directories(community.node, session) == []


def test_a_round_polls_every_due_trusted_peer(
    federation: Federation, community: TestNode, clinic: TestNode
) -> None:
    school = federation.add("school", "school")
    federation.peer(community, school)
    pending = federation.add("legal", "legal-aid")
    with pending.node.database.session() as session:  # pending at the community: not polled
        peers.add_peer(pending.node, session, community.url, community.thumbprint)
    clinic.publish(hsds_service("Clinic service"))
    school.publish(hsds_service("School service"))
    seen: list[str] = []
    results = directory_sync.sync_round(
        community.node, progress=lambda result: seen.append(result.held.entity_id)
    )
    assert [(r.held.entity_id, r.outcome) for r in results] == [
        (clinic.url, "updated"),
        (school.url, "updated"),
    ]
    assert sorted(seen) == [clinic.url, school.url]
    assert [row.name for row in directory_rows(community)] == ["Clinic service", "School service"]


def test_an_etag_that_is_not_an_entity_tag_is_not_sent_back(
    federation: Federation, community: TestNode, clinic: TestNode, clock: TestClock
) -> None:
    clinic.publish()
    sync(community)
    recorder = Recorder(serving(held_token(community), etag="not-quoted"))
    federation.transport.apps[clinic.url] = recorder
    assert sync(community).outcome == "unchanged"
    sync(community)
    assert recorder.if_none_match[0] is not None  # the genuine ETag, held from the first sync
    assert recorder.if_none_match[1] is None
