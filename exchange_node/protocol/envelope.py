"""Sealing and opening node-to-node messages: JWE(JWS(claims)), sign then encrypt.

:func:`seal_message` validates a body, signs it with the sender's Ed25519 key
and encrypts it to the receiver's X25519 key. :func:`open_message` undoes that
in a fixed order (size, envelope header, decrypt, inner header, trusted
sender key, signature, issuer, audience, lifetime, ``jti``, schema, consent)
and returns a typed :class:`Message`. Replay is the caller's: it holds the
store of ``jti`` values seen and refuses a repeat; ``Message.jti`` is exposed
for exactly that.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from exchange_node.protocol import _claims, _jose
from exchange_node.protocol._schemas import validate_claims
from exchange_node.protocol.errors import WrongTypeError
from exchange_node.protocol.keys import NodeKey
from exchange_node.protocol.limits import DEFAULT_LIMITS, Limits
from exchange_node.protocol.messages import (
    MESSAGE_TYPE_BY_TYP,
    MESSAGE_TYPES,
    MessageBody,
    MessageType,
    Referral,
    check_referral_consent,
)
from exchange_node.protocol.wire import load_claims

ENVELOPE_MEDIA_TYPE = "application/jose"


@dataclass(frozen=True)
class SealedMessage:
    """A sealed envelope ready to send, with the ``jti`` and ``exp`` the sender records."""

    token: str
    jti: str
    message_type: str
    expires_at: int


@dataclass(frozen=True)
class Message:
    """An opened, verified message. ``jti`` is for the caller's replay store."""

    message_type: str
    jti: str
    issuer: str
    audience: str
    issued_at: int
    expires_at: int
    signed_by: str
    body: MessageBody


def new_jti() -> str:
    """128 random bits, base64url: the form of every ``jti`` this implementation mints."""
    return _jose.b64url_encode(secrets.token_bytes(16))


def seal_message(
    message_type: str,
    body: Mapping[str, Any],
    *,
    issuer: str,
    audience: str,
    signing_key: NodeKey,
    recipient_key: NodeKey,
    now: int,
    jti: str | None = None,
    lifetime: int | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> SealedMessage:
    """Validate ``body``, sign it as ``issuer`` and encrypt it to ``audience``'s key.

    A referral's consent is checked here too, so an invalid referral never leaves.

    Raises:
        WrongTypeError: unknown ``message_type``.
        SchemaError, ConsentError, InvalidClaimError, KeyFormatError.
    """
    kind = _message_type(message_type)
    for entity_id in (issuer, audience):
        _claims.check_entity_id(entity_id)
    message_jti = jti or new_jti()
    expires_at = now + (lifetime or limits.message_lifetime)
    claims = {
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "exp": expires_at,
        "jti": message_jti,
        "body": dict(body),
    }
    _claims.check_lifetime(claims, now=now, skew=0, max_lifetime=limits.max_message_lifetime)
    _claims.check_jti(claims)
    _checked_body(
        kind, load_claims(kind.claims_schema, claims, f"{kind.name} message"), now, limits
    )
    signed = _jose.sign_compact(_jose.encode_json(claims), signing_key, kind.typ)
    token = _jose.encrypt_compact(signed, recipient_key)
    return SealedMessage(token, message_jti, kind.name, expires_at)


def open_message(
    token: str | bytes,
    *,
    audience: str,
    decryption_keys: Sequence[NodeKey],
    sender: str,
    sender_keys: Sequence[NodeKey],
    now: int,
    expected_types: Collection[str] | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Message:
    """Decrypt and verify a message from ``sender`` to this node (``audience``).

    Raises:
        OversizedError, MalformedError, UnsupportedAlgorithmError: unreadable envelope.
        DecryptionError: not for this node's keys, or tampered with.
        WrongTypeError: an unknown ``typ``, or one outside ``expected_types``.
        UntrustedKeyError, BadSignatureError: not signed by ``sender``'s trusted keys.
        WrongIssuerError, AudienceError, ExpiredError, NotYetValidError,
        MissingClaimError, InvalidClaimError: claims that do not fit.
        SchemaError, ConsentError: a body that does not match its schema or consent.
    """
    nested = _jose.decrypt_compact(token, {key.kid: key for key in decryption_keys}, limits)
    accepted = (
        MESSAGE_TYPE_BY_TYP.keys()
        if expected_types is None
        else [kind.typ for kind in MESSAGE_TYPES.values() if kind.name in expected_types]
    )
    verified = _jose.verify_compact(nested, {key.kid: key for key in sender_keys}, accepted, limits)
    kind = MESSAGE_TYPE_BY_TYP[verified.header["typ"]]
    claims = _jose.decode_json_object(verified.payload, "message claims")
    _claims.check_issuer(claims, sender)
    _claims.check_audience(claims, audience)
    lifetime = _claims.check_lifetime(
        claims, now=now, skew=limits.clock_skew, max_lifetime=limits.max_message_lifetime
    )
    jti = _claims.check_jti(claims)
    validate_claims(kind.schema_file, claims, f"{kind.name} message")
    body = _checked_body(kind, claims, now, limits)
    return Message(
        message_type=kind.name,
        jti=jti,
        issuer=sender,
        audience=audience,
        issued_at=lifetime.issued_at,
        expires_at=lifetime.expires_at,
        signed_by=verified.key.kid,
        body=body,
    )


def _message_type(name: str) -> MessageType:
    try:
        return MESSAGE_TYPES[name]
    except KeyError as e:
        raise WrongTypeError(
            f"unknown message type {name!r}; known: {', '.join(MESSAGE_TYPES)}"
        ) from e


def _checked_body(
    kind: MessageType, claims: Mapping[str, Any], now: int, limits: Limits
) -> MessageBody:
    """The typed body of schema-valid claims, after the rules between fields (consent)."""
    body = kind.to_body(claims["body"])
    if isinstance(body, Referral):
        check_referral_consent(body, audience=claims["aud"], now=now, skew=limits.clock_skew)
    return body


__all__ = [
    "ENVELOPE_MEDIA_TYPE",
    "Message",
    "SealedMessage",
    "new_jti",
    "open_message",
    "seal_message",
]
