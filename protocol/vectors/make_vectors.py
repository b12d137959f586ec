"""Write the JOSE conformance vectors of protocol/vectors/ from the fixed keys in keys.json.

Run from the repository root: ``python protocol/vectors/make_vectors.py``.
Signatures are deterministic (Ed25519), encryption is not (fresh ephemeral keys
and IVs), so re-running rewrites the sealed tokens; any run's output is valid.
Negative vectors are built by hand where the library would refuse to build them
(other algorithms, tampered bytes), with raw ``cryptography`` signing.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from exchange_node.protocol import _jose, capacity, entity, envelope, statements  # noqa: E402
from exchange_node.protocol.keys import NodeKey, import_jwk  # noqa: E402
from exchange_node.protocol.limits import DEFAULT_LIMITS  # noqa: E402

NOW = 1_798_761_600  # 2027-01-01T00:00:00Z
SKEW = DEFAULT_LIMITS.clock_skew
NODES = json.loads((HERE / "keys.json").read_text())["nodes"]


def key(node: str, which: str = "signing_key") -> NodeKey:
    use = "enc" if which == "encryption_key" else "sig"
    return import_jwk(NODES[node][which], use, private=True)  # type: ignore[arg-type]


def entity_id(node: str) -> str:
    return str(NODES[node]["entity_id"])


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_jws(header: dict[str, Any], claims: dict[str, Any], signer: NodeKey | None) -> str:
    """A compact JWS signed with raw Ed25519 over exactly these header and payload bytes."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(_jose.encode_json(claims))}"
    signature = b"" if signer is None else signer.ed25519_private().sign(signing_input.encode())
    return f"{signing_input}.{b64(signature)}"


def tamper(token: str, part: int) -> str:
    """Flip one bit in the middle of one part of a compact serialization."""
    parts = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(parts[part] + "=" * (-len(parts[part]) % 4)))
    raw[len(raw) // 2] ^= 0x01
    parts[part] = b64(bytes(raw))
    return ".".join(parts)


def decoded(token: str) -> dict[str, Any]:
    header, payload, _ = token.split(".")
    return {
        "header": json.loads(_jose.b64url_decode(header)),
        "claims": json.loads(_jose.b64url_decode(payload)),
    }


def valid(
    name: str, description: str, token: str, now: int, inputs: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "description": description,
        "token": token,
        "now": now,
        **inputs,
        "expected": {"valid": True, **extra},
    }


def invalid(
    name: str,
    description: str,
    token: str | None,
    now: int,
    inputs: dict[str, Any],
    error: str,
    **extra: Any,
) -> dict[str, Any]:
    vector = {
        "name": name,
        "description": description,
        "token": token,
        "now": now,
        **inputs,
        "expected": {"valid": False, "error": error},
    }
    vector.update(extra)
    return vector


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

SERVICE = {
    "service": {
        "id": "7d1b0c2e-6a43-4f0e-9b6a-3f2d1c0b9a87",
        "name": "Youth sexual health drop-in",
        "status": "active",
        "description": "Confidential, affirming sexual health care for people aged 13 to 25.",
        "languages": [{"id": "1f0c", "name": "Arabic", "code": "ar"}],
    },
    "capacity": {
        "status": "capacity",
        "accepting_referrals": True,
        "wait_days": 3,
        "intake_fields": ["preferred_name", "phone", "pronouns", "preferred_language"],
        "verified_at": "2026-12-31T16:00:00Z",
        "updated_at": "2026-12-31T16:05:00Z",
    },
}


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


# --- Sealed messages ----------------------------------------------------------

CONSENT = {
    "consent_id": "c6f1e9a0-5b7d-4c1e-8f3a-2d9b0e4c7a11",
    "given_by": "self",
    "recipient": "https://clinic.example",
    "service_id": SERVICE["service"]["id"],
    "data_categories": ["identity", "contact", "gender_identity", "language"],
    "purpose": "Referral to the youth sexual health drop-in, and follow-up on its outcome.",
    "method": "verbal",
    "captured_by": "staff-0042",
    "captured_at": "2026-12-31T22:10:00Z",
    "expires_at": "2027-03-31T00:00:00Z",
}
REFERRAL = {
    "referral_id": "4a8e2f10-9c3b-4d6e-a1f7-0b5c8d2e6f93",
    "service_id": SERVICE["service"]["id"],
    "capacity_version": 42,
    "person": {
        "preferred_name": "Sam",
        "phone": "+44 7700 900123",
        "pronouns": "they/them",
        "preferred_language": "ar",
    },
    "consent": CONSENT,
    "safe_contact": {
        "channels": ["sms", "phone-call"],
        "windows": [
            {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "15:30", "end": "18:00"}
        ],
        "time_zone": "Europe/London",
        "voicemail_allowed": False,
        "may_name_organization": False,
        "do_not_disclose": ["gender identity", "the name of the referring network"],
        "notes": "Shares a phone with family; text first and wait for a reply.",
    },
}
BODIES = {
    "referral": REFERRAL,
    "referral-status": {
        "referral_id": REFERRAL["referral_id"],
        "status": "rejected",
        "sequence": 2,
        "changed_at": "2027-01-01T00:00:00Z",
        "reason": {"code": "no-capacity"},
        "note": "Please try again after 10 January.",
    },
    "consent-withdrawal": {
        "referral_id": REFERRAL["referral_id"],
        "consent_id": CONSENT["consent_id"],
        "withdrawn_at": "2027-01-01T00:00:00Z",
    },
    "deletion-receipt": {
        "referral_id": REFERRAL["referral_id"],
        "consent_id": CONSENT["consent_id"],
        "withdrawal_jti": "Qm9ndXNXaXRoZHJhd2FsSnRp",
        "deleted_at": "2027-01-01T00:00:00Z",
    },
}
# Who sends each type: the community network refers; the clinic answers.
ROUTES = {
    "referral": ("community", "clinic"),
    "referral-status": ("clinic", "community"),
    "consent-withdrawal": ("community", "clinic"),
    "deletion-receipt": ("clinic", "community"),
}


def seal(kind: str, sender: str, receiver: str, body: dict[str, Any], **kw: Any) -> str:
    return envelope.seal_message(
        kind,
        body,
        issuer=entity_id(sender),
        audience=kw.pop("audience", entity_id(receiver)),
        signing_key=kw.pop("signing_key", key(sender)),
        recipient_key=key(receiver, "encryption_key").public(),
        now=NOW,
        **kw,
    ).token


def seal_raw(claims: dict[str, Any], header: dict[str, Any], signer: NodeKey, receiver: str) -> str:
    """Seal a hand-built inner JWS, for negatives the library refuses to build."""
    return _jose.encrypt_compact(
        raw_jws(header, claims, signer), key(receiver, "encryption_key").public()
    )


def open_inputs(sender: str, receiver: str) -> dict[str, Any]:
    return {"sender": sender, "receiver": receiver}


def inner(token: str, receiver: str) -> str:
    return _jose.decrypt_compact(
        token, {k.kid: k for k in [key(receiver, "encryption_key")]}, DEFAULT_LIMITS
    )


def message_vectors() -> list[dict[str, Any]]:
    vectors = []
    for kind, body in BODIES.items():
        sender, receiver = ROUTES[kind]
        token = seal(kind, sender, receiver, body)
        nested = inner(token, receiver)
        vectors.append(
            valid(
                f"{kind}-valid",
                f"A {kind} message from {sender} to {receiver}.",
                token,
                NOW + 5,
                open_inputs(sender, receiver),
                message_type=kind,
                inner_jws=nested,
                **decoded(nested),
            )
        )
    token = seal("referral", "community", "clinic", REFERRAL)
    nested = inner(token, "clinic")
    claims = decoded(nested)["claims"]
    header = decoded(nested)["header"]
    io = open_inputs("community", "clinic")
    vectors += [
        invalid(
            "tampered-ciphertext",
            "One bit of the JWE ciphertext flipped.",
            tamper(token, 3),
            NOW,
            io,
            "decryption_failed",
        ),
        invalid(
            "tampered-tag",
            "One bit of the JWE authentication tag flipped.",
            tamper(token, 4),
            NOW,
            io,
            "decryption_failed",
        ),
        invalid(
            "wrong-recipient",
            "Sealed to the school's key, delivered to the clinic.",
            seal("referral", "community", "school", REFERRAL, audience=entity_id("clinic")),
            NOW,
            io,
            "decryption_failed",
        ),
        invalid(
            "tampered-signature",
            "A JWE around an inner JWS whose signature has one bit flipped.",
            _jose.encrypt_compact(tamper(nested, 2), key("clinic", "encryption_key").public()),
            NOW,
            io,
            "bad_signature",
        ),
        invalid(
            "wrong-signer",
            "Signed by the school's key, expected from the community network.",
            seal("referral", "community", "clinic", REFERRAL, signing_key=key("school")),
            NOW,
            io,
            "untrusted_key",
        ),
        invalid(
            "wrong-issuer",
            "Signed by the community network's key but naming the school as issuer.",
            seal_raw(dict(claims, iss=entity_id("school")), header, key("community"), "clinic"),
            NOW,
            io,
            "wrong_issuer",
        ),
        invalid(
            "wrong-audience",
            "Addressed to the school, encrypted to the clinic's key.",
            seal_raw(dict(claims, aud=entity_id("school")), header, key("community"), "clinic"),
            NOW,
            io,
            "wrong_audience",
        ),
        invalid(
            "expired",
            "Opened after exp plus the allowed skew.",
            token,
            claims["exp"] + SKEW + 1,
            io,
            "expired",
        ),
        invalid(
            "not-yet-valid",
            "Opened before iat minus the allowed skew.",
            token,
            NOW - SKEW - 1,
            io,
            "not_yet_valid",
        ),
        invalid(
            "lifetime-too-long",
            "exp more than an hour after iat.",
            seal_raw(dict(claims, exp=NOW + 7200), header, key("community"), "clinic"),
            NOW,
            io,
            "invalid_claim",
        ),
        invalid(
            "missing-jti",
            "No jti claim.",
            seal_raw(
                {k: v for k, v in claims.items() if k != "jti"}, header, key("community"), "clinic"
            ),
            NOW,
            io,
            "missing_claim",
        ),
        invalid(
            "alg-none",
            "An inner JWS with alg none.",
            _jose.encrypt_compact(
                raw_jws(dict(header, alg="none"), claims, None),
                key("clinic", "encryption_key").public(),
            ),
            NOW,
            io,
            "unsupported_algorithm",
        ),
        invalid(
            "wrong-typ",
            "An inner JWS typed as an entity statement.",
            seal_raw(claims, dict(header, typ="entity-statement+jwt"), key("community"), "clinic"),
            NOW,
            io,
            "wrong_type",
        ),
        invalid(
            "consent-mismatch",
            "Pronouns sent without consent to the gender_identity category.",
            seal_raw(
                dict(
                    claims,
                    body=dict(
                        REFERRAL,
                        consent=dict(CONSENT, data_categories=["identity", "contact", "language"]),
                    ),
                ),
                header,
                key("community"),
                "clinic",
            ),
            NOW,
            io,
            "consent_mismatch",
        ),
        invalid(
            "unknown-body-member",
            "A body member outside the schema (bodies are closed).",
            seal_raw(
                dict(claims, body=dict(REFERRAL, religion="x")), header, key("community"), "clinic"
            ),
            NOW,
            io,
            "invalid_body",
        ),
        invalid(
            "jwe-dir",
            "A JWE using direct key agreement (ECDH-ES) instead of ECDH-ES+A256KW.",
            _replace_jwe_header(token, alg="ECDH-ES"),
            NOW,
            io,
            "unsupported_algorithm",
        ),
        invalid(
            "oversized",
            "Longer than the 256 KiB envelope limit; refused before parsing.",
            None,
            NOW,
            io,
            "too_large",
            token_fill={"char": "A", "length": DEFAULT_LIMITS.max_envelope_bytes + 1},
        ),
    ]
    return vectors


def _replace_jwe_header(token: str, **members: str) -> str:
    head, rest = token.split(".", 1)
    header = json.loads(_jose.b64url_decode(head))
    header.update(members)
    return b64(json.dumps(header).encode()) + "." + rest


# --- Signed statements --------------------------------------------------------


def statement_vectors() -> list[dict[str, Any]]:
    sealed = seal("referral", "community", "clinic", REFERRAL)
    message_jti = decoded(inner(sealed, "clinic"))["claims"]["jti"]
    receipt = statements.issue_receipt(
        envelope=sealed,
        message_jti=message_jti,
        issuer=entity_id("clinic"),
        audience=entity_id("community"),
        signing_key=key("clinic"),
        now=NOW,
        jti="UmVjZWlwdEp0aTAwMDAwMQ",
    )
    receipt_inputs = {
        "kind": "receipt",
        "issuer": "clinic",
        "audience": "community",
        "envelope": sealed,
        "message_jti": message_jti,
    }
    request = statements.sign_peering_request(
        issuer=entity_id("school"),
        audience=entity_id("community"),
        signing_key=key("school"),
        now=NOW,
        message="Eastfield Secondary would like to exchange referrals.",
    )
    peering_inputs = {"kind": "peering-request", "issuer": "school", "audience": "community"}
    return [
        valid(
            "receipt-valid",
            "The clinic's receipt for a referral envelope.",
            receipt,
            NOW + 1,
            receipt_inputs,
            **decoded(receipt),
        ),
        valid(
            "receipt-later",
            "A receipt has no exp: a redelivery a day later gets the same receipt.",
            receipt,
            NOW + 86_400,
            receipt_inputs,
            **decoded(receipt),
        ),
        invalid(
            "receipt-other-envelope",
            "A receipt for other bytes than were sent.",
            receipt,
            NOW + 1,
            dict(receipt_inputs, envelope=tamper(sealed, 3)),
            "invalid_claim",
        ),
        invalid(
            "receipt-forged",
            "A receipt signed by the school in the clinic's name.",
            statements.issue_receipt(
                envelope=sealed,
                message_jti=message_jti,
                issuer=entity_id("clinic"),
                audience=entity_id("community"),
                signing_key=key("school"),
                now=NOW,
            ),
            NOW + 1,
            receipt_inputs,
            "untrusted_key",
        ),
        valid(
            "peering-request-valid",
            "The school asks the community network to peer.",
            request,
            NOW + 5,
            peering_inputs,
            **decoded(request),
        ),
        invalid(
            "peering-request-wrong-audience",
            "A peering request addressed to another node.",
            request,
            NOW + 5,
            dict(peering_inputs, audience="clinic"),
            "wrong_audience",
        ),
    ]


def main() -> None:
    files = {
        "entity-configuration.json": ("entity-configuration", entity_vectors()),
        "capacity-document.json": ("capacity-document", capacity_vectors()),
        "messages.json": ("message", message_vectors()),
        "statements.json": ("statement", statement_vectors()),
    }
    for name, (kind, vectors) in files.items():
        document = {
            "description": f"Conformance vectors: {kind}. Keys by node name are in keys.json; "
            "see README.md in this folder for how to run them.",
            "kind": kind,
            "vectors": vectors,
        }
        (HERE / name).write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        print(f"{name}: {len(vectors)} vectors")


if __name__ == "__main__":
    main()
