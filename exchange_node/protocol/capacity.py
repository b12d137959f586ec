"""The signed capacity document: which services a node offers and whether they can take people now.

A JWS of type ``exchange-capacity+jwt`` with a monotonic ``version``, served to
trusted peers. Verification tells a forged document (bad signature, untrusted
key) apart from an authentic but expired one (:class:`ExpiredError`), and
refuses a ``version`` lower than the one the caller holds (:class:`RollbackError`).
The HSDS records inside are carried as signed; this module neither fetches nor stores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from exchange_node.protocol import _claims, _jose
from exchange_node.protocol._schemas import validate_claims
from exchange_node.protocol.errors import InvalidClaimError, OversizedError, RollbackError
from exchange_node.protocol.keys import NodeKey
from exchange_node.protocol.limits import DEFAULT_LIMITS, Limits
from exchange_node.protocol.messages import parse_timestamp
from exchange_node.protocol.wire import CapacityDocumentSchema, load_claims

CAPACITY_TYP = "exchange-capacity+jwt"
CAPACITY_MEDIA_TYPE = "application/exchange-capacity+jwt"


@dataclass(frozen=True)
class ServiceCapacity:
    """One service as published: its HSDS 3.1 record and its capacity right now."""

    service_id: str
    name: str
    service: Mapping[str, Any]
    status: str
    accepting_referrals: bool
    intake_fields: tuple[str, ...]
    updated_at: str
    wait_days: int | None = None
    notes: str | None = None
    verified_at: str | None = None


@dataclass(frozen=True)
class CapacityDocument:
    issuer: str
    version: int
    issued_at: int
    expires_at: int
    services: tuple[ServiceCapacity, ...]
    signed_by: str
    token: str

    def service(self, service_id: str) -> ServiceCapacity | None:
        return next((entry for entry in self.services if entry.service_id == service_id), None)


def build_capacity_claims(
    *,
    issuer: str,
    version: int,
    services: Sequence[Mapping[str, Any]],
    now: int,
    lifetime: int | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> dict[str, Any]:
    """Claims of a capacity document; each entry is ``{"service": HSDS, "capacity": {...}}``.

    Raises:
        SchemaError: an entry does not match the capacity document schema.
        InvalidClaimError: ``issuer`` is not an entity identifier.
    """
    _claims.check_entity_id(issuer)
    claims = {
        "iss": issuer,
        "iat": now,
        "exp": now + (lifetime or limits.capacity_lifetime),
        "version": version,
        "services": [dict(entry) for entry in services],
    }
    _check_unique_ids(load_claims(CapacityDocumentSchema, claims, "capacity document"))
    return claims


def sign_capacity_document(
    claims: Mapping[str, Any], signing_key: NodeKey, limits: Limits = DEFAULT_LIMITS
) -> str:
    """Sign claims from :func:`build_capacity_claims`.

    Raises:
        OversizedError: the signed document would be larger than peers accept.
    """
    token = _jose.sign_compact(_jose.encode_json(claims), signing_key, CAPACITY_TYP)
    if len(token) > limits.max_capacity_bytes:
        raise OversizedError(
            f"the capacity document would be {len(token):,} bytes, over the "
            f"{limits.max_capacity_bytes:,} peers accept: shorten or remove service records"
        )
    return token


def verify_capacity_document(
    token: str | bytes,
    *,
    issuer: str,
    issuer_keys: Sequence[NodeKey],
    now: int,
    held_version: int | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> CapacityDocument:
    """Verify a peer's capacity document with that peer's trusted signing keys.

    Checks run in this order: size and header, trusted key, signature, issuer,
    lifetime, schema, then version against ``held_version``.

    Raises:
        UntrustedKeyError, BadSignatureError: forged, or not signed by this peer.
        ExpiredError: authentic but past its ``exp``: keep showing what is held, as stale.
        RollbackError: ``version`` is lower than ``held_version``.
        WrongIssuerError, NotYetValidError, InvalidClaimError, MissingClaimError,
        SchemaError, MalformedError, OversizedError, UnsupportedAlgorithmError, WrongTypeError.
    """
    keys = {key.kid: key for key in issuer_keys}
    verified = _jose.verify_compact(token, keys, CAPACITY_TYP, document_limits(limits))
    claims = _jose.decode_json_object(verified.payload, "capacity document")
    _claims.check_issuer(claims, issuer)
    lifetime = _claims.check_lifetime(
        claims, now=now, skew=limits.clock_skew, max_lifetime=limits.max_capacity_lifetime
    )
    if isinstance(claims.get("services"), list) and len(claims["services"]) > limits.max_services:
        raise OversizedError(f"capacity document lists more than {limits.max_services} services")
    validate_claims("capacity-document.schema.json", claims, "capacity document")
    _check_unique_ids(claims)
    version = claims["version"]
    if held_version is not None and version < held_version:
        raise RollbackError(
            f"version {version} is older than the version {held_version} already held"
        )
    return CapacityDocument(
        issuer=issuer,
        version=version,
        issued_at=lifetime.issued_at,
        expires_at=lifetime.expires_at,
        services=tuple(_to_service(entry, n) for n, entry in enumerate(claims["services"])),
        signed_by=verified.key.kid,
        token=verified.text,
    )


def held_services_claim(token: str, limits: Limits = DEFAULT_LIMITS) -> Any:
    """The ``services`` claim of a document this node verified when it stored it.

    For telling a re-signature from a reused version; it does not verify again (the
    document may have expired since).

    Raises:
        MalformedError, OversizedError, UnsupportedAlgorithmError, WrongTypeError: not
        a capacity document at all.
    """
    parsed = _jose.parse_jws(token, CAPACITY_TYP, document_limits(limits))
    return parsed.unverified_claims("capacity")["services"]


def document_limits(limits: Limits) -> Limits:
    """``limits`` with the capacity document's own size cap as the token cap."""
    return replace(limits, max_token_bytes=limits.max_capacity_bytes)


def _check_unique_ids(claims: Mapping[str, Any]) -> None:
    ids = [entry["service"]["id"] for entry in claims["services"]]
    if len(ids) != len(set(ids)):
        raise InvalidClaimError("a capacity document lists the same service id twice")


def _to_service(entry: Mapping[str, Any], index: int) -> ServiceCapacity:
    service, capacity = entry["service"], entry["capacity"]
    for name in ("updated_at", "verified_at"):
        if name in capacity:
            parse_timestamp(capacity[name], f"/services/{index}/capacity/{name}")
    return ServiceCapacity(
        service_id=service["id"],
        name=service["name"],
        service=MappingProxyType(dict(service)),
        status=capacity["status"],
        accepting_referrals=capacity["accepting_referrals"],
        intake_fields=tuple(capacity["intake_fields"]),
        updated_at=capacity["updated_at"],
        wait_days=capacity.get("wait_days"),
        notes=capacity.get("notes"),
        verified_at=capacity.get("verified_at"),
    )


__all__ = [
    "CAPACITY_MEDIA_TYPE",
    "CAPACITY_TYP",
    "CapacityDocument",
    "ServiceCapacity",
    "build_capacity_claims",
    "document_limits",
    "held_services_claim",
    "sign_capacity_document",
    "verify_capacity_document",
]
