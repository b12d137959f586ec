"""A node's self-signed identity document: an OpenID Federation entity configuration.

Served at ``/.well-known/openid-federation``. Trust in a peer starts from a
thumbprint its administrator was told out of band; :func:`verify_entity_configuration`
accepts a document only when it is signed by a key whose RFC 7638 thumbprint
the caller already trusts, taken from the document's own ``jwks``. The same
rule carries trust across a key rotation: a document signed by a trusted key
vouches for the new keys it lists. This module fetches and stores nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from exchange_node.protocol import _claims, _jose
from exchange_node.protocol._schemas import validate_claims
from exchange_node.protocol.errors import InvalidClaimError, RollbackError, UntrustedKeyError
from exchange_node.protocol.keys import NodeKey, export_jwks, import_jwks
from exchange_node.protocol.limits import DEFAULT_LIMITS, Limits
from exchange_node.protocol.wire import ORGANIZATION_KINDS, EntityConfigurationSchema, load_claims

ENTITY_CONFIGURATION_TYP = "entity-statement+jwt"
ENTITY_CONFIGURATION_MEDIA_TYPE = "application/entity-statement+jwt"
WELL_KNOWN_PATH = "/.well-known/openid-federation"
METADATA_TYPE = "exchange_node"
PROTOCOL_VERSION = "1"
CAPACITY_PATH = "/federation/v1/capacity"
INBOX_PATH = "/federation/v1/inbox"
PEERING_PATH = "/federation/v1/peering-requests"


@dataclass(frozen=True)
class EntityConfiguration:
    """A verified entity configuration: who a node is and how to reach it."""

    entity_id: str
    issued_at: int
    expires_at: int
    signed_by: str
    signing_keys: tuple[NodeKey, ...]
    encryption_keys: tuple[NodeKey, ...]
    organization_name: str
    organization_kind: str
    capacity_endpoint: str
    inbox_endpoint: str
    peering_endpoint: str
    languages: tuple[str, ...]
    protocol_versions: tuple[str, ...]
    token: str

    @property
    def signing_thumbprints(self) -> frozenset[str]:
        return frozenset(key.kid for key in self.signing_keys)


def build_entity_configuration_claims(
    *,
    entity_id: str,
    organization_name: str,
    organization_kind: str,
    signing_keys: Sequence[NodeKey],
    encryption_keys: Sequence[NodeKey],
    languages: Sequence[str],
    now: int,
    lifetime: int | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> dict[str, Any]:
    """The claims of an entity configuration (public keys only), validated against the schema.

    ``signing_keys`` lists every signing key peers should trust: the current one,
    a pre-published next key, and an old key kept verifiable during an overlap.
    """
    _claims.check_entity_id(entity_id)
    if organization_kind not in ORGANIZATION_KINDS:
        raise InvalidClaimError(f"organization kind must be one of {', '.join(ORGANIZATION_KINDS)}")
    claims: dict[str, Any] = {
        "iss": entity_id,
        "sub": entity_id,
        "iat": now,
        "exp": now + (lifetime or limits.entity_configuration_lifetime),
        "jwks": export_jwks(key.public() for key in signing_keys),
        "metadata": {
            METADATA_TYPE: {
                "organization_name": organization_name,
                "organization_kind": organization_kind,
                "capacity_endpoint": entity_id + CAPACITY_PATH,
                "inbox_endpoint": entity_id + INBOX_PATH,
                "peering_endpoint": entity_id + PEERING_PATH,
                "jwks": export_jwks(key.public() for key in encryption_keys),
                "languages": list(languages),
                "protocol_versions": [PROTOCOL_VERSION],
            }
        },
    }
    load_claims(EntityConfigurationSchema, claims, "entity configuration")
    return claims


def sign_entity_configuration(claims: dict[str, Any], signing_key: NodeKey) -> str:
    """Sign claims from :func:`build_entity_configuration_claims` with one of the listed keys.

    Raises:
        UntrustedKeyError: ``signing_key`` is not among the keys the claims publish.
    """
    published = {jwk["kid"] for jwk in claims["jwks"]["keys"]}
    if signing_key.kid not in published:
        raise UntrustedKeyError("the signing key must be listed in the document's own jwks")
    return _jose.sign_compact(_jose.encode_json(claims), signing_key, ENTITY_CONFIGURATION_TYP)


def verify_entity_configuration(
    token: str | bytes,
    *,
    entity_id: str,
    trusted_thumbprints: Collection[str],
    now: int,
    held_issued_at: int | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> EntityConfiguration:
    """Verify a node's entity configuration against the thumbprints the caller trusts.

    The signing key is looked up in the document's own ``jwks`` by its computed
    thumbprint; only a key whose thumbprint is in ``trusted_thumbprints`` counts.
    For a first contact that is the pinned thumbprint; after that, the signing
    keys of the last verified document (which is how rotation carries trust).
    ``held_issued_at`` is the ``iat`` of that document: an older one is refused, so
    a replayed document cannot bring back a key the node has since retired.

    Raises:
        UntrustedKeyError: not signed by a trusted key (unpinned, or a rotation
            that does not chain back); the caller needs an administrator to re-pin.
        RollbackError: issued before the document the caller already holds.
        BadSignatureError, WrongIssuerError, ExpiredError, NotYetValidError,
        InvalidClaimError, MissingClaimError, SchemaError, MalformedError,
        OversizedError, UnsupportedAlgorithmError, WrongTypeError, KeyFormatError.
    """
    if not trusted_thumbprints:
        raise UntrustedKeyError("no trusted thumbprint given: refusing to trust any key")
    parsed = _jose.parse_jws(token, ENTITY_CONFIGURATION_TYP, limits)
    header = parsed.header
    if header["kid"] not in trusted_thumbprints:
        raise UntrustedKeyError(
            f"signed with key {header['kid']!r}, which is not pinned for {entity_id}"
        )
    unverified = parsed.unverified_claims("entity configuration")
    candidates = import_jwks(unverified.get("jwks"), "sig", limits=limits)
    keys = {key.kid: key for key in candidates if key.kid in trusted_thumbprints}
    verified = _jose.verify_compact(parsed, keys, ENTITY_CONFIGURATION_TYP, limits)
    claims = _jose.decode_json_object(verified.payload, "entity configuration")
    _claims.check_issuer(claims, entity_id)
    if _claims.require_str(claims, "sub") != entity_id:
        raise InvalidClaimError("'sub' must equal 'iss' in an entity configuration")
    lifetime = _claims.check_lifetime(
        claims,
        now=now,
        skew=limits.clock_skew,
        max_lifetime=limits.max_entity_configuration_lifetime,
    )
    validate_claims("entity-configuration.schema.json", claims, "entity configuration")
    if held_issued_at is not None and lifetime.issued_at < held_issued_at:
        raise RollbackError(
            f"issued at {lifetime.issued_at}, before the document already held ({held_issued_at})"
        )
    return _to_entity_configuration(claims, lifetime, verified.key.kid, verified.text, limits)


def _to_entity_configuration(
    claims: dict[str, Any], lifetime: _claims.Lifetime, kid: str, token: str, limits: Limits
) -> EntityConfiguration:
    entity_id = claims["iss"]
    node = claims["metadata"][METADATA_TYPE]
    endpoints = {
        name: _claims.check_same_origin(node[name], entity_id, name)
        for name in ("capacity_endpoint", "inbox_endpoint", "peering_endpoint")
    }
    return EntityConfiguration(
        entity_id=entity_id,
        issued_at=lifetime.issued_at,
        expires_at=lifetime.expires_at,
        signed_by=kid,
        signing_keys=tuple(import_jwks(claims["jwks"], "sig", limits=limits)),
        encryption_keys=tuple(import_jwks(node["jwks"], "enc", limits=limits)),
        organization_name=node["organization_name"],
        organization_kind=node["organization_kind"],
        languages=tuple(node["languages"]),
        protocol_versions=tuple(node["protocol_versions"]),
        token=token,
        **endpoints,
    )


__all__ = [
    "CAPACITY_PATH",
    "ENTITY_CONFIGURATION_MEDIA_TYPE",
    "ENTITY_CONFIGURATION_TYP",
    "INBOX_PATH",
    "METADATA_TYPE",
    "PEERING_PATH",
    "PROTOCOL_VERSION",
    "WELL_KNOWN_PATH",
    "EntityConfiguration",
    "build_entity_configuration_claims",
    "sign_entity_configuration",
    "verify_entity_configuration",
]
