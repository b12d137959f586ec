"""Syncing trusted peers' capacity documents into the local directory (SPEC 4.1, 4.4, 4.5).

Each trusted peer is polled when due, with a signed conditional ``GET`` of its
capacity endpoint: ``304`` records a success; ``200`` is verified against the
peer's trusted signing keys and the version held, and only a verified document
with a higher version replaces the peer's directory rows. A forged, rolled-back
or expired document is discarded and what is held is kept (an expired one shows
as stale by its ``expires_at``). Every attempt is recorded on the peer's
:class:`PeerDirectory` row, with jittered polling and exponential backoff.

HTTP runs outside database transactions, several peers at a time; each peer's
result is written in a short transaction of its own. This module neither serves
this node's own document nor searches the directory.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from exchange_node.db.models import DirectoryService, Peer, PeerDirectory, PeerStatus
from exchange_node.errors import ConflictError, ExchangeError, NotFoundError
from exchange_node.node import Node
from exchange_node.protocol.capacity import (
    CapacityDocument,
    held_services_claim,
    verify_capacity_document,
)
from exchange_node.protocol.errors import ProtocolError
from exchange_node.protocol.keys import NodeKey, import_jwk
from exchange_node.protocol.limits import Limits
from exchange_node.services import directory_index, peers

log = logging.getLogger("exchange_node.directory")

UPDATED, UNCHANGED, FAILED, NOT_DUE = "updated", "unchanged", "failed", "not_due"
#: SPEC 4.1: a peer is never polled more often than this, unless an administrator forces it.
MIN_POLL_SECONDS = 60
#: The longest a failing peer waits for its next poll.
MAX_BACKOFF_SECONDS = 6 * 3_600
#: Polls are spread by this fraction either way, so peers are not all polled at once.
JITTER = 0.1
#: Codes of a document that did not come from the peer (SPEC 4.5): logged as errors, to alert.
FORGED = frozenset({"untrusted_key", "bad_signature", "wrong_issuer"})


@dataclass(frozen=True)
class HeldDirectory:
    """What this node holds of one peer's capacity document, and how syncing it goes."""

    entity_id: str
    organization_name: str
    version: int | None
    services: int
    issued_at: int | None
    expires_at: int | None
    synced_at: int | None
    attempted_at: int | None
    next_sync_at: int | None
    failures: int
    last_error_code: str | None
    last_error: str | None
    stale: bool


@dataclass(frozen=True)
class SyncResult:
    """One poll of one peer: ``updated``, ``unchanged``, ``failed`` or ``not_due``."""

    outcome: str
    held: HeldDirectory


def sync_round(
    node: Node, *, force: bool = False, progress: Callable[[SyncResult], None] | None = None
) -> list[SyncResult]:
    """Poll every trusted peer that is due (all of them when ``force``), several at once.

    ``progress`` is called, in the calling thread, as each peer finishes. A failing
    peer is recorded on its row and in its result, never raised.
    """
    now = node.now()
    with node.database.session() as session:
        key = node.ring(session).signing_key
        held = {row.peer_id: row for row in session.scalars(select(PeerDirectory))}
        targets = [
            _target(peer, held.get(peer.id))
            for peer in peers.list_peers(session, PeerStatus.TRUSTED)
            if force or _is_due(held.get(peer.id), now)
        ]
    if not targets:
        return []
    results: list[SyncResult] = []
    workers = max(1, min(node.settings.sync_concurrency, len(targets)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="exchange-sync") as pool:
        for future in as_completed([pool.submit(_poll, node, target, key) for target in targets]):
            results.append(future.result())
            if progress is not None:
                progress(results[-1])
    if any(result.outcome == UPDATED for result in results):
        with node.database.session() as session:
            directory_index.refresh_statistics(session)
    return sorted(results, key=lambda result: result.held.entity_id)


def sync_peer(node: Node, entity_id: str, *, force: bool = False) -> SyncResult:
    """Poll one trusted peer now; unless ``force``, only if it is due.

    Raises:
        NotFoundError: no such peer. ConflictError: the peer is not trusted.
    """
    with node.database.session() as session:
        peer = peers.get_peer(session, entity_id)
        if peer.status != PeerStatus.TRUSTED:
            raise ConflictError(f"{peer.entity_id} is {peer.status}; only trusted peers are synced")
        directory = session.get(PeerDirectory, peer.id)
        key, target = node.ring(session).signing_key, _target(peer, directory)
        if not force and not _is_due(directory, node.now()):
            return SyncResult(NOT_DUE, _held(session, peer, node.now()))
    result = _poll(node, target, key)
    if result.outcome == UPDATED:
        with node.database.session() as session:
            directory_index.refresh_statistics(session)
    return result


def held_directories(node: Node, session: Session) -> list[HeldDirectory]:
    """What is held of each trusted or suspended peer, by entity identifier."""
    now = node.now()
    return [
        _held(session, peer, now)
        for peer in peers.list_peers(session)
        if peer.status in (PeerStatus.TRUSTED, PeerStatus.SUSPENDED)
    ]


def next_sync_at(
    poll_seconds: int,
    now: int,
    *,
    failures: int = 0,
    issued_at: int | None = None,
    expires_at: int | None = None,
) -> int:
    """When to poll next: every ``poll_seconds`` (jittered), backing off after failures,
    sooner when the held document enters the last tenth of its lifetime (SPEC 4.1), and
    never within a minute."""
    delay = min(poll_seconds * 2 ** max(failures - 1, 0), MAX_BACKOFF_SECONDS)
    delay *= random.uniform(1 - JITTER, 1 + JITTER)  # noqa: S311 (spreading load, not secrecy)
    due = now + int(delay)
    if not failures and issued_at is not None and expires_at is not None:
        renew_from = expires_at - (expires_at - issued_at) // 10
        # In the last tenth already (the publisher has not signed again): halve what is left.
        sooner = renew_from - now if renew_from > now else (expires_at - now) // 2
        if sooner > 0:
            due = min(due, now + sooner)
    return max(due, now + MIN_POLL_SECONDS)


@dataclass(frozen=True)
class _Target:
    """A peer to poll, as read in a short transaction before any HTTP."""

    peer_id: int
    entity_id: str
    endpoint: str
    keys: tuple[NodeKey, ...]
    version: int | None
    etag: str | None


@dataclass(frozen=True)
class _Fetched:
    """A verified document, or ``None`` for ``304 Not Modified``; and the ETag served."""

    document: CapacityDocument | None
    etag: str | None


@dataclass(frozen=True)
class _Failure:
    code: str
    detail: str


def _target(peer: Peer, directory: PeerDirectory | None) -> _Target:
    version = etag = None
    if directory is not None and directory.token is not None:
        version, etag = directory.version, directory.etag
    return _Target(
        peer_id=peer.id,
        entity_id=peer.entity_id,
        endpoint=peer.capacity_endpoint,
        keys=tuple(import_jwk(key.jwk, "sig") for key in peer.keys if key.use == "sig"),
        version=version,
        etag=etag,
    )


def _is_due(directory: PeerDirectory | None, now: int) -> bool:
    return directory is None or directory.next_sync_at is None or directory.next_sync_at <= now


def _poll(node: Node, target: _Target, key: NodeKey) -> SyncResult:
    """Fetch and verify (no transaction open), then record the outcome in one transaction."""
    try:
        fetched: _Fetched | _Failure = _fetch(node, target, key)
    except (ExchangeError, ProtocolError) as e:
        fetched = _Failure(e.code, e.detail)
    return _record(node, target, fetched)


def _fetch(node: Node, target: _Target, key: NodeKey) -> _Fetched:
    now = node.now()
    answer = node.client.fetch_capacity(target.endpoint, key=key, now=now, etag=target.etag)
    if answer.token is None:
        return _Fetched(None, answer.etag)
    document = verify_capacity_document(
        answer.token,
        issuer=target.entity_id,
        issuer_keys=target.keys,
        now=now,
        held_version=target.version,
        limits=node.settings.limits,
    )
    return _Fetched(document, answer.etag)


def _record(node: Node, target: _Target, fetched: _Fetched | _Failure) -> SyncResult:
    """Write one poll's outcome on the peer's row (and its services, for a new version)."""
    now = node.now()
    with node.database.session() as session:
        peer = session.get(Peer, target.peer_id)
        if peer is None:
            raise NotFoundError(f"{target.entity_id} was deleted while it was synced")
        if peer.status != PeerStatus.TRUSTED:  # suspended or removed during the poll
            return SyncResult(FAILED, _held(session, peer, now))
        directory = _locked_directory(session, peer.id)
        directory.attempted_at = now
        poll_seconds = node.settings.capacity_poll_seconds
        stored = _store(session, peer, directory, fetched, node.settings.limits)
        if isinstance(stored, _Failure):
            _record_failure(poll_seconds, directory, stored, now)
            level = logging.ERROR if stored.code in FORGED else logging.WARNING
            log.log(level, "capacity sync of %s failed: %s", peer.entity_id, stored.code)
        else:
            _record_success(poll_seconds, directory, now)
        session.flush()
        return SyncResult(stored if isinstance(stored, str) else FAILED, _held(session, peer, now))


def _store(
    session: Session,
    peer: Peer,
    directory: PeerDirectory,
    fetched: _Fetched | _Failure,
    limits: Limits,
) -> str | _Failure:
    """Keep a verified document if it is news: a higher version replaces the peer's rows."""
    if isinstance(fetched, _Failure):
        return fetched
    document, held = fetched.document, directory.version
    if document is None or (held is not None and document.version < held):
        return UNCHANGED  # 304; or another poll stored a newer version meanwhile
    if held is not None and document.version == held:
        if directory.token and held_services_claim(directory.token, limits) != held_services_claim(
            document.token, limits
        ):  # SPEC 4.5: the publisher broke its duty; keep what is held
            return _Failure(
                "version_reused", f"version {held} was signed again with other services"
            )
        outcome = UNCHANGED  # a re-signature: later expiry, same services
    else:
        count = directory_index.replace_peer_services(session, peer, document.services)
        log.info("capacity of %s: version %s, %s services", peer.entity_id, document.version, count)
        outcome = UPDATED
    directory.version, directory.token = document.version, document.token
    directory.etag, directory.issued_at = fetched.etag, document.issued_at
    directory.expires_at = document.expires_at
    return outcome


def _record_success(poll_seconds: int, directory: PeerDirectory, now: int) -> None:
    directory.synced_at, directory.failures = now, 0
    directory.last_error_code = directory.last_error = None
    directory.next_sync_at = next_sync_at(
        poll_seconds, now, issued_at=directory.issued_at, expires_at=directory.expires_at
    )


def _record_failure(
    poll_seconds: int, directory: PeerDirectory, failure: _Failure, now: int
) -> None:
    directory.failures += 1
    directory.last_error_code, directory.last_error = failure.code[:64], failure.detail[:500]
    directory.next_sync_at = next_sync_at(poll_seconds, now, failures=directory.failures)


def _locked_directory(session: Session, peer_id: int) -> PeerDirectory:
    """The peer's directory row, created if missing, locked for this transaction.

    The first row is inserted with ``ON CONFLICT DO NOTHING``, so the worker and
    ``directory sync`` may create it at the same moment without a unique-key error.
    """
    locked = (
        select(PeerDirectory)
        .where(PeerDirectory.peer_id == peer_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    directory = session.execute(locked).scalar_one_or_none()
    if directory is not None:
        return directory
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(
        insert(PeerDirectory).values(peer_id=peer_id, failures=0).on_conflict_do_nothing()
    )
    return session.execute(locked).scalar_one()


def _held(session: Session, peer: Peer, now: int) -> HeldDirectory:
    directory = session.get(PeerDirectory, peer.id) or PeerDirectory(peer_id=peer.id, failures=0)
    count = session.scalar(
        select(func.count())
        .select_from(DirectoryService)
        .where(DirectoryService.peer_id == peer.id)
    )
    return HeldDirectory(
        entity_id=peer.entity_id,
        organization_name=peer.organization_name,
        version=directory.version,
        services=int(count or 0),
        issued_at=directory.issued_at,
        expires_at=directory.expires_at,
        synced_at=directory.synced_at,
        attempted_at=directory.attempted_at,
        next_sync_at=directory.next_sync_at,
        failures=directory.failures,
        last_error_code=directory.last_error_code,
        last_error=directory.last_error,
        stale=directory.expires_at is not None and directory.expires_at <= now,
    )


__all__ = [
    "FAILED",
    "NOT_DUE",
    "UNCHANGED",
    "UPDATED",
    "HeldDirectory",
    "SyncResult",
    "held_directories",
    "next_sync_at",
    "sync_peer",
    "sync_round",
]
