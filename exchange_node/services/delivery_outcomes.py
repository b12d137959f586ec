"""What one delivery attempt came to (SPEC 7.5, 7.6), and how that is recorded.

:func:`read_answer` turns an inbox answer into an :class:`Outcome`: delivered
(a ``202`` whose receipt verifies), retry (the peer is unavailable or cannot
authenticate us yet, or the receipt does not verify), or failed (the peer is up
and said no); :func:`backoff_delay` is the per-peer jittered backoff. The
``record_*`` functions write an outcome on the outbox row, its peer and its
referral, in the caller's transaction, which holds the row's lock
(:func:`lock_pending`); delivered rows, the usual case, are written together with
prepared statements and no ORM objects. Nothing here makes a request or claims
rows: :mod:`exchange_node.services.delivery` does.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, or_, update
from sqlalchemy.orm import Session

from exchange_node.db.models import OutboxMessage, OutboxState, Peer, Referral
from exchange_node.errors import PeerUnreachableError
from exchange_node.federation_client import read_problem, retry_after
from exchange_node.protocol.errors import ProtocolError
from exchange_node.protocol.keys import NodeKey
from exchange_node.protocol.limits import Limits
from exchange_node.protocol.statements import verify_receipt
from exchange_node.services import audit, referral_store
from exchange_node.transport import HttpResponse

log = logging.getLogger("exchange_node.delivery")

ACTOR = "worker"

DELIVERED, RETRY, FAILED = "delivered", "retry", "failed"
#: ``last_error_code`` of a row whose deadline passed without a receipt.
DEADLINE = "deadline"
#: Backoff (SPEC 11.1): full jitter, 10 s doubling per failure, capped at an hour.
BACKOFF_BASE_SECONDS = 10
MAX_BACKOFF_SECONDS = 3_600
#: A peer's ``Retry-After`` is honoured up to this long (a row's deadline still applies).
MAX_RETRY_AFTER_SECONDS = 86_400
#: Answers on which ``Retry-After`` is honoured (SPEC 7.5).
_RETRY_AFTER_STATUSES = frozenset({429, 503})
#: ``400`` codes that mean "the envelope is outside its lifetime": re-seal, then retry.
_LIFETIME_CODES = frozenset({"expired", "not_yet_valid"})

# Statements built once: writing outcomes is on the hot path of every delivery.
_LOCK_PENDING = (
    update(OutboxMessage)
    .where(OutboxMessage.id.in_(bindparam("row_ids", expanding=True)))
    .where(OutboxMessage.state == OutboxState.PENDING)
    .values(lease_until=OutboxMessage.lease_until)
    .returning(OutboxMessage.id)
)
_DELIVERED = (
    update(OutboxMessage)
    .where(OutboxMessage.id == bindparam("row_id"))
    .values(
        state=OutboxState.DELIVERED,
        attempts=OutboxMessage.attempts + 1,
        delivered_at=bindparam("now"),
        receipt=bindparam("token"),
        envelope=None,
        sealed_body=None,
        lease_until=None,
        last_error_code=None,
        last_error=None,
    )
)
_RESET_BACKOFF = (
    update(Peer)
    .where(Peer.id.in_(bindparam("peer_ids", expanding=True)))
    .where(or_(Peer.delivery_failures > 0, Peer.delivery_retry_at.is_not(None)))
    .values(delivery_failures=0, delivery_retry_at=None)
)


@dataclass(frozen=True)
class Sent:
    """What was sent in an attempt: what the receipt must match (SPEC 7.6)."""

    sender: str
    peer: str
    peer_keys: tuple[NodeKey, ...]
    jti: str
    envelope: str


@dataclass(frozen=True)
class Outcome:
    """How an attempt ended; ``code`` and ``error`` are shown to staff when it did not succeed."""

    kind: str
    code: str | None = None
    error: str | None = None
    receipt: str | None = None
    #: Seconds the peer asked us to wait (``Retry-After``), if it did.
    wait: int | None = None
    #: Seal the body again with a new ``jti`` before the next attempt.
    reseal: bool = False
    #: Fetch the peer's entity configuration again (its keys may have changed).
    refresh_peer: bool = False
    #: The peer answered within the protocol (it is up), whatever it said.
    peer_answered: bool = False


def read_answer(response: HttpResponse, sent: Sent, *, now: int, limits: Limits) -> Outcome:
    """The outcome of an attempt the peer answered (SPEC 7.5 "Retry guidance by answer")."""
    status = response.status
    if status == 202:
        return _read_receipt(response, sent, now=now, limits=limits)
    if not 400 <= status < 600:
        return Outcome(RETRY, f"http_{status}", f"{sent.peer} answered HTTP {status}, not 202")
    problem = read_problem(response)
    code = problem.code or f"http_{status}"
    error = f"{sent.peer} answered HTTP {status} {code}: {problem.detail}"[:500]
    if status >= 500 or status in (401, 429):
        wait = retry_after(response, now) if status in _RETRY_AFTER_STATUSES else None
        refresh = status == 401 and code == "decryption_failed"
        return Outcome(RETRY, code, error, wait=wait, reseal=refresh, refresh_peer=refresh)
    if status == 400 and code in _LIFETIME_CODES:
        return Outcome(RETRY, code, error, reseal=True, peer_answered=True)
    return Outcome(FAILED, code, error, peer_answered=True)


def unreachable(error: PeerUnreachableError) -> Outcome:
    """No answer at all: a network error, a timeout, an answer too large to read."""
    return Outcome(RETRY, error.code, error.detail[:500])


def backoff_delay(
    failures: int, *, base: int = BACKOFF_BASE_SECONDS, largest: int = MAX_BACKOFF_SECONDS
) -> int:
    """Seconds before the next attempt after ``failures`` earlier consecutive failures.

    ``random(0, min(largest, base * 2**failures))``, by default ``min(3600, 10 * 2**failures)``
    (SPEC 7.5), and at least one second so that a retry never happens within the same second.
    """
    cap = min(largest, base * 2 ** min(failures, 20))
    jitter = random.uniform(0, cap)  # noqa: S311 - spreading load, not a secret
    return max(1, math.ceil(jitter))


def _read_receipt(response: HttpResponse, sent: Sent, *, now: int, limits: Limits) -> Outcome:
    try:
        receipt = verify_receipt(
            response.body.strip(),
            issuer=sent.peer,
            issuer_keys=sent.peer_keys,
            audience=sent.sender,
            envelope=sent.envelope,
            message_jti=sent.jti,
            now=now,
            limits=limits,
        )
    except ProtocolError as e:
        error = f"{sent.peer} answered 202 with a receipt that does not verify: {e.code}"
        # An unknown key may be a new one: refresh the peer's entity configuration (7.6).
        return Outcome(RETRY, e.code, error, refresh_peer=e.code == "untrusted_key")
    return Outcome(DELIVERED, receipt=receipt.token, peer_answered=True)


def lock_pending(connection: Connection, row_ids: Sequence[int]) -> set[int]:
    """Which of the rows are still pending, each locked until the transaction ends.

    The no-op update takes the row locks on PostgreSQL and the write lock on SQLite, so
    nothing (a purge, another worker) changes these rows until the caller commits.
    """
    return set(connection.scalars(_LOCK_PENDING, {"row_ids": list(row_ids)}))


def record_delivered(connection: Connection, receipts: Sequence[tuple[int, str]], now: int) -> None:
    """Mark rows delivered, each with its receipt as the record; drop their envelope and body.

    ``receipts`` holds (row id, receipt token) of rows the caller locked while pending
    (:func:`lock_pending`): one statement for them all, without loading the rows.
    """
    if receipts:
        rows = [{"row_id": row_id, "token": token, "now": now} for row_id, token in receipts]
        connection.execute(_DELIVERED, rows)


def reset_backoffs(connection: Connection, peer_ids: Iterable[int]) -> None:
    """These peers answered: they are up, so their next messages need not wait."""
    connection.execute(_RESET_BACKOFF, {"peer_ids": list(peer_ids)})


def record_retry(
    row: OutboxMessage,
    peer: Peer,
    outcome: Outcome,
    now: int,
    *,
    base: int = BACKOFF_BASE_SECONDS,
    largest: int = MAX_BACKOFF_SECONDS,
) -> None:
    """Count the failure on the row and back off its peer (once per batch of attempts);
    ``base`` and ``largest`` shape the backoff (:func:`backoff_delay`)."""
    row.attempts += 1
    row.lease_until = None
    row.last_error_code, row.last_error = outcome.code, outcome.error
    log.warning(
        "%s message %s to %s will be retried: %s",
        row.message_type,
        row.id,
        peer.entity_id,
        outcome.code,
    )
    if outcome.peer_answered:  # the peer is up: only this message waits
        row.next_attempt_at = min(
            row.deadline, now + backoff_delay(row.attempts - 1, base=base, largest=largest)
        )
        return
    if peer.delivery_retry_at is None or peer.delivery_retry_at <= now:
        wait = (
            backoff_delay(peer.delivery_failures, base=base, largest=largest)
            if outcome.wait is None
            else outcome.wait
        )
        peer.delivery_failures += 1
        peer.delivery_retry_at = now + max(1, min(wait, MAX_RETRY_AFTER_SECONDS))
    row.next_attempt_at = min(row.deadline, peer.delivery_retry_at)


def record_deadline(session: Session, row: OutboxMessage, peer: Peer, now: int) -> None:
    """The deadline passed without a receipt: failed, with the last error it had."""
    error = (
        f"no receipt before the deadline, after {row.attempts} attempts: {row.last_error or '-'}"
    )
    record_failed(session, row, peer, code=DEADLINE, error=error, now=now, attempted=False)


def record_failed(
    session: Session,
    row: OutboxMessage,
    peer: Peer,
    *,
    code: str,
    error: str,
    now: int,
    attempted: bool = True,
) -> None:
    """Mark the row failed, visibly: on the row, on its referral's timeline, in the audit log."""
    log.warning("%s message %s to %s failed: %s", row.message_type, row.id, peer.entity_id, code)
    row.attempts += int(attempted)
    row.state = OutboxState.FAILED
    row.lease_until = None
    row.envelope = row.sealed_body = None
    row.last_error_code, row.last_error = code[:64], error[:500]
    subject = peer.entity_id
    if row.referral_pk is not None:
        referral = session.get_one(Referral, row.referral_pk)
        referral_store.add_event(
            session, referral, kind=referral_store.DELIVERY_FAILED, now=now, reason_code=code[:32]
        )
        referral.updated_at = now
        subject = referral.referral_id
    audit.record(
        session,
        actor=ACTOR,
        action="message.failed",
        subject=subject,
        details={"message_type": row.message_type, "code": code[:64]},
        now=now,
    )


def reset_backoff(peer: Peer) -> None:
    """The peer answered: it is up, so its next messages need not wait."""
    if peer.delivery_failures or peer.delivery_retry_at is not None:
        peer.delivery_failures, peer.delivery_retry_at = 0, None
