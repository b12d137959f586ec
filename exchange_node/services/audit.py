"""The tamper-evident audit log: one hash-chained entry per referral event or administrative action.

An entry says who (``actor``: ``cli``, ``worker``, ``api:<client_id>``, ``peer:<entity id>``)
did what (``action``: a stable dotted code such as ``peer.suspended``) to which identifier
(``subject``: an entity id, key thumbprint, numeric user id, client id), with a few more
identifiers and codes in ``details``. Never personal data: :func:`record` refuses nested or
large details and anything that looks like an e-mail address.

How an entry's hash is computed, so that an auditor can recompute it by hand::

    content = canonical JSON of {"action": ..., "actor": ..., "details": {...},
                                 "seq": ..., "subject": ..., "time": ...}
    hash    = lowercase hex SHA-256 of  prev_hash (64 ASCII characters) + content

Canonical JSON is RFC 8785 (JCS) for these values: keys sorted, no whitespace
(separators ``,`` and ``:``), strings as UTF-8 with only ``"``, ``\\`` and control
characters escaped (``\\n`` or ``\\u001f`` style), integers in plain decimal (details hold
only strings, integers within +-2**53, booleans and null). In Python:
``json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` encoded as
UTF-8. The first entry's ``prev_hash`` is 64 zeros (``"0" * 64``); every other entry's is
the hash of the entry before it, and ``seq`` runs 1, 2, 3, ... without gaps.

What the chain proves, and what it does not: changing, removing or reordering any entry
is detected by :func:`verify` at the first entry affected, unless every later hash is
recomputed too. Removing entries at the end (truncating the tail) leaves a valid, shorter
chain and is not detectable from the log alone: an administrator who notes the last hash
that ``exchange-node audit verify`` prints (or keeps it off the machine) detects it. The
log is only as trustworthy as the database; it makes tampering evident, not impossible.

This module neither decides which actions are logged (the services that act call
:func:`record`) nor prints anything (:mod:`exchange_node.cli.audit` does).
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from sqlalchemy import Connection, Row, Text, cast, insert, select, text, update
from sqlalchemy.orm import Session

from exchange_node.db.models import AuditEntry
from exchange_node.errors import InvalidRequestError

__all__ = [
    "CHANGED",
    "GENESIS_HASH",
    "REMOVED",
    "REORDERED",
    "LoggedEntry",
    "VerifyResult",
    "canonical_content",
    "entries",
    "entry_hash",
    "record",
    "verify",
]

#: The ``prev_hash`` of the first entry.
GENESIS_HASH = "0" * 64
#: What :func:`verify` found wrong with the first bad entry.
CHANGED, REMOVED, REORDERED = "changed", "removed", "reordered"

MAX_ACTOR_LENGTH = 300
MAX_SUBJECT_LENGTH = 512
#: Serialized details (canonical JSON, in bytes): identifiers and codes, not documents.
MAX_DETAILS_BYTES = 1024
MAX_LIST_LIMIT = 1000
#: Entries :func:`verify` reads per query, so a long log is never loaded at once.
VERIFY_BATCH = 1000
#: The largest integer every JSON implementation holds exactly (RFC 8785, I-JSON).
MAX_SAFE_INTEGER = 2**53 - 1
#: Serializes appends on PostgreSQL, with a second key per schema (one lock per node).
ADVISORY_LOCK_CLASS = 0x61756474  # "audt"

_ACTION = re.compile(r"[a-z][a-z_]*(\.[a-z][a-z_]*)+")
_DETAIL_KEY = re.compile(r"[a-z][a-z0-9_]{0,39}")


@dataclass(frozen=True)
class LoggedEntry:
    """An entry as stored; ``details`` is None when the stored text is not a JSON object."""

    seq: int
    time: int
    actor: str
    action: str
    subject: str
    details: dict[str, Any] | None
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of :func:`verify`: intact, or the first bad entry and what is wrong."""

    #: Entries checked: all of them when intact, those before the bad one otherwise.
    entries: int
    #: The hash of the last entry checked (64 zeros for an empty log).
    last_hash: str
    #: The first bad entry's ``seq``, and ``changed``, ``removed`` or ``reordered``.
    broken_seq: int | None = None
    problem: str | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.problem is None


def canonical_content(
    seq: int, time: int, actor: str, action: str, subject: str, details: Mapping[str, Any]
) -> bytes:
    """The canonical JSON that an entry's hash covers (see the module docstring)."""
    content = {
        "seq": seq,
        "time": time,
        "actor": actor,
        "action": action,
        "subject": subject,
        "details": dict(details),
    }
    return _canonical_json(content)


def entry_hash(prev_hash: str, content: bytes) -> str:
    """SHA-256, in lowercase hex, of ``prev_hash`` followed by the canonical ``content``."""
    return hashlib.sha256(prev_hash.encode("ascii", "replace") + content).hexdigest()


def record(
    session: Session | Connection,
    *,
    actor: str,
    action: str,
    subject: str,
    details: Mapping[str, Any] | None = None,
    now: int,
) -> None:
    """Append an entry in the caller's transaction: it commits or rolls back with the action.

    Appends are serialized (an advisory lock on PostgreSQL, the database write lock on
    SQLite), which the caller then holds until its transaction ends. A session's pending
    changes are flushed once the lock is held (the caller may rely on that, as on ids).
    On a Core connection, nothing else is needed: the inbox appends that way.

    Raises:
        InvalidRequestError: an unknown-looking action, an actor or subject that is too long
            or looks like an e-mail address, or details that are not a small flat object.
    """
    details = dict(details or {})
    _check_entry(actor, action, subject, details)
    connection = session.connection() if isinstance(session, Session) else session
    _lock_log(connection)
    if isinstance(session, Session):
        session.flush()  # after the lock, as when the head was read through the session
    head = connection.execute(_HEAD).first()
    seq, prev_hash = (1, GENESIS_HASH) if head is None else (head.seq + 1, head.hash)
    content = canonical_content(seq, now, actor, action, subject, details)
    connection.execute(
        _INSERT,
        {
            "seq": seq,
            "time": now,
            "actor": actor,
            "action": action,
            "subject": subject,
            "details": details,
            "prev_hash": prev_hash,
            "hash": entry_hash(prev_hash, content),
        },
    )


def entries(
    session: Session, *, after_seq: int | None = None, limit: int = 100, action: str | None = None
) -> list[LoggedEntry]:
    """Entries in order, from the one after ``after_seq``, optionally of one action only."""
    query = _ROWS.order_by(AuditEntry.seq).limit(max(1, min(limit, MAX_LIST_LIMIT)))
    if after_seq is not None:
        query = query.where(AuditEntry.seq > after_seq)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    return [_logged(row) for row in session.execute(query)]


def verify(session: Session) -> VerifyResult:
    """Walk the log in order, recomputing every hash and link; stop at the first bad entry."""
    checked, previous = 0, GENESIS_HASH
    for entry in _stream(session):
        problem = _check_link(session, entry, checked + 1, previous)
        if problem is not None:
            return VerifyResult(checked, previous, *problem)
        checked, previous = checked + 1, entry.hash
    return VerifyResult(checked, previous)


def _check_link(
    session: Session, entry: LoggedEntry, expected_seq: int, previous: str
) -> tuple[int, str, str] | None:
    """What is wrong with ``entry`` read where ``expected_seq`` belongs, after ``previous``."""
    seq = entry.seq
    if seq < expected_seq:
        return seq, REORDERED, f"entry {seq} is numbered out of sequence (expected {expected_seq})"
    if seq > expected_seq:
        missing = (
            f"entry {expected_seq} is"
            if seq == expected_seq + 1
            else f"entries {expected_seq} to {seq - 1} are"
        )
        return expected_seq, REMOVED, f"{missing} missing: the log goes on at entry {seq}"
    intact = entry.details is not None and _recompute(entry) == entry.hash
    if entry.prev_hash != previous:
        before = "the start of the log" if seq == 1 else f"entry {seq - 1}"
        linked = session.scalar(select(AuditEntry.seq).where(AuditEntry.hash == entry.prev_hash))
        if linked is not None and linked != seq:
            return seq, REORDERED, f"entry {seq} follows entry {linked}, not {before}"
        if not intact:
            return seq, CHANGED, f"entry {seq}'s hash does not match its content"
        return (
            seq,
            REMOVED,
            f"entry {seq} does not follow {before}: the entry it followed was removed, "
            f"or {before} was changed and its hash recomputed",
        )
    if not intact:
        return seq, CHANGED, f"entry {seq}'s hash does not match its content"
    return None


def _recompute(entry: LoggedEntry) -> str:
    content = canonical_content(
        entry.seq, entry.time, entry.actor, entry.action, entry.subject, entry.details or {}
    )
    return entry_hash(entry.prev_hash, content)


def _stream(session: Session) -> Iterator[LoggedEntry]:
    """Every entry in ``seq`` order, read ``VERIFY_BATCH`` at a time (keyset pagination)."""
    last: int | None = None
    while True:
        query = _ROWS.order_by(AuditEntry.seq).limit(VERIFY_BATCH)
        if last is not None:
            query = query.where(AuditEntry.seq > last)
        batch = [_logged(row) for row in session.execute(query)]
        yield from batch
        if len(batch) < VERIFY_BATCH:
            return
        last = batch[-1].seq


def _lock_log(connection: Connection) -> None:
    """Serialize appends until the transaction ends, so two writers never fork the chain.

    ``SELECT ... FOR UPDATE`` on the last entry would not do: an empty log has no row to
    lock. SQLite takes its database write lock on the first write of a transaction and
    keeps it to the end, so a transaction that already wrote holds it; one that did not
    takes it with a no-op update before reading the head (as in
    :mod:`~exchange_node.services.publication`).
    """
    if connection.dialect.name == "postgresql":
        connection.execute(_ADVISORY_LOCK, {"lock_class": ADVISORY_LOCK_CLASS})
    elif not _sqlite_wrote(connection):
        connection.execute(_WRITE_LOCK)


def _sqlite_wrote(connection: Connection) -> bool:
    """Whether this SQLite transaction already wrote, and so holds the write lock.

    Python's ``sqlite3`` opens a transaction only before a statement that writes, and
    SQLite takes the write lock at its start (even if it changes no row) or fails.
    """
    driver = connection.connection.driver_connection
    return isinstance(driver, sqlite3.Connection) and driver.in_transaction


def _check_entry(actor: str, action: str, subject: str, details: Mapping[str, Any]) -> None:
    if not _ACTION.fullmatch(action) or len(action) > 64:
        _refuse("action", f"{action!r} is not an action code like 'peer.added'")
    for name, value, longest in (
        ("actor", actor, MAX_ACTOR_LENGTH),
        ("subject", subject, MAX_SUBJECT_LENGTH),
    ):
        if not value or len(value) > longest:
            _refuse(name, f"the {name} needs 1 to {longest} characters")
        _check_text(name, value)
    for key, value in details.items():
        if not isinstance(key, str) or not _DETAIL_KEY.fullmatch(key):
            _refuse("details", f"detail name {key!r} is not lower_snake_case (at most 40)")
        if isinstance(value, str):
            _check_text(f"details/{key}", value)
        elif isinstance(value, int) and abs(value) > MAX_SAFE_INTEGER:
            _refuse(f"details/{key}", "integers in details must be within +-2**53")
        elif value is not None and not isinstance(value, int):
            _refuse(f"details/{key}", "details hold only strings, integers, booleans and null")
    size = len(_canonical_json(details))
    if size > MAX_DETAILS_BYTES:
        _refuse("details", f"details take {size} bytes; at most {MAX_DETAILS_BYTES}")


def _canonical_json(value: Mapping[str, Any]) -> bytes:
    # surrogatepass: a hand-edited row must fail its hash check, not stop the walk.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8", "surrogatepass"
    )


def _check_text(name: str, value: str) -> None:
    if "@" in value:
        _refuse(name, "looks like an e-mail address: log an identifier, never personal data")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        _refuse(name, "is not valid Unicode text")


def _refuse(name: str, reason: str) -> NoReturn:
    raise InvalidRequestError(f"audit entry refused: {name}: {reason}", {name: reason})


def _logged(row: Row[int, int, str, str, str, str, str, str]) -> LoggedEntry:
    try:
        details = json.loads(row.details)
    except (TypeError, ValueError):
        details = None
    return LoggedEntry(
        seq=row.seq,
        time=row.time,
        actor=row.actor,
        action=row.action,
        subject=row.subject,
        details=details if isinstance(details, dict) else None,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


# Details are read as their stored text and parsed here: a hand-edited row that is not JSON
# shows up as "changed", not as an error halfway through the walk.
_ROWS = select(
    AuditEntry.seq,
    AuditEntry.time,
    AuditEntry.actor,
    AuditEntry.action,
    AuditEntry.subject,
    cast(AuditEntry.details, Text).label("details"),
    AuditEntry.prev_hash,
    AuditEntry.hash,
)
_ADVISORY_LOCK = text(
    "SELECT pg_advisory_xact_lock(:lock_class, hashtext(CAST(current_schema() AS text)))"
)
_WRITE_LOCK = update(AuditEntry).where(AuditEntry.seq < 0).values(seq=AuditEntry.seq)
_HEAD = select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
_INSERT = insert(AuditEntry)
