"""The JSON Schemas in ``schemas/`` and the marshmallow schemas of ``wire.py`` agree.

Every schema file must be a valid draft 2020-12 schema that loads offline and has the
same members, required members and closed objects as its marshmallow mirror;
hand-built valid examples (and the valid claims of ``protocol/vectors/*.json``, when
present) pass both; hand-built invalid variants fail both; and random mutations of
the valid examples get the same verdict from both. The JSON Schema side is judged by
``jsonschema`` (with ECMA-262 pattern anchors) and, when installed, by ``jsonschema-rs``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, ValidationError, validators
from marshmallow import RAISE, Schema, fields
from referencing import Registry, Resource

try:
    import jsonschema_rs
except ImportError:  # pragma: no cover - the Rust engine is a second opinion, not a need
    jsonschema_rs = None

from exchange_node.protocol import capacity, entity, messages, statements, wire
from exchange_node.protocol.errors import SchemaError
from exchange_node.protocol.intake import DATA_CATEGORIES, INTAKE_FIELDS
from exchange_node.protocol.keys import import_jwk

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_DIR = ROOT / "schemas"
VECTOR_DIR = ROOT / "protocol" / "vectors"
BASE_URI = "https://exchange-node.example/schemas/"
NAMES = sorted(wire.SCHEMA_FILES)

#: The JOSE ``typ`` of each token, to find the schema of a vector's claims.
SCHEMA_BY_TYP = {
    entity.ENTITY_CONFIGURATION_TYP: "entity-configuration.schema.json",
    capacity.CAPACITY_TYP: "capacity-document.schema.json",
    statements.RECEIPT_TYP: "receipt.schema.json",
    statements.PEERING_REQUEST_TYP: "peering-request.schema.json",
    **{kind.typ: f"{name}.schema.json" for name, kind in messages.MESSAGE_TYPES.items()},
}


def _load_schemas() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text()) for path in SCHEMA_DIR.glob("*.schema.json")}


def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    """``pattern`` as JSON Schema defines it (ECMA-262), where ``$`` is the very end.

    ``jsonschema`` runs patterns through Python's ``re``, whose ``$`` also matches
    before a final newline: it would accept ``"r-1\\n"`` as an identifier, which
    ``wire.py``, JavaScript, Go and Rust validators all refuse.
    """
    python_pattern = pattern[:-1] + r"\Z" if pattern.endswith("$") else pattern
    if validator.is_type(instance, "string") and not re.search(python_pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


SCHEMAS = _load_schemas()
REGISTRY: Registry[Any] = Registry().with_resources(
    (schema["$id"], Resource.from_contents(schema)) for schema in SCHEMAS.values()
)
EcmaValidator = validators.extend(Draft202012Validator, {"pattern": _ecma_pattern})
VALIDATORS = {name: EcmaValidator(SCHEMAS[name], registry=REGISTRY) for name in NAMES}


def _rust_validators() -> dict[str, Any]:
    """The same schemas compiled by ``jsonschema-rs``, which the node uses on received claims."""
    if jsonschema_rs is None:
        return {}
    registry = jsonschema_rs.Registry([(schema["$id"], schema) for schema in SCHEMAS.values()])
    return {name: jsonschema_rs.validator_for(SCHEMAS[name], registry=registry) for name in NAMES}


RUST_VALIDATORS = _rust_validators()


def json_schema_errors(name: str, claims: Any) -> list[str]:
    return [error.message for error in VALIDATORS[name].iter_errors(claims)]


def marshmallow_errors(name: str, claims: Any) -> dict[str, Any]:
    try:
        wire.load_claims(wire.SCHEMA_FILES[name], claims, "x")
    except SchemaError as e:
        return e.fields or {"": [str(e)]}
    return {}


def verdicts(name: str, claims: Any) -> dict[str, bool]:
    """Whether each implementation accepts ``claims``."""
    accepted = {
        "jsonschema": VALIDATORS[name].is_valid(claims),
        "marshmallow": not marshmallow_errors(name, claims),
    }
    if RUST_VALIDATORS:
        accepted["jsonschema-rs"] = RUST_VALIDATORS[name].is_valid(claims)
    return accepted


def explain(name: str, claims: Any) -> str:
    return (
        f"jsonschema: {json_schema_errors(name, claims)}, wire: {marshmallow_errors(name, claims)}"
    )


# --- Variants of a document ----------------------------------------------------------

DELETE = object()
JsonPath = tuple[str | int, ...]


def variant(claims: Mapping[str, Any], path: str, value: Any = DELETE) -> dict[str, Any]:
    """A deep copy of ``claims`` with the member at dotted ``path`` replaced (or deleted)."""
    return replaced(claims, _steps(path), value)


def _steps(path: str) -> JsonPath:
    return tuple(int(step) if step.isdigit() else step for step in path.split("."))


def replaced(claims: Mapping[str, Any], steps: JsonPath, value: Any = DELETE) -> dict[str, Any]:
    changed: dict[str, Any] = json.loads(json.dumps(claims))  # a copy that shares nothing
    parent: Any = changed
    for step in steps[:-1]:
        parent = parent[step]
    if value is DELETE:
        del parent[steps[-1]]
    else:
        parent[steps[-1]] = value
    return changed


# --- Valid examples --------------------------------------------------------------------

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


def vector_claims() -> Iterator[tuple[str, str, dict[str, Any], bool]]:
    """(schema name, id, claims, marked valid) for each ``claims`` member in the vectors."""
    for path in sorted(VECTOR_DIR.glob("*.json")):
        yield from _find_claims(json.loads(path.read_text()), path.name)


def _find_claims(node: Any, where: str) -> Iterator[tuple[str, str, dict[str, Any], bool]]:
    if isinstance(node, list):
        for index, item in enumerate(node):
            label = item.get("name") if isinstance(item, dict) else None
            yield from _find_claims(item, f"{where}:{label or index}")
    elif isinstance(node, dict):
        header = node.get("header")
        typ = header.get("typ") if isinstance(header, dict) else None
        if isinstance(node.get("claims"), dict) and typ in SCHEMA_BY_TYP:
            yield SCHEMA_BY_TYP[typ], where, node["claims"], node.get("valid") is True
        for key, value in node.items():
            yield from _find_claims(value, f"{where}/{key}")


BUILT = built_examples()
VECTORS = list(vector_claims())
VALID_EXAMPLES = {
    name: [*BUILT[name], *((f"vector:{id_}", c) for n, id_, c, ok in VECTORS if n == name and ok)]
    for name in NAMES
}


# --- Invalid variants -----------------------------------------------------------------

NODE, SC = "metadata.exchange_node", "body.safe_contact"
CAP, SVC = "services.0.capacity", "services.0.service"
WINDOW = {"days": ["mon"], "start": "09:00", "end": "10:00"}
#: schema file -> (base claims, [(id, dotted path, new value or DELETE)]); each result is invalid.
INVALID: dict[str, tuple[dict[str, Any], list[tuple[str, str, Any]]]] = {
    "entity-configuration.schema.json": (
        entity_configuration(),
        [
            ("missing-iss", "iss", DELETE),
            ("missing-node-jwks", f"{NODE}.jwks", DELETE),
            ("private-key-in-jwk", "jwks.keys.0.d", "A" * 43),
            ("iat-string", "iat", str(NOW)),
            ("iat-bool", "iat", True),
            ("iat-fraction", "iat", NOW + 0.5),
            ("exp-negative", "exp", -1),
            ("exp-after-9999", "exp", 253_402_300_800),
            ("sub-empty", "sub", ""),
            ("iss-too-long", "iss", "https://" + "i" * 505),
            ("name-too-long", f"{NODE}.organization_name", "N" * 201),
            ("kind-unknown", f"{NODE}.organization_kind", "hospital"),
            ("kty-ec", "jwks.keys.0.kty", "EC"),
            ("crv-p256", "jwks.keys.0.crv", "P-256"),
            ("alg-eddsa", "jwks.keys.0.alg", "EdDSA"),
            ("kid-short", "jwks.keys.0.kid", "A" * 42),
            ("kid-newline", "jwks.keys.0.kid", SIGNING_KEY["kid"] + "\n"),
            ("x-padded", "jwks.keys.0.x", "A" * 42 + "="),
            ("no-keys", "jwks.keys", []),
            ("nine-keys", "jwks.keys", [SIGNING_KEY] * 9),
            ("jwks-list", "jwks", [SIGNING_KEY]),
            ("languages-duplicate", f"{NODE}.languages", ["en", "en"]),
            ("languages-empty", f"{NODE}.languages", []),
            (
                "languages-51",
                f"{NODE}.languages",
                [f"x{chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(51)],
            ),
            ("language-36", f"{NODE}.languages.0", LONGEST_LANGUAGE_TAG + "5"),
            ("versions-9", f"{NODE}.protocol_versions", [str(i) for i in range(9)]),
            ("version-1000", f"{NODE}.protocol_versions.0", "1000"),
            ("language-bad", f"{NODE}.languages.0", "english"),
            ("version-duplicate", f"{NODE}.protocol_versions", ["1", "1"]),
            ("metadata-null", "metadata", None),
        ],
    ),
    "capacity-document.schema.json": (
        capacity_document(),
        [
            ("missing-version", "version", DELETE),
            ("version-zero", "version", 0),
            ("version-2-53", "version", 2**53),
            ("version-bool", "version", True),
            ("services-object", "services", {"0": capacity_entry()}),
            ("services-2001", "services", [capacity_document()["services"][1]] * 2001),
            ("missing-capacity", "services.0.capacity", DELETE),
            ("status-open", f"{CAP}.status", "open"),
            ("accepting-string", f"{CAP}.accepting_referrals", "true"),
            ("accepting-int", f"{CAP}.accepting_referrals", 1),
            ("wait-too-long", f"{CAP}.wait_days", 3_651),
            ("wait-negative", f"{CAP}.wait_days", -1),
            ("wait-fraction", f"{CAP}.wait_days", 2.5),
            ("wait-null", f"{CAP}.wait_days", None),
            ("notes-too-long", f"{CAP}.notes", "n" * 1001),
            ("fields-duplicate", f"{CAP}.intake_fields", ["phone", "phone"]),
            ("fields-unknown", f"{CAP}.intake_fields", ["religion"]),
            ("updated-space", f"{CAP}.updated_at", "2027-01-01 00:00:00Z"),
            ("updated-offset", f"{CAP}.updated_at", "2027-01-01T00:00:00+00:00"),
            ("updated-7-digits", f"{CAP}.updated_at", "2027-01-01T00:00:00.1234567Z"),
            ("missing-updated", f"{CAP}.updated_at", DELETE),
            ("service-no-id", f"{SVC}.id", DELETE),
            ("service-id-dash", f"{SVC}.id", "-abc"),
            ("service-id-129", f"{SVC}.id", "a" * 129),
            ("service-name-empty", f"{SVC}.name", ""),
            ("service-name-501", f"{SVC}.name", "S" * 501),
            ("service-status", f"{SVC}.status", "open"),
            ("service-list", SVC, []),
        ],
    ),
    "referral.schema.json": (
        referral(),
        [
            ("missing-person", "body.person", DELETE),
            ("missing-body", "body", DELETE),
            ("body-null", "body", None),
            ("unknown-body-member", "body.religion", "x"),
            ("unknown-person-field", "body.person.religion", "x"),
            ("given-name-101", "body.person.given_name", "g" * 101),
            ("age-empty", "body.person.age", ""),
            ("age-number", "body.person.age", 16),
            ("age-1000", "body.person.age", "1000"),
            ("referral-id-space", "body.referral_id", "a b"),
            # ECMA-262 "$" is the end of the string: no newline may follow a pattern match.
            ("referral-id-newline", "body.referral_id", REFERRAL_ID + "\n"),
            ("capacity-version-0", "body.capacity_version", 0),
            ("capacity-version-bool", "body.capacity_version", True),
            ("categories-duplicate", "body.consent.data_categories", ["contact"] * 2),
            ("category-unknown", "body.consent.data_categories", ["ethnicity"]),
            ("given-by-friend", "body.consent.given_by", "friend"),
            ("method-implied", "body.consent.method", "implied"),
            ("expires-date-only", "body.consent.expires_at", "2027-03-31"),
            ("missing-purpose", "body.consent.purpose", DELETE),
            ("unknown-consent-member", "body.consent.withdrawn", False),
            ("channels-empty", f"{SC}.channels", []),
            ("channels-duplicate", f"{SC}.channels", ["sms", "sms"]),
            ("channel-unknown", f"{SC}.channels", ["whatsapp"]),
            ("window-no-days", f"{SC}.windows.0.days", []),
            ("window-days-duplicate", f"{SC}.windows.0.days", ["mon", "mon"]),
            ("window-day-name", f"{SC}.windows.0.days", ["monday"]),
            ("window-24h", f"{SC}.windows.0.start", "24:00"),
            ("window-one-digit", f"{SC}.windows.0.start", "9:30"),
            ("window-newline", f"{SC}.windows.0.start", "09:30\n"),
            ("window-missing-end", f"{SC}.windows.0.end", DELETE),
            ("windows-15", f"{SC}.windows", [WINDOW] * 15),
            ("time-zone-deep", f"{SC}.time_zone", "Europe/London/Extra/More"),
            ("time-zone-65", f"{SC}.time_zone", LONGEST_TIME_ZONE + "C"),
            ("safe-contact-notes-1001", f"{SC}.notes", "n" * 1001),
            ("do-not-disclose-item-201", f"{SC}.do_not_disclose", ["d" * 201]),
            ("override-reason-501", "body.override.reason", "o" * 501),
            ("purpose-501", "body.consent.purpose", "p" * 501),
            ("captured-by-129", "body.consent.captured_by", "c" * 129),
            ("recipient-513", "body.consent.recipient", "r" * 513),
            ("jti-129", "jti", "J" * 129),
            ("voicemail-string", f"{SC}.voicemail_allowed", "no"),
            ("voicemail-int", f"{SC}.voicemail_allowed", 0),
            ("missing-may-name", f"{SC}.may_name_organization", DELETE),
            ("do-not-disclose-21", f"{SC}.do_not_disclose", ["x"] * 21),
            ("do-not-disclose-empty-item", f"{SC}.do_not_disclose", [""]),
            ("override-empty", "body.override", {}),
            ("jti-short", "jti", "abc"),
            ("jti-padded", "jti", JTI + "=="),
            ("jti-newline", "jti", JTI + "\n"),
            ("aud-empty", "aud", ""),
            ("aud-list", "aud", [CLINIC]),
        ],
    ),
    "referral-status.schema.json": (
        referral_status("accepted"),
        [
            ("rejected-no-reason", "body.status", "rejected"),
            ("cancelled-no-reason", "body.status", "cancelled"),
            ("failed-no-reason", "body.status", "failed"),
            ("other-no-text", "body.reason", {"code": "other"}),
            ("other-empty-text", "body.reason", {"code": "other", "text": ""}),
            ("reason-code-busy", "body.reason", {"code": "busy"}),
            ("reason-no-code", "body.reason", {"text": "Full."}),
            ("reason-unknown", "body.reason", {"code": "no-capacity", "x": 1}),
            ("reason-text-501", "body.reason", {"code": "other", "text": "t" * 501}),
            ("status-requested", "body.status", "requested"),
            ("status-done", "body.status", "done"),
            ("sequence-zero", "body.sequence", 0),
            ("sequence-2-31", "body.sequence", 2**31),
            ("sequence-bool", "body.sequence", True),
            ("sequence-string", "body.sequence", "2"),
            ("changed-date-only", "body.changed_at", "2027-01-01"),
            ("changed-newline", "body.changed_at", "2027-01-01T00:00:00Z\n"),
            ("note-1001", "body.note", "n" * 1001),
            ("unknown-body-member", "body.by", "staff"),
        ],
    ),
    "consent-withdrawal.schema.json": (
        consent_withdrawal(),
        [
            ("missing-withdrawn-at", "body.withdrawn_at", DELETE),
            ("unknown-body-member", "body.reason", "changed mind"),
            ("consent-id-129", "body.consent_id", "c" * 129),
            ("withdrawn-lowercase", "body.withdrawn_at", "2027-01-01t00:00:00z"),
            ("exp-bool", "exp", True),
            ("exp-fraction", "exp", NOW + 0.25),
            ("missing-jti", "jti", DELETE),
            ("body-string", "body", "{}"),
        ],
    ),
    "deletion-receipt.schema.json": (
        deletion_receipt(),
        [
            ("withdrawal-jti-15", "body.withdrawal_jti", "j" * 15),
            ("withdrawal-jti-129", "body.withdrawal_jti", "j" * 129),
            ("withdrawal-jti-plus", "body.withdrawal_jti", "+" * 20),
            ("missing-deleted-at", "body.deleted_at", DELETE),
            ("unknown-body-member", "body.kept", []),
            ("iat-huge", "iat", 10**30),
            ("iat-bool", "iat", True),
            ("body-list", "body", []),
            ("deleted-at-number", "body.deleted_at", NOW),
            ("referral-id-slash", "body.referral_id", "a/b"),
        ],
    ),
    "receipt.schema.json": (
        receipt(),
        [
            ("digest-44", "envelope_sha256", "A" * 44),
            ("digest-42", "envelope_sha256", "A" * 42),
            ("digest-hex", "envelope_sha256", "e3b0c44298fc1c149afbf4c8996fb924"),
            ("digest-newline", "envelope_sha256", receipt()["envelope_sha256"] + "\n"),
            ("missing-message-jti", "message_jti", DELETE),
            ("iat-negative", "iat", -1),
            ("iat-bool", "iat", False),
            ("jti-null", "jti", None),
        ],
    ),
    "peering-request.schema.json": (
        peering_request(),
        [
            ("message-501", "message", "m" * 501),
            ("message-null", "message", None),
            ("message-number", "message", 5),
            ("missing-exp", "exp", DELETE),
            ("aud-list", "aud", [CLINIC]),
            ("iss-number", "iss", 1),
        ],
    ),
}


def _invalid_cases() -> Iterator[Any]:
    for name, (claims, cases) in INVALID.items():
        for id_, path, value in cases:
            yield pytest.param(name, variant(claims, path, value), id=f"{_stem(name)}:{id_}")


def _stem(name: str) -> str:
    return name.removesuffix(".schema.json")


# --- Tests ----------------------------------------------------------------------------


def test_one_schema_file_per_wire_schema() -> None:
    assert set(SCHEMAS) == {*wire.SCHEMA_FILES, "common.schema.json"}
    for name, kind in messages.MESSAGE_TYPES.items():
        assert wire.SCHEMA_FILES[f"{name}.schema.json"] is kind.claims_schema


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_schema_file_is_a_valid_2020_12_schema(name: str) -> None:
    schema = SCHEMAS[name]
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == BASE_URI + name
    assert schema["title"]
    assert schema["description"]


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_every_property_is_described(name: str) -> None:
    undescribed = [path for path, sub in _properties(SCHEMAS[name], "") if "description" not in sub]
    assert undescribed == []


def _properties(schema: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(schema, dict):
        for name, sub in schema.get("properties", {}).items():
            yield f"{where}/{name}", sub
        for key, value in schema.items():
            if key not in ("if", "properties"):
                yield from _properties(value, f"{where}/{key}")
        for name, sub in schema.get("properties", {}).items():
            yield from _properties(sub, f"{where}/{name}")
    elif isinstance(schema, list):
        for item in schema:
            yield from _properties(item, where)


@pytest.mark.parametrize("name", NAMES)
def test_members_required_and_closed_objects_match_wire(name: str) -> None:
    resolver = REGISTRY.resolver(BASE_URI + name)
    assert list(_shape_differences(wire.SCHEMA_FILES[name](), SCHEMAS[name], resolver, "")) == []


def _shape_differences(
    schema: Schema, json_schema: dict[str, Any], resolver: Any, where: str
) -> Iterator[str]:
    """Where an object's members, required members or closedness differ between the two."""
    json_schema, resolver = _dereferenced(json_schema, resolver)
    members = json_schema.get("properties", {})
    if set(schema.fields) != set(members):
        yield f"{where or '/'}: members {sorted(schema.fields)} != {sorted(members)}"
    required = {name for name, field in schema.fields.items() if field.required}
    if required != set(json_schema.get("required", [])):
        yield f"{where or '/'}: required {sorted(required)} != {json_schema.get('required')}"
    if (schema.opts.unknown == RAISE) != (
        json_schema.get("additionalProperties") is False
    ):  # closed
        yield f"{where or '/'}: closed in only one of them"
    for name, field in schema.fields.items():
        inner, sub = field, members.get(name, {})
        if isinstance(field, fields.List):
            inner, sub = field.inner, _dereferenced(sub, resolver)[0].get("items", {})
        if isinstance(inner, fields.Nested):
            yield from _shape_differences(inner.schema, sub, resolver, f"{where}/{name}")


def _dereferenced(json_schema: dict[str, Any], resolver: Any) -> tuple[dict[str, Any], Any]:
    while "$ref" in json_schema:
        resolved = resolver.lookup(json_schema["$ref"])
        json_schema, resolver = resolved.contents, resolved.resolver
    return json_schema, resolver


def test_every_schema_has_valid_and_invalid_examples() -> None:
    assert all(BUILT[name] and INVALID[name][1] for name in NAMES)


@pytest.mark.parametrize(
    ("name", "claims"),
    [
        pytest.param(name, claims, id=f"{_stem(name)}:{id_}")
        for name in NAMES
        for id_, claims in VALID_EXAMPLES[name]
    ],
)
def test_valid_example_is_accepted_by_both(name: str, claims: dict[str, Any]) -> None:
    assert all(verdicts(name, claims).values()), explain(name, claims)


@pytest.mark.parametrize(("name", "claims"), list(_invalid_cases()))
def test_invalid_variant_is_refused_by_both(name: str, claims: dict[str, Any]) -> None:
    assert not any(verdicts(name, claims).values()), verdicts(name, claims)


@pytest.mark.parametrize(
    ("name", "claims"),
    [pytest.param(n, c, id=f"{_stem(n)}:{id_}") for n, id_, c, _ in VECTORS]
    or [pytest.param(None, None, marks=pytest.mark.skip(reason="no vectors with claims"))],
)
def test_vector_claims_get_the_same_verdict(name: str, claims: dict[str, Any]) -> None:
    assert len(set(verdicts(name, claims).values())) == 1, explain(name, claims)


# --- Property test: random mutations get the same verdict from both -------------------

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)
BY_TYPE = {
    "null": st.none(),
    "boolean": st.booleans(),
    "integer": st.integers() | st.sampled_from([0, -1, 1, 2**31, 2**53, 253_402_300_800]),
    "number": st.floats(allow_nan=False, allow_infinity=False),
    "string": st.text(max_size=12),
    "array": st.lists(JSON_VALUES, max_size=3),
    "object": st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=3),
}


def _schema_strings(schema: Any) -> Iterator[str]:
    """Every enum and const string in the schemas: the values most likely to be accepted."""
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key in ("enum", "const"):
                yield from (v for v in (value if key == "enum" else [value]) if isinstance(v, str))
            else:
                yield from _schema_strings(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _schema_strings(item)


#: Strings near the patterns (identifier and base64url characters, separators, a newline),
#: the schemas' own enum values, and a few well-formed values.
NEAR_STRINGS = (
    st.text(alphabet="aZ09._~:-+/= T\nZ", max_size=140)
    | st.sampled_from(sorted(set(_schema_strings(list(SCHEMAS.values())))))
    | st.sampled_from(["", "12:00", "2027-01-01T00:00:00Z", "2027-01-01T00:00:00.1234567Z"])
)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    for python_type, name in ((float, "number"), (str, "string"), (list, "array")):
        if isinstance(value, python_type):
            return name
    return "object"


def _locations(value: Any, path: JsonPath = ()) -> Iterator[tuple[JsonPath, Any]]:
    yield path, value
    if isinstance(value, dict):
        items: Iterator[tuple[Any, Any]] = iter(value.items())
    else:
        items = enumerate(value) if isinstance(value, list) else iter(())
    for key, child in items:
        yield from _locations(child, (*path, key))


def _strings_in(value: Any) -> list[str]:
    return [v for _, v in _locations(value) if isinstance(v, str)]


UNKNOWN_KEYS = st.text(max_size=10) | st.sampled_from(sorted(INTAKE_FIELDS))
OTHER_TYPE = {kind: st.sampled_from(sorted(set(BY_TYPE) - {kind})) for kind in BY_TYPE}


def mutate(data: st.DataObject, claims: dict[str, Any]) -> dict[str, Any]:
    """One random change somewhere in ``claims``: the kinds the JSON Schemas must judge alike.

    Strategies are built once and choices drawn as indices: building strategies per
    draw would cost more than both validators together.
    """
    locations = list(_locations(claims))
    path, target = locations[data.draw(st.integers(0, len(locations) - 1), label="location")]
    kinds = ["add-unknown"] if isinstance(target, dict) else []
    if path:
        kinds += ["delete", "other-type", "same-type"]
    if isinstance(target, list) and target:
        kinds += ["duplicate-item", "drop-item"]
    kind = kinds[data.draw(st.integers(0, len(kinds) - 1), label="mutation")]
    if kind == "add-unknown":
        key = data.draw(UNKNOWN_KEYS, label="key")
        return replaced(claims, (*path, key), data.draw(JSON_VALUES, label="value"))
    if kind == "delete":
        return replaced(claims, path)
    if kind == "other-type":
        other = data.draw(OTHER_TYPE[_json_type(target)], label="type")
        return replaced(claims, path, data.draw(BY_TYPE[other], label="value"))
    if kind == "same-type":
        return replaced(claims, path, _same_type(data, target, claims))
    index = data.draw(st.integers(0, len(target) - 1), label="index")
    if kind == "duplicate-item":
        return replaced(claims, path, [*target, target[index]])
    return replaced(claims, path, target[:index] + target[index + 1 :])


def _same_type(data: st.DataObject, target: Any, claims: dict[str, Any]) -> Any:
    """Another value of ``target``'s type: near the patterns, the bounds, or the document."""
    if isinstance(target, str):
        strings = _strings_in(claims)
        source = data.draw(st.integers(0, 2), label="source")
        if source == 2:
            return strings[data.draw(st.integers(0, len(strings) - 1), label="string")]
        return data.draw(NEAR_STRINGS if source == 0 else BY_TYPE["string"], label="string")
    if isinstance(target, int) and not isinstance(target, bool):
        offset = data.draw(st.integers(-2, 3), label="offset")
        return float(target) if offset == 3 else target + offset
    return data.draw(BY_TYPE[_json_type(target)], label="value")


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=200, deadline=None, database=None)
@given(data=st.data())
def test_mutations_get_the_same_verdict(name: str, data: st.DataObject) -> None:
    _, claims = data.draw(st.sampled_from(VALID_EXAMPLES[name]), label="example")
    for _ in range(data.draw(st.integers(1, 2), label="mutations")):
        claims = mutate(data, claims)
    accepted = verdicts(name, claims)
    event("accepted" if all(accepted.values()) else "refused by one or more")
    assert len(set(accepted.values())) == 1, (accepted, explain(name, claims))
