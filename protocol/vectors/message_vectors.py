"""Conformance vectors of what nodes send each other: sealed messages and signed statements.

``message_vectors`` for messages.json (JWE around JWS, one valid message per type and
the ways opening one fails) and ``statement_vectors`` for statements.json (receipts and
peering requests). Encryption is randomized, so the sealed tokens differ on every run.
"""

from __future__ import annotations

from typing import Any

from vector_data import BODIES, CONSENT, REFERRAL, ROUTES
from vector_tokens import (
    NOW,
    SKEW,
    decoded,
    entity_id,
    inner,
    invalid,
    key,
    raw_jws,
    replace_jwe_header,
    seal,
    seal_raw,
    tamper,
    valid,
)

from exchange_node.protocol import _jose, statements
from exchange_node.protocol.limits import DEFAULT_LIMITS

# --- Sealed messages ----------------------------------------------------------


def open_inputs(sender: str, receiver: str) -> dict[str, Any]:
    return {"sender": sender, "receiver": receiver}


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
            replace_jwe_header(token, alg="ECDH-ES"),
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
