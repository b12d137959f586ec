"""Signed statements that carry no personal data, so travel signed but not encrypted.

* The inbox **receipt**: the receiver's signed word that it stored the envelope
  whose SHA-256 it names. It has no ``exp``: the same receipt is returned for a
  redelivered ``jti`` at any later time, and it must stay verifiable as a record
  (also by a third party holding only public keys).
* The **peering request**: a node asking another to trust it; the receiver's
  administrator confirms it out of band by thumbprint.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from exchange_node.protocol import _claims, _jose
from exchange_node.protocol._schemas import validate_claims
from exchange_node.protocol.envelope import new_jti
from exchange_node.protocol.errors import InvalidClaimError, NotYetValidError
from exchange_node.protocol.keys import NodeKey
from exchange_node.protocol.limits import DEFAULT_LIMITS, Limits
from exchange_node.protocol.wire import PeeringRequestSchema, ReceiptClaimsSchema, load_claims

RECEIPT_TYP = "exchange-receipt+jwt"
PEERING_REQUEST_TYP = "exchange-peering-request+jwt"
RECEIPT_MEDIA_TYPE = "application/exchange-receipt+jwt"
PEERING_REQUEST_MEDIA_TYPE = "application/exchange-peering-request+jwt"


@dataclass(frozen=True)
class Receipt:
    issuer: str
    audience: str
    issued_at: int
    jti: str
    message_jti: str
    envelope_sha256: str
    token: str


@dataclass(frozen=True)
class PeeringRequest:
    issuer: str
    audience: str
    issued_at: int
    expires_at: int
    jti: str
    message: str
    signed_by: str


def envelope_sha256(envelope: str | bytes) -> str:
    """Base64url SHA-256 of the exact envelope bytes as sent or received."""
    data = envelope.encode("ascii") if isinstance(envelope, str) else envelope
    return _jose.b64url_encode(hashlib.sha256(data).digest())


def issue_receipt(
    *,
    envelope: str | bytes,
    message_jti: str,
    issuer: str,
    audience: str,
    signing_key: NodeKey,
    now: int,
    jti: str | None = None,
) -> str:
    """The receiver's signed receipt for an envelope it has stored."""
    claims = {
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "jti": jti or new_jti(),
        "message_jti": message_jti,
        "envelope_sha256": envelope_sha256(envelope),
    }
    load_claims(ReceiptClaimsSchema, claims, "receipt")
    return _jose.sign_compact(_jose.encode_json(claims), signing_key, RECEIPT_TYP)


def verify_receipt(
    token: str | bytes,
    *,
    issuer: str,
    issuer_keys: Sequence[NodeKey],
    audience: str,
    envelope: str | bytes,
    message_jti: str,
    now: int,
    limits: Limits = DEFAULT_LIMITS,
) -> Receipt:
    """Check that ``issuer`` signed a receipt for exactly the ``envelope`` we sent.

    Raises:
        UntrustedKeyError, BadSignatureError, WrongIssuerError, AudienceError,
        NotYetValidError, InvalidClaimError (digest or jti of another message),
        SchemaError, MalformedError, OversizedError, UnsupportedAlgorithmError, WrongTypeError.
    """
    verified = _jose.verify_compact(token, {k.kid: k for k in issuer_keys}, RECEIPT_TYP, limits)
    claims = _jose.decode_json_object(verified.payload, "receipt")
    _claims.check_issuer(claims, issuer)
    _claims.check_audience(claims, audience)
    issued_at = _claims.require_int(claims, "iat")
    if issued_at > now + limits.clock_skew:
        raise NotYetValidError(f"receipt issued {issued_at - now} s in the future")
    validate_claims("receipt.schema.json", claims, "receipt")
    loaded = claims
    if loaded["message_jti"] != message_jti:
        raise InvalidClaimError("receipt is for another message (message_jti differs)")
    if loaded["envelope_sha256"] != envelope_sha256(envelope):
        raise InvalidClaimError(
            "receipt is for other bytes than were sent (envelope_sha256 differs)"
        )
    return Receipt(
        issuer,
        audience,
        issued_at,
        loaded["jti"],
        message_jti,
        loaded["envelope_sha256"],
        verified.text,
    )


def sign_peering_request(
    *,
    issuer: str,
    audience: str,
    signing_key: NodeKey,
    now: int,
    message: str = "",
    lifetime: int | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> str:
    """A signed request from ``issuer`` asking ``audience`` to add it as a peer."""
    for entity_id in (issuer, audience):
        _claims.check_entity_id(entity_id)
    claims = {
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "exp": now + (lifetime or limits.message_lifetime),
        "jti": new_jti(),
        "message": message,
    }
    load_claims(PeeringRequestSchema, claims, "peering request")
    return _jose.sign_compact(_jose.encode_json(claims), signing_key, PEERING_REQUEST_TYP)


def verify_peering_request(
    token: str | bytes,
    *,
    issuer: str,
    issuer_keys: Sequence[NodeKey],
    audience: str,
    now: int,
    limits: Limits = DEFAULT_LIMITS,
) -> PeeringRequest:
    """Verify a peering request with the keys of the requester's entity configuration.

    Raises:
        the errors of :func:`open_message` that apply to a signed, unencrypted token.
    """
    verified = _jose.verify_compact(
        token, {k.kid: k for k in issuer_keys}, PEERING_REQUEST_TYP, limits
    )
    claims = _jose.decode_json_object(verified.payload, "peering request")
    _claims.check_issuer(claims, issuer)
    _claims.check_audience(claims, audience)
    lifetime = _claims.check_lifetime(
        claims, now=now, skew=limits.clock_skew, max_lifetime=limits.max_message_lifetime
    )
    validate_claims("peering-request.schema.json", claims, "peering request")
    loaded = claims
    return PeeringRequest(
        issuer=issuer,
        audience=audience,
        issued_at=lifetime.issued_at,
        expires_at=lifetime.expires_at,
        jti=loaded["jti"],
        message=loaded.get("message", ""),
        signed_by=verified.key.kid,
    )


__all__ = [
    "PEERING_REQUEST_MEDIA_TYPE",
    "PEERING_REQUEST_TYP",
    "RECEIPT_MEDIA_TYPE",
    "RECEIPT_TYP",
    "PeeringRequest",
    "Receipt",
    "envelope_sha256",
    "issue_receipt",
    "sign_peering_request",
    "verify_peering_request",
    "verify_receipt",
]
