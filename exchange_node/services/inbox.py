"""The inbox: accepting sealed messages from trusted peers (SPEC 7.2, steps 8-13).

:func:`accept_envelope` takes the exact body bytes of a request whose HTTP
signature, peer and nonce were already checked (steps 1-6, in
:mod:`~exchange_node.services.federation_auth`) and answers with the signed
receipt. In one transaction it answers a redelivery from the stored receipt,
opens the envelope with the peer's trusted keys (so the content's signer is the
request's signer), records the peer's ``jti`` and digest with the receipt,
applies the message (:mod:`~exchange_node.services.inbox_apply`) and commits.

Concurrent deliveries of one envelope store one message: the row is inserted
with ``ON CONFLICT DO NOTHING`` before anything else is written, so the loser
waits for the winner's transaction and answers with the winner's receipt. The
envelope itself is not kept; what it carried is stored sealed under the data key.
"""

from __future__ import annotations

import functools
import logging

from sqlalchemy import Insert, bindparam, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from exchange_node.db.models import InboxMessage, PeerKey
from exchange_node.errors import StorageError
from exchange_node.node import Node
from exchange_node.protocol.envelope import Message, open_message
from exchange_node.protocol.keys import NodeKey, import_jwk
from exchange_node.protocol.statements import envelope_sha256, issue_receipt
from exchange_node.services.federation_auth import AuthenticatedPeer
from exchange_node.services.inbox_apply import Incoming, Outcome, apply_message

__all__ = ["accept_envelope"]

log = logging.getLogger("exchange_node.inbox")


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
    digest = envelope_sha256(envelope)
    try:
        receipt, outcome = _accept(node, peer, envelope, digest, now)
    except StorageError as e:
        if not isinstance(e.__cause__, IntegrityError):
            raise
        # A concurrent delivery of another envelope about the same referral stored the
        # referral first: once more, this one is a duplicate (or a redelivery).
        log.info("retrying a delivery from %s after a concurrent one", peer.entity_id)
        receipt, outcome = _accept(node, peer, envelope, digest, now)
    if outcome is Outcome.ANSWER_QUEUED:
        node.notify_outbox()
    return receipt


def _accept(
    node: Node, peer: AuthenticatedPeer, envelope: bytes, digest: str, now: int
) -> tuple[str, Outcome | None]:
    """One attempt, in one transaction: the receipt, and the outcome (None: a redelivery)."""
    with node.database.session() as session:
        stored, signing_keys = _stored_receipt_and_keys(session, peer.id, digest)
        if stored is not None:  # step 8: redelivery by bytes, even after the envelope's exp
            return stored, None
        ring = node.ring(session)
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
        if not _record(session, peer, message, digest, receipt, now):
            # Step 10 (replay by jti), or a concurrent delivery of these bytes that won.
            winner = session.scalar(
                select(InboxMessage.receipt).where(
                    InboxMessage.peer_id == peer.id,
                    or_(InboxMessage.jti == message.jti, InboxMessage.envelope_sha256 == digest),
                )
            )
            if winner is None:
                raise StorageError("an inbox row conflicted but cannot be read")
            return winner, None
        outcome = apply_message(Incoming(node, session, peer, message, now))  # steps 11-12
    log.info(
        "accepted %s %s from %s: %s", message.message_type, message.jti, peer.entity_id, outcome
    )
    return receipt, outcome


def _record(
    session: Session,
    peer: AuthenticatedPeer,
    message: Message,
    digest: str,
    receipt: str,
    now: int,
) -> bool:
    """Insert the inbox row; False when this peer's ``jti`` or envelope is already stored."""
    connection = session.connection()
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
    session: Session, peer_id: int, digest: str
) -> tuple[str | None, list[NodeKey]]:
    """The receipt stored for this envelope if any, and the peer's trusted signing keys
    (from its last verified entity configuration), in one query."""
    rows = session.connection().execute(_KEYS_AND_RECEIPT, {"peer_id": peer_id, "digest": digest})
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
