"""RFC 9421 HTTP message signatures on federation requests: the ``exchange`` profile.

One signature, label ``exchange``, algorithm ``ed25519`` (RFC 9421 section 3.3.6) with the
node's signing key, ``keyid`` its RFC 7638 thumbprint. Parameters ``created``, ``keyid``,
``alg``, ``expires``, ``nonce`` and ``tag="exchange-node"`` are all required, no others are
allowed, and ``0 < expires - created <= max_http_signature_window``. Covered, in order:
``"@method"``, ``"@target-uri"``, ``"content-type"`` (required with a non-empty body) and
``"content-digest"``: a ``sha-256`` Content-Digest (RFC 9530) is sent even for no body.

:func:`verify_request` checks in this fixed order and raises the first failure:

1. size: a header value or the body over its limit (:class:`OversizedError`), before parsing;
2. presence: Signature-Input, Signature, an ``exchange`` member (:class:`SignatureMissingError`);
3. parse: both fields as Structured Field Dictionaries (:class:`SignatureInvalidError`);
4. params (:class:`SignatureInvalidError`, a disallowed ``alg`` included), then time:
   ``created``/``expires`` against ``now`` give or take ``limits.clock_skew``
   (:class:`SignatureNotYetValidError`, :class:`SignatureExpiredError`);
5. keyid: the thumbprint of the key the caller looked up (:class:`SignatureInvalidError`);
6. signature (:class:`SignatureInvalidError`); a missing Content-Digest is reported here as
   :class:`DigestMismatchError`, since the signature base cannot be built without it;
7. digest: the signed Content-Digest against the body bytes (:class:`DigestMismatchError`).

Not done here: peer lookup (callers use :func:`read_signature_keyid` first) and nonce replay.
"""

from __future__ import annotations

import datetime
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import http_sf
from http_message_signatures import HTTPMessageSigner, HTTPMessageVerifier, MappingKeyResolver
from http_message_signatures.algorithms import ED25519
from http_message_signatures.exceptions import HTTPMessageSignaturesException

from exchange_node.protocol.errors import (
    DigestMismatchError,
    MalformedError,
    OversizedError,
    SignatureExpiredError,
    SignatureInvalidError,
    SignatureMissingError,
    SignatureNotYetValidError,
)
from exchange_node.protocol.keys import NodeKey
from exchange_node.protocol.limits import DEFAULT_LIMITS, HTTP_SIGNATURE_ALGORITHM, Limits

SIGNATURE_LABEL = "exchange"
SIGNATURE_TAG = "exchange-node"
COVERED_COMPONENTS = ("@method", "@target-uri", "content-type", "content-digest")
COVERED_COMPONENTS_NO_CONTENT_TYPE = ("@method", "@target-uri", "content-digest")
_ALLOWED_COVERAGE = (COVERED_COMPONENTS, COVERED_COMPONENTS_NO_CONTENT_TYPE)
_PARAMETERS = frozenset({"alg", "created", "expires", "keyid", "nonce", "tag"})
_NONCE = re.compile(r"[A-Za-z0-9_-]{22,128}")  # base64url, unpadded, at least 16 bytes
_SIGNATURE_HEADERS = ("Content-Digest", "Signature-Input", "Signature")
_LIBRARY_ERRORS = (HTTPMessageSignaturesException, ValueError, TypeError)


@dataclass(frozen=True, slots=True)
class VerifiedRequest:
    """What a verified signature vouches for; ``nonce`` goes to the caller's replay store."""

    keyid: str
    created: int
    expires: int
    nonce: str


@dataclass(frozen=True, slots=True)
class _Message:  # the request as http_message_signatures reads it
    method: str
    url: str
    headers: dict[str, str]


class _CallerClockVerifier(HTTPMessageVerifier):
    def validate_created_and_expires(self, sig_input: Any, max_age: Any = None) -> None:
        """Skip the library's wall-clock check: :func:`verify_request` checks against ``now``."""


def sign_request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    key: NodeKey,
    now: int,
    nonce: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> dict[str, str]:
    """Sign a request; return Content-Digest, Signature-Input and Signature to add.

    The caller merges the returned headers into its request, replacing any it had.
    ``nonce`` defaults to 16 random bytes, base64url-encoded.

    Raises:
        KeyFormatError: ``key`` is not a private Ed25519 signing key.
        MalformedError: a non-empty body without Content-Type, a bad nonce, method or URL.
    """
    view = _header_view(headers, limits)
    for name in _SIGNATURE_HEADERS:
        view.pop(name.lower(), None)
    if body and "content-type" not in view:
        raise MalformedError("a request with a body must have a Content-Type header")
    nonce = secrets.token_urlsafe(16) if nonce is None else nonce
    if not _NONCE.fullmatch(nonce):
        raise MalformedError("nonce must be 22 to 128 base64url characters without padding")
    components = COVERED_COMPONENTS if body else COVERED_COMPONENTS_NO_CONTENT_TYPE
    message, expires = _Message(method, url, view), now + limits.http_signature_window
    resolver = MappingKeyResolver(public_keys={}, private_keys={key.kid: key.ed25519_private()})
    signer = HTTPMessageSigner(signature_algorithm=ED25519, key_resolver=resolver)
    try:
        signer.sign(
            message,
            key_id=key.kid,
            created=datetime.datetime.fromtimestamp(now, tz=datetime.UTC),
            expires=datetime.datetime.fromtimestamp(expires, tz=datetime.UTC),
            nonce=nonce,
            label=SIGNATURE_LABEL,
            tag=SIGNATURE_TAG,
            covered_component_ids=components,
            body=body,
        )
    except _LIBRARY_ERRORS as e:
        raise MalformedError(f"cannot sign request: {e}") from e
    return {name: message.headers[name] for name in _SIGNATURE_HEADERS}


def read_signature_keyid(headers: Mapping[str, str], *, limits: Limits = DEFAULT_LIMITS) -> str:
    """The ``keyid`` of the ``exchange`` signature, unverified: only to look up the peer.

    Raises:
        OversizedError: a header value is over ``limits.max_http_header_bytes``.
        SignatureMissingError: no ``exchange`` signature.
        SignatureInvalidError: the signature fields are malformed or break the profile.
    """
    view = _header_view(headers, limits)
    return _parse_signature_input(view, limits)[0].keyid


def verify_request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    key: NodeKey,
    now: int,
    limits: Limits = DEFAULT_LIMITS,
) -> VerifiedRequest:
    """Verify the ``exchange`` signature of a request with the signer's ``key``.

    Checks run in the order given in the module docstring. The nonce is not
    checked for replay here; the caller stores it until ``expires`` plus the skew.

    Raises:
        OversizedError: a header value or the body is over its limit.
        SignatureMissingError: no ``exchange`` signature.
        SignatureInvalidError: malformed, outside the profile, other keyid, or does not verify.
        SignatureNotYetValidError: ``created`` is after ``now`` plus the clock skew.
        SignatureExpiredError: ``expires`` is before ``now`` minus the clock skew.
        DigestMismatchError: Content-Digest missing, malformed or not matching ``body``.
    """
    view = _header_view(headers, limits)
    if len(body) > limits.max_body_bytes:
        raise OversizedError(f"body is {len(body)} bytes, limit {limits.max_body_bytes}")
    verified, components = _parse_signature_input(view, limits)
    if "content-type" in components and "content-type" not in view:
        raise SignatureInvalidError("signature covers Content-Type but the request has none")
    if body and "content-type" not in components:
        raise SignatureInvalidError("a request with a body must sign its Content-Type")
    if verified.created > now + limits.clock_skew:
        raise SignatureNotYetValidError(f"created {verified.created - now} s after now")
    if verified.expires < now - limits.clock_skew:
        raise SignatureExpiredError(f"expired {now - verified.expires} s before now")
    if verified.keyid != key.kid:
        raise SignatureInvalidError(f"signed with key {verified.keyid}, expected {key.kid}")
    if "content-digest" not in view:
        raise DigestMismatchError("request has no Content-Digest header")
    if set(_parse_dictionary(view["content-digest"], "Content-Digest")) != {"sha-256"}:
        raise DigestMismatchError("Content-Digest must hold exactly one sha-256 digest")
    message = _Message(method, url, view)
    resolver = MappingKeyResolver(public_keys={key.kid: key.ed25519_public()}, private_keys={})
    verifier = _CallerClockVerifier(signature_algorithm=ED25519, key_resolver=resolver)
    try:
        results = verifier.verify(
            message,
            max_age=None,
            expect_tag=SIGNATURE_TAG,
            expect_label=SIGNATURE_LABEL,
            require_components=components,
        )
    except _LIBRARY_ERRORS as e:
        raise SignatureInvalidError(f"signature does not verify: {e}") from e
    try:
        verifier.verify_body(message, results, body)
    except _LIBRARY_ERRORS as e:
        raise DigestMismatchError(f"body does not match the signed Content-Digest: {e}") from e
    return verified


def _header_view(headers: Mapping[str, str], limits: Limits) -> dict[str, str]:
    """Lower-case names, a name repeated in another case joined with ", "; sizes checked."""
    view: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise MalformedError("header names and values must be strings")
        lowered = name.lower()
        view[lowered] = f"{view[lowered]}, {value}" if lowered in view else value
        size = len(view[lowered].encode("utf-8", "surrogatepass"))
        if size > limits.max_http_header_bytes:
            raise OversizedError(f"{name} is {size} bytes, limit {limits.max_http_header_bytes}")
    return view


def _parse_signature_input(
    view: Mapping[str, str], limits: Limits
) -> tuple[VerifiedRequest, tuple[str, ...]]:
    """Steps 2 to 4 without time: presence, parsing, parameters and covered components."""
    if "signature-input" not in view or "signature" not in view:
        raise SignatureMissingError("request has no Signature-Input and Signature headers")
    inputs = _parse_dictionary(view["signature-input"], "Signature-Input")
    signatures = _parse_dictionary(view["signature"], "Signature")
    if SIGNATURE_LABEL not in inputs and SIGNATURE_LABEL not in signatures:
        raise SignatureMissingError(f"request has no {SIGNATURE_LABEL!r} signature")
    if SIGNATURE_LABEL not in inputs or SIGNATURE_LABEL not in signatures:
        raise SignatureInvalidError(f"{SIGNATURE_LABEL!r} is in only one of the two fields")
    components, params = inputs[SIGNATURE_LABEL]
    signature, _ = signatures[SIGNATURE_LABEL]
    if not isinstance(signature, bytes) or not isinstance(components, list):
        raise SignatureInvalidError("Signature must be a byte sequence, Signature-Input a list")
    verified = _check_params(params, limits)
    names = tuple(name for name, item_params in components if type(name) is str and not item_params)
    if len(names) != len(components) or names not in _ALLOWED_COVERAGE:
        raise SignatureInvalidError(f"signature must cover exactly {COVERED_COMPONENTS}")
    return verified, names


def _parse_dictionary(value: str, field: str) -> dict[str, Any]:
    def reject(name: str, context: str) -> None:
        if context == "dictionary":
            raise SignatureInvalidError(f"{field} repeats the label {name!r}")

    try:
        parsed = http_sf.parse(value.encode("ascii"), tltype="dictionary", on_duplicate_key=reject)
    except (ValueError, TypeError) as e:
        raise SignatureInvalidError(f"{field} is not a Structured Field Dictionary") from e
    return cast("dict[str, Any]", parsed)  # tltype="dictionary" always gives a dict


def _check_params(params: Mapping[str, Any], limits: Limits) -> VerifiedRequest:
    """Check the parameter set, their types, tag, alg, window and nonce."""
    keyid = _string_param(params, "keyid")
    created, expires = _integer_param(params, "created"), _integer_param(params, "expires")
    unknown = sorted(set(params) - _PARAMETERS)
    if unknown:
        raise SignatureInvalidError(f"unexpected signature parameters {unknown}")
    if _string_param(params, "tag") != SIGNATURE_TAG:
        raise SignatureInvalidError(f"signature tag must be {SIGNATURE_TAG!r}")
    alg = _string_param(params, "alg")
    if alg != HTTP_SIGNATURE_ALGORITHM:
        raise SignatureInvalidError(f"signature alg {alg!r} not allowed")
    window = expires - created
    if not 0 < window <= limits.max_http_signature_window:
        raise SignatureInvalidError(f"window {window} s, limit {limits.max_http_signature_window}")
    nonce = _string_param(params, "nonce")
    if not _NONCE.fullmatch(nonce):
        raise SignatureInvalidError("nonce must be 22 to 128 base64url characters")
    return VerifiedRequest(keyid, created, expires, nonce)


def _string_param(params: Mapping[str, Any], name: str) -> str:
    value = params.get(name)
    if type(value) is not str or not value:
        raise SignatureInvalidError(f"parameter {name!r} must be a non-empty string")
    return value


def _integer_param(params: Mapping[str, Any], name: str) -> int:
    value = params.get(name)
    if type(value) is not int or value < 0:
        raise SignatureInvalidError(f"parameter {name!r} must be a non-negative integer")
    return value


__all__ = [
    "COVERED_COMPONENTS",
    "COVERED_COMPONENTS_NO_CONTENT_TYPE",
    "SIGNATURE_LABEL",
    "SIGNATURE_TAG",
    "VerifiedRequest",
    "read_signature_keyid",
    "sign_request",
    "verify_request",
]
