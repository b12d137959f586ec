"""The protocol's error hierarchy and its RFC 9457 problem-details shape.

Every failure inside :mod:`exchange_node.protocol` is raised as a subclass of
:class:`ProtocolError`. Each class carries a short, stable ``code`` (part of the
wire protocol: peers see it in problem documents, and the conformance vectors
name it), a human ``title`` and the HTTP status a server answers with.
Third-party exceptions are always wrapped (``raise ... from e``), so a caller
never has to catch a ``ValueError``, ``KeyError`` or a ``joserfc`` error.

This module does not decide *when* to raise; the verifying modules do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

PROBLEM_TYPE_PREFIX = "urn:exchange-node:problem:"
PROBLEM_CONTENT_TYPE = "application/problem+json"


class ProtocolError(Exception):
    """Root of every error raised by the protocol core."""

    code: ClassVar[str] = "protocol_error"
    title: ClassVar[str] = "Protocol error"
    status: ClassVar[int] = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        """The RFC 9457 problem-details object for this error."""
        return problem_details(self.code, self.title, self.status, self.detail, instance)


def problem_details(
    code: str, title: str, status: int, detail: str, instance: str | None = None
) -> dict[str, Any]:
    """Build the one problem-details shape every exchange-node endpoint answers with."""
    problem: dict[str, Any] = {
        "type": PROBLEM_TYPE_PREFIX + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance is not None:
        problem["instance"] = instance
    return problem


# --- Input that cannot be read at all ---------------------------------------


class MalformedError(ProtocolError):
    """Not a well-formed token, JSON document, key or header."""

    code = "malformed"
    title = "Malformed input"


class OversizedError(ProtocolError):
    """Larger than the limit for its kind; refused before parsing."""

    code = "too_large"
    title = "Input too large"
    status = 413


class UnsupportedAlgorithmError(ProtocolError):
    """A JOSE or HTTP-signature algorithm outside the allow-list."""

    code = "unsupported_algorithm"
    title = "Algorithm not allowed"


class KeyFormatError(ProtocolError):
    """A key of the wrong type or curve, or a JWK that does not parse."""

    code = "invalid_key"
    title = "Invalid key"


class PassphraseError(ProtocolError):
    """A stored private key could not be decrypted with the passphrase given."""

    code = "bad_passphrase"
    title = "Wrong passphrase for stored key"


# --- Authenticity and trust --------------------------------------------------


class VerificationError(ProtocolError):
    """Root of the errors that mean: this is not authentic or not trusted."""

    code = "verification_failed"
    title = "Verification failed"
    status = 401


class BadSignatureError(VerificationError):
    """The signature does not verify with the key it names."""

    code = "bad_signature"
    title = "Signature does not verify"


class UntrustedKeyError(VerificationError):
    """Signed by a key that is not pinned or trusted for the expected signer."""

    code = "untrusted_key"
    title = "Signing key not trusted"


class WrongIssuerError(VerificationError):
    """Signed by a trusted key, but the claims name another issuer."""

    code = "wrong_issuer"
    title = "Issuer does not match signer"


class DecryptionError(VerificationError):
    """The envelope cannot be decrypted: tampered, or not for this node."""

    code = "decryption_failed"
    title = "Envelope cannot be decrypted"


# --- Claims ----------------------------------------------------------------------


class ClaimsError(ProtocolError):
    """Root of the errors about a verified token's claims."""

    code = "invalid_claims"
    title = "Invalid claims"


class MissingClaimError(ClaimsError):
    code = "missing_claim"
    title = "Required claim missing"


class InvalidClaimError(ClaimsError):
    code = "invalid_claim"
    title = "Claim has an invalid value"


class ExpiredError(ClaimsError):
    """Authentic, but its ``exp`` has passed (beyond the allowed skew)."""

    code = "expired"
    title = "Expired"


class NotYetValidError(ClaimsError):
    """Authentic, but issued in the future (beyond the allowed skew)."""

    code = "not_yet_valid"
    title = "Not yet valid"


class AudienceError(ClaimsError):
    code = "wrong_audience"
    title = "Not addressed to this node"


class WrongTypeError(ClaimsError):
    """The JOSE ``typ`` is not the one the caller expects here."""

    code = "wrong_type"
    title = "Wrong document or message type"


class RollbackError(ClaimsError):
    """A document older (lower ``version``) than one already held."""

    code = "rollback"
    title = "Version rolled back"
    status = 409


class ReplayError(ClaimsError):
    """A ``jti`` or HTTP-signature nonce seen before. Raised by callers' replay stores."""

    code = "replayed"
    title = "Replayed"
    status = 401


class SchemaError(ProtocolError):
    """A verified body that does not match its schema; ``fields`` says where and why."""

    code = "invalid_body"
    title = "Body does not match its schema"
    status = 422

    def __init__(self, detail: str, fields: Mapping[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.fields: dict[str, Any] = dict(fields or {})

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        problem = super().to_problem(instance)
        problem["errors"] = self.fields
        return problem


class ConsentError(SchemaError):
    """A referral carries data its consent record does not cover."""

    code = "consent_mismatch"
    title = "Data not covered by consent"


class UnrequestedFieldError(SchemaError):
    """A referral carries a field its service did not ask for in its capacity document."""

    code = "field_not_requested"
    title = "Field not requested by the service"


class IllegalTransitionError(ProtocolError):
    """A referral status change the state machine does not allow for this side."""

    code = "illegal_transition"
    title = "Status change not allowed"
    status = 409

    def __init__(self, detail: str, allowed: Iterable[str]) -> None:
        super().__init__(detail)
        self.allowed = tuple(allowed)

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        problem = super().to_problem(instance)
        problem["allowed"] = list(self.allowed)
        return problem


# --- HTTP message signatures -------------------------------------------------


class HTTPSignatureError(VerificationError):
    """Root of the RFC 9421 request-signature failures."""

    code = "signature_invalid"
    title = "Request signature invalid"


class SignatureMissingError(HTTPSignatureError):
    code = "signature_missing"
    title = "Request is not signed"


class SignatureInvalidError(HTTPSignatureError):
    code = "signature_invalid"
    title = "Request signature invalid"


class SignatureExpiredError(HTTPSignatureError):
    code = "signature_expired"
    title = "Request signature expired"


class SignatureNotYetValidError(HTTPSignatureError):
    code = "signature_not_yet_valid"
    title = "Request signature created in the future"


class DigestMismatchError(HTTPSignatureError):
    code = "digest_mismatch"
    title = "Body does not match Content-Digest"


class UnknownSignerError(HTTPSignatureError):
    """The request names a key that belongs to no known peer. Raised by callers."""

    code = "unknown_signer"
    title = "Unknown signer"


__all__ = [
    "PROBLEM_CONTENT_TYPE",
    "PROBLEM_TYPE_PREFIX",
    "AudienceError",
    "BadSignatureError",
    "ClaimsError",
    "ConsentError",
    "DecryptionError",
    "DigestMismatchError",
    "ExpiredError",
    "HTTPSignatureError",
    "IllegalTransitionError",
    "InvalidClaimError",
    "KeyFormatError",
    "MalformedError",
    "MissingClaimError",
    "NotYetValidError",
    "OversizedError",
    "PassphraseError",
    "ProtocolError",
    "ReplayError",
    "RollbackError",
    "SchemaError",
    "SignatureExpiredError",
    "SignatureInvalidError",
    "SignatureMissingError",
    "SignatureNotYetValidError",
    "UnknownSignerError",
    "UnrequestedFieldError",
    "UnsupportedAlgorithmError",
    "UntrustedKeyError",
    "VerificationError",
    "WrongIssuerError",
    "WrongTypeError",
    "problem_details",
]
