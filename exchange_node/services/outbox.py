"""The durable outbox: every message to a peer is a row, sealed before its first attempt.

:func:`enqueue` seals a message (sign, then encrypt to the peer's current
encryption key, SPEC 5.1) in the caller's transaction, so a referral and the
message that carries it are stored together or not at all. The worker delivers
rows (:mod:`exchange_node.services.delivery`); :func:`reseal` gives an expired
envelope a new ``jti`` and lifetime around the same body (SPEC 7.5).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from exchange_node.db.models import OutboxMessage, OutboxState, Peer, PeerStatus, Referral
from exchange_node.errors import PeerNotTrustedError
from exchange_node.node import Node
from exchange_node.protocol.envelope import SealedMessage, seal_message
from exchange_node.protocol.keys import NodeKey, import_jwk
from exchange_node.protocol.statements import envelope_sha256


def enqueue(
    node: Node,
    session: Session,
    *,
    peer: Peer,
    message_type: str,
    body: Mapping[str, Any],
    referral: Referral | None = None,
    now: int,
    hold_until_trusted: bool = False,
) -> OutboxMessage:
    """Seal ``body`` for ``peer`` and store it as a pending outbox row.

    The caller commits; then :meth:`Node.notify_outbox` wakes an in-process worker.
    Messages are only ever delivered to trusted peers. ``hold_until_trusted`` queues
    one for a peer that is not trusted now (a withdrawal of consent must not wait for
    an administrator): it goes when the peer is trusted again, or fails at its deadline.

    Raises:
        PeerNotTrustedError: the peer is not trusted (and ``hold_until_trusted`` is off).
        ProtocolError: the body breaks the message rules (consent, schema, sizes).
    """
    if peer.status != PeerStatus.TRUSTED and not hold_until_trusted:
        raise PeerNotTrustedError(f"{peer.entity_id} is not trusted ({peer.status})")
    sealed = _seal(node, session, peer, message_type, body, now)
    row = OutboxMessage(
        peer_id=peer.id,
        referral_pk=referral.id if referral is not None else None,
        message_type=message_type,
        jti=sealed.jti,
        envelope=sealed.token,
        envelope_sha256=envelope_sha256(sealed.token),
        expires_at=sealed.expires_at,
        state=OutboxState.PENDING,
        attempts=0,
        next_attempt_at=now,
        deadline=now + node.settings.delivery_deadline_seconds,
        created_at=now,
    )
    session.add(row)
    session.flush()
    row.sealed_body = node.data_key.seal_json(dict(body), context=body_context(row))
    return row


def reseal(node: Node, session: Session, row: OutboxMessage, peer: Peer, now: int) -> None:
    """Seal the row's body again, with a new ``jti``, ``iat`` and ``exp`` (SPEC 7.5).

    Also used after the peer's encryption key changed. The consent rules are checked
    again, so a referral whose consent has since expired raises ``ConsentError``.

    Raises:
        ProtocolError: the body no longer passes the message rules.
        DataKeyError: the stored body does not open.
    """
    if row.sealed_body is None:
        raise ValueError("this outbox row has no body left to seal (delivered or purged)")
    body = node.data_key.open_json(row.sealed_body, context=body_context(row))
    sealed = _seal(node, session, peer, row.message_type, body, now)
    row.jti = sealed.jti
    row.envelope = sealed.token
    row.envelope_sha256 = envelope_sha256(sealed.token)
    row.expires_at = sealed.expires_at


def body_context(row: OutboxMessage) -> str:
    return f"outbox/{row.id}/body"


def recipient_key(peer: Peer) -> NodeKey:
    """The peer's current encryption key: the first it publishes (SPEC 3.3)."""
    for key in peer.keys:
        if key.use == "enc":
            return import_jwk(key.jwk, "enc")
    raise PeerNotTrustedError(f"{peer.entity_id} publishes no encryption key")


def _seal(
    node: Node,
    session: Session,
    peer: Peer,
    message_type: str,
    body: Mapping[str, Any],
    now: int,
) -> SealedMessage:
    return seal_message(
        message_type,
        body,
        issuer=node.settings.url,
        audience=peer.entity_id,
        signing_key=node.ring(session).signing_key,
        recipient_key=recipient_key(peer),
        now=now,
        limits=node.settings.limits,
    )
