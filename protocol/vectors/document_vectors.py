"""Conformance vectors of the signed documents a node publishes.

``entity_vectors`` for entity-configuration.json (entity statements, key pinning and
rotation) and ``capacity_vectors`` for capacity-document.json. Both are deterministic:
Ed25519 signatures over fixed claims at a fixed time.
"""

from __future__ import annotations

from typing import Any

from vector_data import SERVICE
from vector_tokens import (
    NODES,
    NOW,
    SKEW,
    b64,
    decoded,
    entity_id,
    invalid,
    key,
    raw_jws,
    tamper,
    valid,
)

from exchange_node.protocol import capacity, entity
from exchange_node.protocol.keys import NodeKey
from exchange_node.protocol.limits import DEFAULT_LIMITS

# --- Entity configuration -----------------------------------------------------


def entity_claims(node: str, signing: list[NodeKey]) -> dict[str, Any]:
    return entity.build_entity_configuration_claims(
        entity_id=entity_id(node),
        organization_name=NODES[node]["organization_name"],
        organization_kind=NODES[node]["organization_kind"],
        signing_keys=signing,
        encryption_keys=[key(node, "encryption_key")],
        languages=["en", "ar"],
        now=NOW,
    )


def entity_vectors() -> list[dict[str, Any]]:
    current, upcoming = key("clinic"), key("clinic", "next_signing_key")
    claims = entity_claims("clinic", [current, upcoming])
    token = entity.sign_entity_configuration(claims, current)
    rotated = entity.sign_entity_configuration(claims, upcoming)
    pin = {"entity_id": entity_id("clinic"), "trusted_thumbprints": [current.kid]}
    after_rotation = {
        "entity_id": entity_id("clinic"),
        "trusted_thumbprints": [current.kid, upcoming.kid],
    }
    stranger = key("school")
    forged_claims = dict(claims, jwks={"keys": [*claims["jwks"]["keys"], stranger.public_jwk()]})
    return [
        valid(
            "pinned",
            "Signed by the pinned key; lists a pre-published next key.",
            token,
            NOW + 30,
            pin,
            **decoded(token),
        ),
        valid(
            "rotated",
            "Signed by the next key, which the verifier learned from the previous document.",
            rotated,
            NOW + 30,
            after_rotation,
            **decoded(rotated),
        ),
        invalid(
            "unpinned-key",
            "Signed by the next key before the verifier has seen it published.",
            rotated,
            NOW + 30,
            pin,
            "untrusted_key",
        ),
        invalid(
            "key-substitution",
            "Signed by another node's key added to the clinic's jwks.",
            entity.sign_entity_configuration(forged_claims, stranger),
            NOW + 30,
            pin,
            "untrusted_key",
        ),
        invalid(
            "tampered-signature",
            "One bit of the signature flipped.",
            tamper(token, 2),
            NOW + 30,
            pin,
            "bad_signature",
        ),
        invalid(
            "tampered-payload",
            "One bit of the payload flipped.",
            tamper(token, 1),
            NOW + 30,
            pin,
            "bad_signature",
        ),
        invalid(
            "expired",
            "Checked after exp plus the allowed skew.",
            token,
            claims["exp"] + SKEW + 1,
            pin,
            "expired",
        ),
        invalid(
            "not-yet-valid",
            "Checked before iat minus the allowed skew.",
            token,
            NOW - SKEW - 1,
            pin,
            "not_yet_valid",
        ),
        invalid(
            "wrong-entity",
            "A valid clinic document fetched as if it were the school's.",
            token,
            NOW,
            {"entity_id": entity_id("school"), "trusted_thumbprints": [current.kid]},
            "wrong_issuer",
        ),
        invalid(
            "alg-none",
            "Unsigned token with alg none.",
            raw_jws(
                {"alg": "none", "typ": "entity-statement+jwt", "kid": current.kid}, claims, None
            ),
            NOW,
            pin,
            "unsupported_algorithm",
        ),
        invalid(
            "alg-eddsa",
            "Polymorphic EdDSA instead of the fully specified Ed25519.",
            raw_jws(
                {"alg": "EdDSA", "typ": "entity-statement+jwt", "kid": current.kid}, claims, current
            ),
            NOW,
            pin,
            "unsupported_algorithm",
        ),
        invalid(
            "wrong-typ",
            "A valid signature over a token typed as a capacity document.",
            raw_jws(
                {"alg": "Ed25519", "typ": "exchange-capacity+jwt", "kid": current.kid},
                claims,
                current,
            ),
            NOW,
            pin,
            "wrong_type",
        ),
        invalid(
            "missing-claim",
            "No exp claim.",
            raw_jws(
                {"alg": "Ed25519", "typ": "entity-statement+jwt", "kid": current.kid},
                {k: v for k, v in claims.items() if k != "exp"},
                current,
            ),
            NOW,
            pin,
            "missing_claim",
        ),
        invalid(
            "truncated",
            "Cut off in the middle of the payload.",
            token[: len(token) // 2],
            NOW,
            pin,
            "malformed",
        ),
        invalid(
            "bad-base64",
            "A header part holding characters outside base64url.",
            "eyJ*bGci." + token.split(".", 1)[1],
            NOW,
            pin,
            "malformed",
        ),
        invalid(
            "bad-json",
            "A header that is base64url of something that is not JSON.",
            b64(b"{not json") + "." + token.split(".", 1)[1],
            NOW,
            pin,
            "malformed",
        ),
        invalid(
            "oversized",
            "Longer than the 1 MiB token limit; refused before parsing.",
            None,
            NOW,
            pin,
            "too_large",
            token_fill={"char": "A", "length": DEFAULT_LIMITS.max_token_bytes + 1},
        ),
    ]


# --- Capacity document --------------------------------------------------------


def capacity_vectors() -> list[dict[str, Any]]:
    signer = key("clinic")
    claims = capacity.build_capacity_claims(
        issuer=entity_id("clinic"), version=42, services=[SERVICE], now=NOW
    )
    token = capacity.sign_capacity_document(claims, signer)
    inputs = {"issuer": entity_id("clinic"), "issuer_keys": ["clinic"]}
    return [
        valid(
            "current",
            "A capacity document with one service.",
            token,
            NOW + 60,
            inputs,
            **decoded(token),
        ),
        valid(
            "same-version",
            "The version already held is accepted again.",
            token,
            NOW + 60,
            {**inputs, "held_version": 42},
            **decoded(token),
        ),
        invalid(
            "rolled-back",
            "Version 42 when version 43 is already held.",
            token,
            NOW + 60,
            {**inputs, "held_version": 43},
            "rollback",
        ),
        invalid(
            "expired",
            "Authentic but past exp: show the held services as stale.",
            token,
            claims["exp"] + SKEW + 1,
            inputs,
            "expired",
        ),
        invalid(
            "forged",
            "Signed by the school's key in the clinic's name.",
            capacity.sign_capacity_document(claims, key("school")),
            NOW,
            inputs,
            "untrusted_key",
        ),
        invalid(
            "tampered-payload",
            "One bit of the payload flipped.",
            tamper(token, 1),
            NOW,
            inputs,
            "bad_signature",
        ),
        invalid(
            "wrong-issuer",
            "Signed by the clinic's key but naming the school as issuer.",
            capacity.sign_capacity_document(dict(claims, iss=entity_id("school")), signer),
            NOW,
            inputs,
            "wrong_issuer",
        ),
        invalid(
            "bad-status",
            "A capacity status outside the four codes.",
            capacity.sign_capacity_document(
                dict(
                    claims,
                    services=[{**SERVICE, "capacity": {**SERVICE["capacity"], "status": "open"}}],
                ),
                signer,
            ),
            NOW,
            inputs,
            "invalid_body",
        ),
        invalid(
            "alg-hs256",
            "An HMAC algorithm; refused whatever the key.",
            raw_jws(
                {"alg": "HS256", "typ": "exchange-capacity+jwt", "kid": signer.kid}, claims, None
            ),
            NOW,
            inputs,
            "unsupported_algorithm",
        ),
    ]
