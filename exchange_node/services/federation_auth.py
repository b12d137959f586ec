"""Authenticating federation requests from peers: the one place that does it.

Order (normative in protocol/SPEC.md section 7.2): signature fields, the signer
as a known peer's key (else 401 ``unknown_signer``), the RFC 9421 signature
with the caller's ``now``, the peer's status (else 403 ``peer_not_trusted``),
then the nonce, recorded so that a replay is refused (401 ``replayed``) by
every process sharing the database.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from exchange_node.db.models import Peer, PeerKey, PeerStatus, SeenNonce
from exchange_node.errors import PeerNotTrustedError
from exchange_node.protocol.errors import ReplayError, UnknownSignerError
from exchange_node.protocol.httpsig import read_signature_keyid, verify_request
from exchange_node.protocol.keys import import_jwk
from exchange_node.protocol.limits import Limits


def authenticate_peer_request(
    session: Session,
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    now: int,
    limits: Limits,
) -> Peer:
    """The trusted peer that signed this request.

    Raises:
        HTTPSignatureError subclasses (401), UnknownSignerError (401),
        PeerNotTrustedError (403), ReplayError (401).
    """
    keyid = read_signature_keyid(headers, limits=limits)
    record = session.get(PeerKey, keyid)
    if record is None or record.use != "sig":
        raise UnknownSignerError(f"key {keyid} belongs to no known peer")
    verified = verify_request(
        method, url, headers, body, key=import_jwk(record.jwk, "sig"), now=now, limits=limits
    )
    peer = record.peer
    if peer.status != PeerStatus.TRUSTED:
        raise PeerNotTrustedError(f"this node does not trust {peer.entity_id} ({peer.status})")
    remember_nonce(session, peer, verified.nonce, verified.expires + limits.clock_skew)
    return peer


def remember_nonce(session: Session, peer: Peer, nonce: str, keep_until: int) -> None:
    """Record a nonce; a second use by the same peer raises :class:`ReplayError`."""
    try:
        with session.begin_nested():
            session.add(SeenNonce(peer_id=peer.id, nonce=nonce, expires_at=keep_until))
    except IntegrityError as e:
        raise ReplayError("this request was already received (nonce seen before)") from e


def forget_expired_nonces(session: Session, now: int) -> int:
    """Delete nonces whose signatures have expired; returns how many."""
    result = session.execute(delete(SeenNonce).where(SeenNonce.expires_at < now))
    return int(getattr(result, "rowcount", 0) or 0)
