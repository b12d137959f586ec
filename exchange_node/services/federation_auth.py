"""Authenticating federation requests from peers: the one place that does it.

Order (normative in protocol/SPEC.md section 7.2): signature fields, the signer
as a known peer's key (else 401 ``unknown_signer``), the RFC 9421 signature
with the caller's ``now``, the peer's status (else 403 ``peer_not_trusted``),
then the nonce, recorded so that a replay is refused (401 ``replayed``) by
every process sharing the database.

This runs on every federation request, so it stays lean: the signature fields
are parsed once, the signer and its peer come from one indexed query, the
nonce is one ``INSERT … ON CONFLICT DO NOTHING RETURNING``, and verification keys are
cached by thumbprint (a thumbprint names exactly one key).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Insert, bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from exchange_node.db import Database
from exchange_node.db.models import Peer, PeerKey, PeerStatus, SeenNonce
from exchange_node.errors import PeerNotTrustedError
from exchange_node.protocol.errors import ReplayError, UnknownSignerError
from exchange_node.protocol.httpsig import read_signature, verify_request
from exchange_node.protocol.keys import NodeKey, import_jwk
from exchange_node.protocol.limits import Limits


@dataclass(frozen=True)
class AuthenticatedPeer:
    """The trusted peer a request came from."""

    id: int
    entity_id: str
    status: str


def authenticate_peer_request(
    database: Database,
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    now: int,
    limits: Limits,
) -> AuthenticatedPeer:
    """The trusted peer that signed this request.

    Runs in a short transaction of its own, committed before the caller goes on: the
    nonce is recorded even if what follows fails (a replay is a replay either way).

    Raises:
        HTTPSignatureError subclasses (401), UnknownSignerError (401),
        PeerNotTrustedError (403), ReplayError (401).
    """
    signature = read_signature(headers, limits=limits)
    with database.transaction() as connection:
        signer = connection.execute(_SIGNER, {"kid": signature.keyid}).one_or_none()
        if signer is None or signer.use != "sig":
            raise UnknownSignerError(f"key {signature.keyid} belongs to no known peer")
        key = _verification_key(signature.keyid, signer.jwk["x"])
        verified = verify_request(method, url, signature, body, key=key, now=now, limits=limits)
        if signer.status != PeerStatus.TRUSTED:
            raise PeerNotTrustedError(
                f"this node does not trust {signer.entity_id} ({signer.status})"
            )
        remember_nonce(connection, signer.id, verified.nonce, verified.expires + limits.clock_skew)
    return AuthenticatedPeer(signer.id, signer.entity_id, signer.status)


def remember_nonce(connection: Connection, peer_id: int, nonce: str, keep_until: int) -> None:
    """Record a nonce; a second use by the same peer raises :class:`ReplayError`."""
    values = {"peer_id": peer_id, "nonce": nonce, "expires_at": keep_until}
    inserted = connection.execute(_insert_new(connection.dialect.name), values).first()
    if inserted is None:
        raise ReplayError("this request was already received (nonce seen before)")


def forget_expired_nonces(session: Session, now: int) -> int:
    """Delete nonces whose signatures have expired; returns how many."""
    result: Any = session.execute(delete(SeenNonce).where(SeenNonce.expires_at < now))
    return int(result.rowcount or 0)


#: The signer of a request and its peer, in one indexed query (built once).
_SIGNER = (
    select(PeerKey.use, PeerKey.jwk, Peer.id, Peer.entity_id, Peer.status)
    .join(Peer, PeerKey.peer_id == Peer.id)
    .where(PeerKey.kid == bindparam("kid"))
)


@functools.cache
def _insert_new(dialect: str) -> Insert:
    """``INSERT … ON CONFLICT DO NOTHING RETURNING``: a row back means the nonce is new.

    (psycopg reports no rowcount for this statement, so the answer comes from RETURNING.)
    """
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(SeenNonce).on_conflict_do_nothing().returning(SeenNonce.nonce)


@functools.lru_cache(maxsize=4096)
def _verification_key(kid: str, x: str) -> NodeKey:
    """The Ed25519 key whose thumbprint is ``kid`` (checked by ``import_jwk``)."""
    return import_jwk({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid}, "sig")
