"""Authenticating federation requests from peers: the one place that does it.

Order (normative in protocol/SPEC.md section 7.2): signature fields, the signer
as a known peer's key (else 401 ``unknown_signer``), the RFC 9421 signature
with the caller's ``now``, the peer's status (else 403 ``peer_not_trusted``),
then the nonce, recorded so that a replay is refused (401 ``replayed``) by
every process sharing the database.

:func:`authenticate_peer_request` commits the nonce in a transaction of its own; the
inbox checks a request with :func:`check_peer_request` and records the nonce in its own
transaction instead (and alone, should it refuse the request).

This runs on every federation request, so it stays lean: the signature fields are parsed
once, the signer and its peer come from one indexed query, the nonce is one
``INSERT … ON CONFLICT DO NOTHING RETURNING``, and verification keys are cached by
thumbprint (a thumbprint names exactly one key).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Insert, Row, bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from exchange_node.db import Database
from exchange_node.db.models import Peer, PeerKey, PeerStatus, SeenNonce
from exchange_node.errors import PeerNotTrustedError
from exchange_node.protocol.errors import ReplayError, UnknownSignerError
from exchange_node.protocol.httpsig import SignatureFields, read_signature, verify_request
from exchange_node.protocol.keys import NodeKey, import_jwk
from exchange_node.protocol.limits import Limits


@dataclass(frozen=True)
class AuthenticatedPeer:
    """The trusted peer a request came from."""

    id: int
    entity_id: str
    status: str


@dataclass(frozen=True)
class PeerRequest:
    """A federation request as its signer signed it: the public URL and the exact body."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class CheckedRequest:
    """A request from a trusted peer whose nonce is still to be recorded (step 6)."""

    peer: AuthenticatedPeer
    nonce: str
    keep_until: int

    def remember_nonce(self, connection: Connection) -> None:
        """Record the nonce in the caller's transaction; :class:`ReplayError` if seen before."""
        remember_nonce(connection, self.peer.id, self.nonce, self.keep_until)


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
        checked = check_peer_request(
            connection, PeerRequest(method, url, headers, body), signature, now=now, limits=limits
        )
        checked.remember_nonce(connection)
    return checked.peer


def check_peer_request(
    connection: Connection,
    request: PeerRequest,
    signature: SignatureFields,
    *,
    now: int,
    limits: Limits,
) -> CheckedRequest:
    """Steps 2-5 in the caller's transaction: the signer, its signature and its peer's status.

    ``signature`` is the request's, read by :func:`read_signature` (step 1). The caller
    records the nonce (:meth:`CheckedRequest.remember_nonce`) before it answers, and
    commits it even when it refuses what the request asks.

    Raises:
        HTTPSignatureError subclasses (401), UnknownSignerError (401),
        PeerNotTrustedError (403).
    """
    signer = connection.execute(_SIGNER, {"kid": signature.keyid}).one_or_none()
    return check_signer(signer, request, signature, now=now, limits=limits)


def check_signer(
    signer: Row[Any] | None,
    request: PeerRequest,
    signature: SignatureFields,
    *,
    now: int,
    limits: Limits,
) -> CheckedRequest:
    """Steps 2-5 once the signer's key is read: ``signer`` is the row of the key named by
    ``signature.keyid`` with its peer (``use``, ``jwk``, ``id``, ``entity_id``, ``status``,
    as :data:`SIGNER_COLUMNS`), or None when no peer has that key.

    Raises:
        As :func:`check_peer_request`.
    """
    if signer is None or signer.use != "sig":
        raise UnknownSignerError(f"key {signature.keyid} belongs to no known peer")
    key = _verification_key(signature.keyid, signer.jwk["x"])
    verified = verify_request(
        request.method, request.url, signature, request.body, key=key, now=now, limits=limits
    )
    if signer.status != PeerStatus.TRUSTED:
        raise PeerNotTrustedError(f"this node does not trust {signer.entity_id} ({signer.status})")
    return CheckedRequest(
        AuthenticatedPeer(signer.id, signer.entity_id, signer.status),
        verified.nonce,
        verified.expires + limits.clock_skew,
    )


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


#: What :func:`check_signer` reads of the signer's key and its peer.
SIGNER_COLUMNS = (PeerKey.use, PeerKey.jwk, Peer.id, Peer.entity_id, Peer.status)
#: The signer of a request and its peer, in one indexed query (built once).
_SIGNER = (
    select(*SIGNER_COLUMNS)
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
