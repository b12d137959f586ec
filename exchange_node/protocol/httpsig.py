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

Not done here: peer lookup (callers use :func:`read_signature` first) and nonce replay.

Signing uses the ``http-message-signatures`` package. Verification of this one fixed
profile builds the signature base (RFC 9421 section 2.5) from the fields already parsed
and checks Ed25519 and the digest directly: every federation request passes here, and the
general-purpose verifier parsed the same fields about 17 times per request, several
times the cost of the signature itself. The package stays the independent oracle in the
tests, which check that both verifiers agree on the vectors and on mutated requests.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import http_sf
from cryptography.exceptions import InvalidSignature
from http_message_signatures import HTTPMessageSigner, MappingKeyResolver
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
#: The exact serialization sign_request produces (RFC 8941 canonical form, this profile).
_CANONICAL_INPUT = re.compile(
    SIGNATURE_LABEL
    + r'=(?P<components>\("@method" "@target-uri"(?: "content-type")? "content-digest"\))'
    + r';created=(?P<created>[0-9]{1,15});keyid="(?P<keyid>[A-Za-z0-9_-]{1,128})"'
    + r';alg="(?P<alg>[a-z0-9-]{1,32})";expires=(?P<expires>[0-9]{1,15})'
    + r';nonce="(?P<nonce>[A-Za-z0-9_-]{1,128})";tag="(?P<tag>[A-Za-z0-9_.-]{1,64})"'
)
_BYTE_MEMBER = re.compile(r"(?P<label>[a-z*][a-z0-9_.*-]*)=:(?P<value>[A-Za-z0-9+/]*={0,2}):")
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
class SignatureFields:
    """A request's ``exchange`` signature fields, parsed and checked against the profile but not
    yet verified: read once, then used to find the signer and to verify."""

    headers: dict[str, str]
    parameters: VerifiedRequest
    components: tuple[str, ...]
    signature: bytes
    #: The ``@signature-params`` value: the member re-serialized in canonical form (RFC 8941).
    signature_params: str

    @property
    def keyid(self) -> str:
        return self.parameters.keyid


@dataclass(frozen=True, slots=True)
class _Message:  # the request as http_message_signatures reads it
    method: str
    url: str
    headers: dict[str, str]


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


def read_signature(
    headers: Mapping[str, str], *, limits: Limits = DEFAULT_LIMITS
) -> SignatureFields:
    """Parse the ``exchange`` signature fields (steps 1 to 4 without time), not verifying them.

    Raises:
        OversizedError: a header value is over ``limits.max_http_header_bytes``.
        SignatureMissingError: no ``exchange`` signature.
        SignatureInvalidError: the signature fields are malformed or break the profile.
    """
    view = _header_view(headers, limits)
    return _parse_signature_input(view, limits)


def read_signature_keyid(headers: Mapping[str, str], *, limits: Limits = DEFAULT_LIMITS) -> str:
    """The ``keyid`` of the ``exchange`` signature, unverified: only to look up the peer.

    Raises:
        the errors of :func:`read_signature`.
    """
    return read_signature(headers, limits=limits).keyid


def verify_request(
    method: str,
    url: str,
    headers: Mapping[str, str] | SignatureFields,
    body: bytes,
    *,
    key: NodeKey,
    now: int,
    limits: Limits = DEFAULT_LIMITS,
) -> VerifiedRequest:
    """Verify the ``exchange`` signature of a request with the signer's ``key``.

    Checks run in the order given in the module docstring. The nonce is not
    checked for replay here; the caller stores it until ``expires`` plus the skew.
    ``headers`` may be the :class:`SignatureFields` already read, to parse them once.

    Raises:
        OversizedError: a header value or the body is over its limit.
        SignatureMissingError: no ``exchange`` signature.
        SignatureInvalidError: malformed, outside the profile, other keyid, or does not verify.
        SignatureNotYetValidError: ``created`` is after ``now`` plus the clock skew.
        SignatureExpiredError: ``expires`` is before ``now`` minus the clock skew.
        DigestMismatchError: Content-Digest missing, malformed or not matching ``body``.
    """
    fields = headers if isinstance(headers, SignatureFields) else None
    if len(body) > limits.max_body_bytes:
        raise OversizedError(f"body is {len(body)} bytes, limit {limits.max_body_bytes}")
    if fields is None:
        fields = read_signature(cast("Mapping[str, str]", headers), limits=limits)
    view, verified, components = fields.headers, fields.parameters, fields.components
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
    digests = _parse_byte_member(view["content-digest"], "sha-256", "Content-Digest")
    if set(digests) != {"sha-256"} or not isinstance(digests["sha-256"][0], bytes):
        raise DigestMismatchError("Content-Digest must hold exactly one sha-256 digest")
    try:
        key.ed25519_public().verify(fields.signature, _signature_base(method, url, fields))
    except InvalidSignature as e:
        raise SignatureInvalidError("signature does not verify") from e
    if not hmac.compare_digest(digests["sha-256"][0], hashlib.sha256(body).digest()):
        raise DigestMismatchError("body does not match the signed Content-Digest")
    return verified


def _signature_base(method: str, url: str, fields: SignatureFields) -> bytes:
    """The RFC 9421 signature base of this profile (section 2.5), built from parsed fields."""
    derived = {"@method": method, "@target-uri": url}
    if method != method.upper() or not _is_visible_ascii(url):
        raise SignatureInvalidError("method must be upper case and the URL visible ASCII")
    lines = []
    for name in fields.components:
        value = derived[name] if name in derived else fields.headers[name].strip(" \t")
        if not _is_visible_ascii(value.replace(" ", "").replace("\t", "")):
            raise SignatureInvalidError(f"{name} holds characters a signature base cannot carry")
        lines.append(f'"{name}": {value}')
    lines.append(f'"@signature-params": {fields.signature_params}')
    return "\n".join(lines).encode("ascii")


def _is_visible_ascii(value: str) -> bool:
    return value.isascii() and value.isprintable() and " " not in value


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


def _parse_signature_input(view: dict[str, str], limits: Limits) -> SignatureFields:
    """Steps 2 to 4 without time: presence, parsing, parameters and covered components."""
    if "signature-input" not in view or "signature" not in view:
        raise SignatureMissingError("request has no Signature-Input and Signature headers")
    inputs, canonical = _parse_signature_input_field(view["signature-input"])
    signatures = _parse_byte_member(view["signature"], SIGNATURE_LABEL, "Signature")
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
    if canonical is None:
        canonical = http_sf.ser({SIGNATURE_LABEL: inputs[SIGNATURE_LABEL]})
    parameters = canonical.removeprefix(SIGNATURE_LABEL + "=")
    return SignatureFields(view, verified, names, signature, parameters)


def _parse_signature_input_field(value: str) -> tuple[dict[str, Any], str | None]:
    """Signature-Input as a dictionary, and the member's canonical text when it is canonical.

    The canonical form this profile produces is read with one regular expression (which
    only matches canonical RFC 8941 text); anything else (other labels, parameter order,
    spacing) goes to the full parser, and its canonical text is made by serializing.
    """
    match = _CANONICAL_INPUT.fullmatch(value)
    if match is None:
        return _parse_dictionary(value, "Signature-Input"), None
    names = [name.strip('"') for name in match["components"][1:-1].split(" ")]
    params: dict[str, Any] = {
        "created": int(match["created"]),
        "keyid": match["keyid"],
        "alg": match["alg"],
        "expires": int(match["expires"]),
        "nonce": match["nonce"],
        "tag": match["tag"],
    }
    return {SIGNATURE_LABEL: ([(name, {}) for name in names], params)}, value


def _parse_byte_member(value: str, label: str, field: str) -> dict[str, Any]:
    """A dictionary field whose usual form is one byte-sequence member, ``label=:base64:``.

    That form is read with one regular expression (the general parser walks base64 one
    character at a time); any other form goes to the full RFC 8941 parser.
    """
    match = _BYTE_MEMBER.fullmatch(value.strip(" "))
    if match is None or match["label"] != label:
        return _parse_dictionary(value, field)
    try:
        return {label: (base64.b64decode(match["value"], validate=True), {})}
    except binascii.Error:
        return _parse_dictionary(value, field)


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
    "SignatureFields",
    "VerifiedRequest",
    "read_signature",
    "read_signature_keyid",
    "sign_request",
    "verify_request",
]
