"""Compact JWS and JWE with the protocol's fixed algorithms, caps and error mapping.

The only place that calls ``joserfc``. Every token is size-checked and its
protected header parsed strictly here *before* any cryptography runs; every
``joserfc`` failure leaves as one of :mod:`exchange_node.protocol.errors`.
Callers get verified bytes back and parse claims themselves.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from joserfc import jwe, jws
from joserfc.errors import BadSignatureError as JoseBadSignatureError
from joserfc.errors import JoseError
from joserfc.jwe import JWERegistry
from joserfc.jws import JWSRegistry

from exchange_node.protocol.errors import (
    BadSignatureError,
    DecryptionError,
    KeyFormatError,
    MalformedError,
    OversizedError,
    UnsupportedAlgorithmError,
    UntrustedKeyError,
    WrongTypeError,
)
from exchange_node.protocol.keys import NodeKey
from exchange_node.protocol.limits import (
    JWE_ALGORITHMS,
    JWE_CONTENT_ALGORITHM,
    JWE_KEY_ALGORITHM,
    JWS_ALGORITHMS,
    Limits,
)

_B64URL = re.compile(r"[A-Za-z0-9_-]*")
#: Header members a JWS of this protocol may carry; anything else (crit, jku, x5u...) is refused.
_JWS_HEADER_MEMBERS = frozenset({"alg", "typ", "kid"})
_JWE_HEADER_MEMBERS = frozenset({"alg", "enc", "kid", "epk", "cty", "typ", "apu", "apv"})
NESTED_JWT_CTY = "JWT"


@dataclass(frozen=True, slots=True)
class CompactJWS:
    """A compact JWS whose size, structure and protected header passed the checks, read once;
    its signature is not verified yet."""

    text: str
    header: dict[str, Any]
    parts: tuple[str, str, str]

    def unverified_claims(self, what: str) -> dict[str, Any]:
        """The payload as a JSON object, before any signature check (self-signed documents
        need their own keys out of it; nothing else may trust it)."""
        return decode_json_object(b64url_decode(self.parts[1]), what)


@dataclass(frozen=True, slots=True)
class VerifiedJWS:
    """A JWS whose signature held: its header, the verified payload bytes, the key used and
    the token's text (trimmed)."""

    header: dict[str, Any]
    payload: bytes
    key: NodeKey
    text: str


def encode_json(value: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON, the serialization used for every signed payload."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode()


def sign_compact(payload: bytes, key: NodeKey, typ: str) -> str:
    """Sign ``payload`` with ``key`` as a compact JWS of type ``typ``."""
    if not key.is_private or key.use != "sig":
        raise KeyFormatError("signing needs a private Ed25519 key")
    header = {"alg": JWS_ALGORITHMS[0], "typ": typ, "kid": key.kid}
    try:
        return jws.serialize_compact(header, payload, key.okp, algorithms=JWS_ALGORITHMS)
    except JoseError as e:  # pragma: no cover - our own header and key are always valid
        raise KeyFormatError(f"cannot sign: {e.error}") from e


def parse_jws(token: str | bytes, typ: str | Collection[str], limits: Limits) -> CompactJWS:
    """Size-check a compact JWS, then parse and check its header (alg, typ, kid).

    ``typ`` is the one type expected here, or the collection of types accepted.

    Raises:
        OversizedError, MalformedError, UnsupportedAlgorithmError, WrongTypeError.
    """
    text = _as_text(token, limits.max_token_bytes)
    parts = _split(text, 3)
    header = _decode_header(parts[0], limits)
    if not _B64URL.fullmatch(parts[2]):
        raise MalformedError("JWS signature is not base64url")
    if header.get("alg") not in JWS_ALGORITHMS:
        raise UnsupportedAlgorithmError(
            f"JWS alg {header.get('alg')!r} is not allowed; only {', '.join(JWS_ALGORITHMS)}"
        )
    _check_members(header, _JWS_HEADER_MEMBERS)
    accepted = (typ,) if isinstance(typ, str) else typ
    if not isinstance(header.get("typ"), str) or header["typ"] not in accepted:
        raise WrongTypeError(f"expected typ {' or '.join(accepted)!r}, got {header.get('typ')!r}")
    if not isinstance(header.get("kid"), str):
        raise MalformedError("JWS header has no 'kid'")
    return CompactJWS(text, header, (parts[0], parts[1], parts[2]))


def verify_compact(
    token: str | bytes | CompactJWS,
    keys: Mapping[str, NodeKey],
    typ: str | Collection[str],
    limits: Limits,
) -> VerifiedJWS:
    """Verify a compact JWS of type ``typ`` (or one of several) signed by one of ``keys``.

    ``token`` may be the :class:`CompactJWS` already parsed, so it is read only once.

    Raises:
        UntrustedKeyError: the ``kid`` is not among ``keys``.
        BadSignatureError: the signature does not verify.
        and every error of :func:`parse_jws`.
    """
    parsed = token if isinstance(token, CompactJWS) else parse_jws(token, typ, limits)
    header, text = parsed.header, parsed.text
    key = keys.get(header["kid"])
    if key is None or key.use != "sig":
        raise UntrustedKeyError(f"signed with key {header['kid']!r}, which is not trusted here")
    registry = _jws_registry(limits)
    try:
        verified = jws.deserialize_compact(text, key.okp, registry=registry)
    except JoseBadSignatureError as e:
        raise BadSignatureError(f"signature by key {key.kid} does not verify") from e
    except JoseError as e:
        raise MalformedError(f"JWS cannot be read: {e.error}") from e
    except (ValueError, TypeError) as e:
        raise MalformedError("JWS cannot be read") from e
    return VerifiedJWS(header, bytes(verified.payload), key, text)


def encrypt_compact(plaintext: str, recipient: NodeKey) -> str:
    """Encrypt a nested JWT to ``recipient`` (X25519) as a compact JWE."""
    if recipient.use != "enc":
        raise KeyFormatError("encryption needs an X25519 key")
    header = {
        "alg": JWE_KEY_ALGORITHM,
        "enc": JWE_CONTENT_ALGORITHM,
        "kid": recipient.kid,
        "cty": NESTED_JWT_CTY,
    }
    try:
        return jwe.encrypt_compact(header, plaintext, recipient.okp, algorithms=JWE_ALGORITHMS)
    except JoseError as e:  # pragma: no cover - our own header and key are always valid
        raise KeyFormatError(f"cannot encrypt: {e.error}") from e


def decrypt_compact(token: str | bytes, keys: Mapping[str, NodeKey], limits: Limits) -> str:
    """Decrypt a compact JWE addressed (by ``kid``) to one of our X25519 ``keys``.

    Returns the nested compact JWS as text.

    Raises:
        OversizedError, MalformedError, UnsupportedAlgorithmError,
        DecryptionError: addressed to another key, or the ciphertext was tampered with.
    """
    text = _as_text(token, limits.max_envelope_bytes)
    parts = _split(text, 5)
    header = _decode_header(parts[0], limits)
    if header.get("alg") != JWE_KEY_ALGORITHM or header.get("enc") != JWE_CONTENT_ALGORITHM:
        raise UnsupportedAlgorithmError(
            f"JWE alg/enc {header.get('alg')!r}/{header.get('enc')!r} not allowed; "
            f"only {JWE_KEY_ALGORITHM}/{JWE_CONTENT_ALGORITHM}"
        )
    _check_members(header, _JWE_HEADER_MEMBERS)
    if header.get("cty") != NESTED_JWT_CTY:
        raise MalformedError(f"JWE cty must be {NESTED_JWT_CTY!r}")
    kid = header.get("kid")
    key = keys.get(kid) if isinstance(kid, str) else None
    if key is None or not key.is_private:
        raise DecryptionError("envelope is not addressed to an encryption key of this node")
    registry = _jwe_registry(limits)
    try:
        result = jwe.decrypt_compact(text, key.okp, registry=registry)
    except JoseError as e:
        raise DecryptionError(f"envelope cannot be decrypted: {e.error}") from e
    except (ValueError, TypeError, KeyError) as e:  # not base64url, or an invalid epk
        raise MalformedError("envelope parts cannot be read") from e
    try:
        return bytes(result.plaintext or b"").decode("ascii")
    except UnicodeDecodeError as e:
        raise MalformedError("envelope does not hold a compact JWS") from e


@functools.cache
def _jws_registry(limits: Limits) -> JWSRegistry:
    """joserfc's JWS registry with our allow-list and caps (one per Limits, reused)."""
    registry = JWSRegistry(algorithms=list(JWS_ALGORITHMS))
    registry.max_header_length = limits.max_header_bytes
    registry.max_payload_length = limits.max_token_bytes
    return registry


@functools.cache
def _jwe_registry(limits: Limits) -> JWERegistry:
    """joserfc's JWE registry with our allow-list and caps (one per Limits, reused)."""
    registry = JWERegistry(algorithms=list(JWE_ALGORITHMS))
    registry.max_protected_header_length = limits.max_header_bytes
    registry.max_ciphertext_length = limits.max_envelope_bytes
    return registry


def decode_json_object(data: bytes, what: str) -> dict[str, Any]:
    """Parse verified bytes as a JSON object, or raise :class:`MalformedError`."""
    try:
        value = _JSON_DECODER.decode(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise MalformedError(f"{what} is not valid JSON without repeated member names") from e
    if not isinstance(value, dict):
        raise MalformedError(f"{what} is not a JSON object")
    return value


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, unless a member name repeats (parsers disagree on which one wins)."""
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("repeated member name")
    return result


#: One decoder for every JOSE header and payload (json.loads would build one per call).
_JSON_DECODER = json.JSONDecoder(object_pairs_hook=_refuse_duplicates)


def b64url_decode(value: str) -> bytes:
    """Strict unpadded base64url, as JOSE uses it."""
    if not _B64URL.fullmatch(value) or len(value) % 4 == 1:
        raise MalformedError("not unpadded base64url")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as e:  # pragma: no cover - regex above excludes these
        raise MalformedError("not base64url") from e


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _as_text(token: str | bytes, max_bytes: int) -> str:
    if not isinstance(token, str | bytes):
        raise MalformedError("token must be text")
    if len(token) > max_bytes:
        raise OversizedError(f"token is {len(token)} bytes, the limit is {max_bytes}")
    text = token.decode("latin-1") if isinstance(token, bytes) else token
    if not text.isascii():
        raise MalformedError("token is not ASCII")
    return text.strip()


def _split(text: str, count: int) -> list[str]:
    """Split a compact serialization. Only the header is decoded here; joserfc's own
    decoder is strict base64url (alphabet, no padding, canonical end) for the rest."""
    parts = text.split(".")
    if len(parts) != count:
        raise MalformedError(f"compact serialization must have {count} parts, has {len(parts)}")
    return parts


def _decode_header(part: str, limits: Limits) -> dict[str, Any]:
    if len(part) > limits.max_header_bytes * 4 // 3 + 4:
        raise OversizedError(f"protected header exceeds {limits.max_header_bytes} bytes")
    return decode_json_object(b64url_decode(part), "protected header")


def _check_members(header: Mapping[str, Any], allowed: frozenset[str]) -> None:
    extra = sorted(set(header) - allowed)
    if extra:
        raise MalformedError(f"protected header holds members this protocol does not use: {extra}")
