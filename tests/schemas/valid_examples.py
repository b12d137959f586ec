"""Valid claims for every wire schema, built by hand: typical, minimal, at the limits, extended.

Data only, no tests. Each builder returns a fresh document, so a test may change it;
``BUILT`` maps each schema file to its ``(id, claims)`` examples.
"""

from __future__ import annotations

from typing import Any

from exchange_node.protocol import capacity, entity, wire
from exchange_node.protocol.intake import DATA_CATEGORIES, INTAKE_FIELDS
from exchange_node.protocol.keys import import_jwk
from tests.schemas.variants import variant

NOW = 1_798_761_600
COMMUNITY, CLINIC = "https://community.example", "https://clinic.example"
SIGNING_KEY = {
    "kty": "OKP",
    "crv": "Ed25519",
    "x": "JE6eVzUtCQcLv_QjB_Pud0SK8qhyb6InrLnnVhcW9Vs",
    "kid": "rTsDQ7bUQm7T_7V1V8XRsLOvpMJdo8j1Z8yCJWCxZGc",
    "use": "sig",
    "alg": "Ed25519",
}
NEXT_SIGNING_KEY = {
    **SIGNING_KEY,
    "x": "Gd-xpwObFjNi7Xo6zvdgRPSMK7gG0sE3AGid8VcvpYk",
    "kid": "m68elWjHtGMXzibsuf_96a3qf4UP2Mh7I0gF6yOGCa4",
}
ENCRYPTION_KEY = {
    "kty": "OKP",
    "crv": "X25519",
    "x": "ZzC-hKhY0XBiX5ZLGwiajkVm-8NvuOkJGOO4hdkpdyc",
    "kid": "mnURbw-cvrsTCozS1tEQfCP5yCdj1EMRt_u7LC3yVIw",
    "use": "enc",
    "alg": "ECDH-ES+A256KW",
}
SERVICE_ID = "7d1b0c2e-6a43-4f0e-9b6a-3f2d1c0b9a87"
REFERRAL_ID = "4a8e2f10-9c3b-4d6e-a1f7-0b5c8d2e6f93"
CONSENT_ID = "c6f1e9a0-5b7d-4c1e-8f3a-2d9b0e4c7a11"
JTI = "Qm9ndXNXaXRoZHJhd2FsSnRp"
LONGEST_LANGUAGE_TAG = "abc-12345678-12345678-12345678-1234"  # 35 characters
LONGEST_TIME_ZONE = "A" * 30 + "/" + "B" * 30 + "/CC"  # 64 characters


def entity_configuration() -> dict[str, Any]:
    return {
        "iss": CLINIC,
        "sub": CLINIC,
        "iat": NOW,
        "exp": NOW + 86_400,
        "jwks": {"keys": [SIGNING_KEY, NEXT_SIGNING_KEY]},
        "metadata": {
            "exchange_node": {
                "organization_name": "Northside Health Clinic",
                "organization_kind": "clinic",
                "capacity_endpoint": CLINIC + "/federation/v1/capacity",
                "inbox_endpoint": CLINIC + "/federation/v1/inbox",
                "peering_endpoint": CLINIC + "/federation/v1/peering-requests",
                "jwks": {"keys": [ENCRYPTION_KEY]},
                "languages": ["en", "ar-EG"],
                "protocol_versions": ["1"],
            }
        },
    }


def entity_configuration_at_limits() -> dict[str, Any]:
    claims = entity_configuration()
    node = claims["metadata"]["exchange_node"]
    claims.update(iat=0, exp=253_402_300_799, jwks={"keys": [SIGNING_KEY] * 8})
    node.update(
        organization_name="N" * 200,
        capacity_endpoint="https://" + "c" * 504,
        languages=[f"x{chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(49)]
        + [LONGEST_LANGUAGE_TAG],
        protocol_versions=["1", "2", "3", "4", "5", "6", "7", "999"],
    )
    node["jwks"]["keys"] = [ENCRYPTION_KEY] * 8
    return claims


def entity_configuration_from_builder() -> dict[str, Any]:
    return entity.build_entity_configuration_claims(
        entity_id=COMMUNITY,
        organization_name="Rainbow Youth Network",
        organization_kind="community-network",
        signing_keys=[import_jwk(SIGNING_KEY, "sig")],
        encryption_keys=[import_jwk(ENCRYPTION_KEY, "enc")],
        languages=["en"],
        now=NOW,
    )


def capacity_entry() -> dict[str, Any]:
    return {
        "service": {
            "id": SERVICE_ID,
            "name": "Youth sexual health drop-in",
            "status": "active",
            "description": "Confidential, affirming sexual health care.",
            "languages": [{"id": "1f0c", "name": "Arabic", "code": "ar"}],
        },
        "capacity": {
            "status": "capacity",
            "accepting_referrals": True,
            "wait_days": 3,
            "notes": "Drop-in on weekday afternoons.",
            "intake_fields": ["preferred_name", "phone", "pronouns", "preferred_language"],
            "verified_at": "2026-12-31T16:00:00Z",
            "updated_at": "2026-12-31T16:05:00.5Z",
        },
    }


def capacity_document() -> dict[str, Any]:
    minimal = {
        "service": {"id": "s.2~x:y", "name": "Housing advice", "status": "temporarily closed"},
        "capacity": {
            "status": "waitlist",
            "accepting_referrals": False,
            "notes": "",
            "intake_fields": [],
            "updated_at": "2027-01-01T00:00:00Z",
        },
    }
    return {
        "iss": CLINIC,
        "iat": NOW,
        "exp": NOW + 3_600,
        "version": 42,
        "services": [capacity_entry(), minimal],
    }


def capacity_document_at_limits() -> dict[str, Any]:
    entry = capacity_entry()
    entry["service"].update(id="a" * 128, name="S" * 500, status="defunct")
    entry["capacity"].update(
        status="additional-assessment-required",
        wait_days=3_650,
        notes="n" * 1000,
        intake_fields=list(INTAKE_FIELDS),
        updated_at="2027-01-01T00:00:00.123456Z",
    )
    return {"iss": CLINIC, "iat": NOW, "exp": NOW + 1, "version": 2**53 - 1, "services": [entry]}


def capacity_document_from_builder() -> dict[str, Any]:
    return capacity.build_capacity_claims(
        issuer=CLINIC, version=1, services=[capacity_entry()], now=NOW
    )


def message(body: dict[str, Any], *, iss: str = COMMUNITY, aud: str = CLINIC) -> dict[str, Any]:
    return {"iss": iss, "aud": aud, "iat": NOW, "exp": NOW + 3_600, "jti": JTI, "body": body}


def consent() -> dict[str, Any]:
    return {
        "consent_id": CONSENT_ID,
        "given_by": "self",
        "recipient": CLINIC,
        "service_id": SERVICE_ID,
        "data_categories": ["identity", "contact", "gender_identity", "language"],
        "purpose": "Referral to the youth sexual health drop-in, and follow-up on its outcome.",
        "method": "verbal",
        "captured_by": "staff-0042",
        "captured_at": "2026-12-31T22:10:00Z",
        "expires_at": "2027-03-31T00:00:00Z",
    }


def referral() -> dict[str, Any]:
    return message(
        {
            "referral_id": REFERRAL_ID,
            "service_id": SERVICE_ID,
            "capacity_version": 42,
            "person": {"preferred_name": "Sam", "phone": "+44 7700 900123", "pronouns": "they"},
            "consent": consent(),
            "safe_contact": {
                "channels": ["sms", "phone-call"],
                "windows": [{"days": ["mon", "tue", "fri"], "start": "15:30", "end": "18:00"}],
                "time_zone": "Europe/London",
                "voicemail_allowed": False,
                "may_name_organization": False,
                "do_not_disclose": ["gender identity", "the referring network"],
                "notes": "Shares a phone with family; text first.",
            },
            "override": {"reason": "Urgent: the person has nowhere to stay tonight."},
        }
    )


def referral_minimal() -> dict[str, Any]:
    claims = referral()
    claims["body"] = {
        "referral_id": "r",
        "service_id": SERVICE_ID,
        "person": {},
        "consent": dict(consent(), data_categories=[]),
        "safe_contact": {
            "channels": ["via-referrer"],
            "voicemail_allowed": True,
            "may_name_organization": True,
        },
    }
    return claims


def referral_at_limits() -> dict[str, Any]:
    claims = referral()
    body = claims["body"]
    body["person"] = {name: "p" * length for name, (_, length) in INTAKE_FIELDS.items()}
    body["consent"]["data_categories"] = list(DATA_CATEGORIES)
    body["capacity_version"] = 2**53 - 1
    body["safe_contact"].update(
        channels=["phone-call", "sms", "email", "post", "in-person", "via-referrer"],
        windows=[{"days": list(wire.WEEKDAYS), "start": "00:00", "end": "23:59"}] * 14,
        time_zone=LONGEST_TIME_ZONE,
        do_not_disclose=["d" * 200] * 20,
        notes="n" * 1000,
    )
    body["consent"].update(purpose="p" * 500, captured_by="c" * 128, recipient="r" * 512)
    body["override"]["reason"] = "o" * 500
    claims.update(jti="J" * 128, iss="https://" + "i" * 504)
    return claims


def referral_status(status: str, reason: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "referral_id": REFERRAL_ID,
        "status": status,
        "sequence": 2,
        "changed_at": "2027-01-01T00:00:00Z",
    }
    if reason is not None:
        body["reason"] = reason
    return message(body, iss=CLINIC, aud=COMMUNITY)


def consent_withdrawal() -> dict[str, Any]:
    return message(
        {
            "referral_id": REFERRAL_ID,
            "consent_id": CONSENT_ID,
            "withdrawn_at": "2027-01-01T00:00:00Z",
        }
    )


def deletion_receipt() -> dict[str, Any]:
    body = {
        "referral_id": REFERRAL_ID,
        "consent_id": CONSENT_ID,
        "withdrawal_jti": JTI,
        "deleted_at": "2027-01-01T00:00:01.000001Z",
    }
    return message(body, iss=CLINIC, aud=COMMUNITY)


def receipt() -> dict[str, Any]:
    return {
        "iss": CLINIC,
        "aud": COMMUNITY,
        "iat": NOW,
        "jti": "UmVjZWlwdEp0aTAwMDAwMQ",
        "message_jti": JTI,
        "envelope_sha256": "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU",
    }


def peering_request(**extra: Any) -> dict[str, Any]:
    claims = {"iss": COMMUNITY, "aud": CLINIC, "iat": NOW, "exp": NOW + 600, "jti": JTI}
    return {**claims, **extra}


def _status_examples() -> list[tuple[str, dict[str, Any]]]:
    examples = [(status, referral_status(status)) for status in ("accepted", "entered-in-error")]
    examples += [
        ("rejected", referral_status("rejected", {"code": "no-capacity"})),
        ("cancelled", referral_status("cancelled", {"code": "person-declined", "text": "t"})),
        ("failed-other", referral_status("failed", {"code": "other", "text": "x" * 500})),
        ("completed-reason", referral_status("completed", {"code": "other", "text": "Done."})),
    ]
    on_hold = referral_status("on-hold")
    on_hold["body"].update(note="n" * 1000, sequence=2**31 - 1, changed_at="2027-01-01T00:00:00.1Z")
    in_progress = referral_status("in-progress")
    in_progress["body"].update(note="", sequence=1)
    return [*examples, ("on-hold-limits", on_hold), ("in-progress-empty-note", in_progress)]


def extended_entity_configuration() -> dict[str, Any]:
    """Members a later minor version or a federation might add: ignored, not refused."""
    claims = entity_configuration()
    claims["trust_marks"] = []
    claims["authority_hints"] = ["https://federation.example"]
    claims["metadata"]["federation_entity"] = {"organization_name": "Northside Health Clinic"}
    claims["metadata"]["exchange_node"]["protocol_versions"] = ["1", "1.1"]
    claims["metadata"]["exchange_node"]["logo_uri"] = "https://clinic.example/logo.png"
    return claims


def extended_capacity_document() -> dict[str, Any]:
    claims = capacity_document()
    claims["next_update"] = NOW + 3600
    claims["services"][0]["eligibility"] = {}
    claims["services"][0]["capacity"]["beds"] = 3
    return claims


def built_examples() -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Valid claims for every schema, each with a short id."""
    integral_float = entity_configuration()
    integral_float["iat"] = float(NOW)  # JSON has one number type: 1798761600.0 is an integer.
    return {
        "entity-configuration.schema.json": [
            ("typical", entity_configuration()),
            ("limits", entity_configuration_at_limits()),
            ("builder", entity_configuration_from_builder()),
            ("integral-float", integral_float),
            # Open: unknown claims and other entity types are ignored (OpenID Federation).
            ("extended", extended_entity_configuration()),
        ],
        "capacity-document.schema.json": [
            ("typical", capacity_document()),
            ("limits", capacity_document_at_limits()),
            ("no-services", dict(capacity_document(), services=[])),
            ("builder", capacity_document_from_builder()),
            ("extended", extended_capacity_document()),
        ],
        "referral.schema.json": [
            ("typical", referral()),
            ("minimal", referral_minimal()),
            ("limits", referral_at_limits()),
            # Unknown top-level claims are ignored; the body stays closed.
            ("extra-claim", dict(referral(), nbf=NOW)),
        ],
        "referral-status.schema.json": _status_examples(),
        "consent-withdrawal.schema.json": [
            ("typical", consent_withdrawal()),
            ("limits", variant(consent_withdrawal(), "body.consent_id", "C" * 128)),
        ],
        "deletion-receipt.schema.json": [
            ("typical", deletion_receipt()),
            ("limits", variant(deletion_receipt(), "body.withdrawal_jti", "w" * 128)),
            ("shortest-jti", variant(deletion_receipt(), "body.withdrawal_jti", "w" * 16)),
        ],
        "receipt.schema.json": [
            ("typical", receipt()),
            ("limits", dict(receipt(), iat=0, jti="-" * 16, message_jti="_" * 128)),
            ("extra-claim", dict(receipt(), exp=NOW + 60)),
        ],
        "peering-request.schema.json": [
            ("no-message", peering_request()),
            ("empty-message", peering_request(message="")),
            ("long-message", peering_request(message="m" * 500)),
            ("extra-claim", peering_request(jwks={"keys": [SIGNING_KEY]})),
        ],
    }


BUILT = built_examples()
