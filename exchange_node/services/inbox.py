"""The inbox: accepting sealed messages from trusted peers (SPEC 7.2, steps 1-13).

:func:`accept_request` takes a POST to the inbox as its signer signed it (the public
URL, the headers and the exact body bytes) and answers with the signed receipt. In
one transaction it authenticates the request (steps 2-5, with
:func:`~exchange_node.services.federation_auth.check_signer`, reading the signer, the
peer's signing keys and any receipt stored for these bytes in one query), answers a
redelivery from the stored receipt, opens the envelope with the peer's trusted keys
(so the content's signer is the request's signer), records the request's nonce (step
6) and the peer's ``jti`` and digest with the receipt, applies the message
(:mod:`~exchange_node.services.inbox_apply`) and commits. A request refused after its
authentication still has its nonce recorded, on its own: a replay is a replay either
way. :func:`accept_envelope` does the same for a peer already authenticated.

Concurrent deliveries of one envelope store one message: the row is inserted
with ``ON CONFLICT DO NOTHING`` before anything else but the nonce is written, so the
loser waits for the winner's transaction and answers with the winner's receipt. The
envelope itself is not kept; what it carried is stored sealed under the data key.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Connection, Insert, and_, bindparam, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from exchange_node.db.models import InboxMessage, Peer, PeerKey
from exchange_node.errors import ExchangeError, StorageError
from exchange_node.node import Node
from exchange_node.protocol.envelope import ENVELOPE_MEDIA_TYPE, Message, open_message
from exchange_node.protocol.errors import MalformedError, ProtocolError
from exchange_node.protocol.httpsig import read_signature
from exchange_node.protocol.keys import NodeKey, import_jwk
from exchange_node.protocol.statements import envelope_sha256, issue_receipt
from exchange_node.services.federation_auth import (
    SIGNER_COLUMNS,
    AuthenticatedPeer,
    CheckedRequest,
    PeerRequest,
    check_signer,
)
from exchange_node.services.inbox_apply import Incoming, Outcome, apply_message

__all__ = ["accept_envelope", "accept_request"]

log = logging.getLogger("exchange_node.inbox")


class _Sender(Protocol):
    """Who sent an envelope, and the recording of its request's nonce (step 6)."""

    @property
    def peer(self) -> AuthenticatedPeer: ...

    def remember_nonce(self, connection: Connection) -> None: ...


#: Who sent the envelope, the receipt stored for it (None if new), and the peer's signing keys.
_Found = tuple[_Sender, str | None, list[NodeKey]]
#: Reads what :data:`_Found` holds for an envelope's digest, in the given transaction.
_LookUp = Callable[[Connection, str], _Found]


@dataclass(frozen=True)
class _Authenticated:
    """A peer already authenticated, its nonce already recorded."""

    peer: AuthenticatedPeer

    def remember_nonce(self, connection: Connection) -> None:
        pass


def accept_request(node: Node, request: PeerRequest, *, media_type: str, now: int) -> str:
    """Authenticate a POST to the inbox and accept its envelope: SPEC 7.2 steps 1-13.

    As :func:`authenticate_peer_request` then :func:`accept_envelope`, with the same
    answers in the same order, in one transaction instead of two: the nonce is recorded
    with the message, or on its own when the request is refused after step 5 (a replay
    is a replay either way).

    Raises:
        HTTPSignatureError subclasses, UnknownSignerError, PeerNotTrustedError,
        ReplayError: the request is not authentic (SPEC 7.2 steps 1-6).
        MalformedError: the body is not an envelope (step 7).
        ProtocolError, StorageError: as :func:`accept_envelope`.
    """
    limits = node.settings.limits
    signature = read_signature(request.headers, limits=limits)  # step 1, before any query
    checked: list[CheckedRequest] = []

    def look_up(connection: Connection, digest: str) -> _Found:
        if checked:  # a retry after a conflict: steps 2-5 keep their answer
            return checked[0], *_stored_receipt_and_keys(connection, checked[0].peer.id, digest)
        rows = connection.execute(
            _SIGNER_KEYS_AND_RECEIPT, {"kid": signature.keyid, "digest": digest}
        ).all()
        signer = rows[0] if rows else None
        checked.append(check_signer(signer, request, signature, now=now, limits=limits))
        if media_type != ENVELOPE_MEDIA_TYPE:  # step 7 (the nonce is recorded below)
            raise MalformedError(f"Content-Type must be {ENVELOPE_MEDIA_TYPE}")
        keys = [_signing_key(row.key_kid, row.key_jwk["x"]) for row in rows if row.key_kid]
        return checked[0], rows[0].stored, keys

    try:
        return _accept_retrying(node, request.body, now, look_up)
    except (ExchangeError, ProtocolError):
        if checked:
            _remember_nonce_alone(node, checked[0])  # ReplayError if it was a replay
        raise


def accept_envelope(node: Node, peer: AuthenticatedPeer, envelope: bytes, *, now: int) -> str:
    """Accept ``envelope`` from ``peer`` (authenticated) and return the receipt to answer with.

    A redelivered envelope (same bytes, or same ``jti``) gets the receipt stored for it
    and changes nothing. The caller answers ``202`` with the receipt.

    Raises:
        ProtocolError: the envelope does not open (SPEC 6) or the message is refused by
            the application checks (SPEC 7.3: ``invalid_body``, ``field_not_requested``,
            ``illegal_transition``); nothing is stored.
        StorageError: the database failed.
    """
    authenticated = _Authenticated(peer)

    def look_up(connection: Connection, digest: str) -> _Found:
        return authenticated, *_stored_receipt_and_keys(connection, peer.id, digest)

    return _accept_retrying(node, envelope, now, look_up)


def _accept_retrying(node: Node, envelope: bytes, now: int, look_up: _LookUp) -> str:
    digest = envelope_sha256(envelope)
    try:
        receipt, outcome = _accept(node, envelope, digest, now, look_up)
    except StorageError as e:
        if not isinstance(e.__cause__, IntegrityError):
            raise
        # A concurrent delivery of another envelope about the same referral stored the
        # referral first: once more, this one is a duplicate (or a redelivery).
        log.info("retrying a delivery after a concurrent one")
        receipt, outcome = _accept(node, envelope, digest, now, look_up)
    if outcome is Outcome.ANSWER_QUEUED:
        node.notify_outbox()
    return receipt


def _accept(
    node: Node, envelope: bytes, digest: str, now: int, look_up: _LookUp
) -> tuple[str, Outcome | None]:
    """One attempt, in one transaction: the receipt, and the outcome (None: a redelivery).

    The nonce is recorded just before the first other write, or the answer from the
    stored receipt: so on SQLite the write lock is not held while the envelope is opened.
    """
    with node.database.transaction() as connection:
        delivery, stored, signing_keys = look_up(connection, digest)
        peer = delivery.peer
        if stored is not None:  # step 8: redelivery by bytes, even after the envelope's exp
            delivery.remember_nonce(connection)
            return stored, None
        ring = node.ring(connection)
        message = open_message(  # step 9: the content must be signed by the request's signer
            envelope,
            audience=node.settings.url,
            decryption_keys=ring.decryption_keys,
            sender=peer.entity_id,
            sender_keys=signing_keys,
            now=now,
            limits=node.settings.limits,
        )
        receipt = issue_receipt(
            envelope=envelope,
            message_jti=message.jti,
            issuer=node.settings.url,
            audience=peer.entity_id,
            signing_key=ring.signing_key,
            now=now,
        )
        delivery.remember_nonce(connection)
        if not _record(connection, peer, message, digest, receipt, now):
            # Step 10 (replay by jti), or a concurrent delivery of these bytes that won.
            winner = connection.scalar(
                _WINNER, {"peer_id": peer.id, "jti": message.jti, "digest": digest}
            )
            if winner is None:
                raise StorageError("an inbox row conflicted but cannot be read")
            return winner, None
        outcome = apply_message(Incoming(node, connection, peer, message, now))  # steps 11-12
    log.info(
        "accepted %s %s from %s: %s", message.message_type, message.jti, peer.entity_id, outcome
    )
    return receipt, outcome


def _remember_nonce_alone(node: Node, checked: CheckedRequest) -> None:
    """Record the nonce of a request refused after its authentication (step 6 holds anyway).

    Raises:
        ReplayError: the nonce was seen before: the request is refused as a replay.
    """
    try:
        with node.database.transaction() as connection:
            checked.remember_nonce(connection)
    except StorageError:  # the caller raises the refusal it has
        log.warning(
            "could not record the nonce of a refused request from %s", checked.peer.entity_id
        )


def _record(
    connection: Connection,
    peer: AuthenticatedPeer,
    message: Message,
    digest: str,
    receipt: str,
    now: int,
) -> bool:
    """Insert the inbox row; False when this peer's ``jti`` or envelope is already stored."""
    inserted = connection.execute(
        _insert_new(connection.dialect.name),
        {
            "peer_id": peer.id,
            "jti": message.jti,
            "envelope_sha256": digest,
            "message_type": message.message_type,
            "referral_id": message.body.referral_id,
            "received_at": now,
            "receipt": receipt,
        },
    ).first()
    return inserted is not None


def _stored_receipt_and_keys(
    connection: Connection, peer_id: int, digest: str
) -> tuple[str | None, list[NodeKey]]:
    """The receipt stored for this envelope if any, and the peer's trusted signing keys
    (from its last verified entity configuration), in one query."""
    rows = connection.execute(_KEYS_AND_RECEIPT, {"peer_id": peer_id, "digest": digest})
    stored, keys = None, []
    for row in rows:
        stored = row.stored
        keys.append(_signing_key(row.kid, row.jwk["x"]))
    return stored, keys


@functools.lru_cache(maxsize=4096)
def _signing_key(kid: str, x: str) -> NodeKey:
    """The Ed25519 key whose thumbprint is ``kid`` (checked by ``import_jwk``)."""
    return import_jwk({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid}, "sig")


@functools.cache
def _insert_new(dialect: str) -> Insert:
    """``INSERT … ON CONFLICT DO NOTHING RETURNING``: a row back means the message is new.

    On PostgreSQL a concurrent insert of the same (peer, ``jti``) or (peer, digest) makes
    this wait for that transaction: nothing if it commits, a row if it rolls back.
    """
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(InboxMessage).on_conflict_do_nothing().returning(InboxMessage.id)


#: The peer's signing keys, each with the receipt stored for the envelope (None if new).
_KEYS_AND_RECEIPT = select(
    PeerKey.kid,
    PeerKey.jwk,
    select(InboxMessage.receipt)
    .where(
        InboxMessage.peer_id == bindparam("peer_id"),
        InboxMessage.envelope_sha256 == bindparam("digest"),
    )
    .scalar_subquery()
    .label("stored"),
).where(PeerKey.peer_id == bindparam("peer_id"), PeerKey.use == "sig")
#: The receipt of the stored message this one conflicted with (same ``jti`` or same bytes).
_WINNER = select(InboxMessage.receipt).where(
    InboxMessage.peer_id == bindparam("peer_id"),
    or_(
        InboxMessage.jti == bindparam("jti"),
        InboxMessage.envelope_sha256 == bindparam("digest"),
    ),
)

#: The request's signer and its peer (for :func:`check_signer`), with each of the peer's
#: signing keys and the receipt stored for the envelope: :data:`_KEYS_AND_RECEIPT` and the
#: signer's query in one.
_PeerKey = aliased(PeerKey)
_SIGNER_KEYS_AND_RECEIPT = (
    select(
        *SIGNER_COLUMNS,
        _PeerKey.kid.label("key_kid"),
        _PeerKey.jwk.label("key_jwk"),
        select(InboxMessage.receipt)
        .where(
            InboxMessage.peer_id == Peer.id,
            InboxMessage.envelope_sha256 == bindparam("digest"),
        )
        .scalar_subquery()
        .label("stored"),
    )
    .join(Peer, PeerKey.peer_id == Peer.id)
    .outerjoin(_PeerKey, and_(_PeerKey.peer_id == Peer.id, _PeerKey.use == "sig"))
    .where(PeerKey.kid == bindparam("kid"))
)
