"""Marshmallow schemas for every wire document's claims: the Python side of ``schemas/``.

Each schema here mirrors one JSON Schema file in the repository's ``schemas/``
folder (the normative, language-neutral form); a test checks that both accept
and refuse the same examples. Schemas are applied only to claims whose
signature already held. Cross-field rules that need the token's context
(``aud``, ``now``) live with the verifiers, not here.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any, Final

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate, validates_schema

from exchange_node.protocol.errors import SchemaError
from exchange_node.protocol.intake import DATA_CATEGORIES, INTAKE_FIELDS
from exchange_node.protocol.states import REASON_REQUIRED, ReasonCode, ReferralStatus

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._~:-]{0,127}$"
DATETIME_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z$"
LANGUAGE_PATTERN = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,4}$"
CLOCK_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
TIME_ZONE_PATTERN = r"^[A-Za-z][A-Za-z0-9_+-]{0,30}(/[A-Za-z0-9_+-]{1,30}){0,2}$"
SHA256_B64URL_PATTERN = r"^[A-Za-z0-9_-]{43}$"

ORGANIZATION_KINDS = ("community-network", "clinic", "school", "legal-aid", "housing", "other")
CAPACITY_STATUSES = ("capacity", "no-capacity", "waitlist", "additional-assessment-required")
HSDS_SERVICE_STATUSES = ("active", "inactive", "defunct", "temporarily closed")
CONSENT_METHODS = ("verbal", "written", "digital")
CONSENT_GIVERS = ("self", "parent-or-guardian", "legal-representative")
CONTACT_CHANNELS = ("phone-call", "sms", "email", "post", "in-person", "via-referrer")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Integer(fields.Field[int]):
    """A JSON integer: an int, or an integral float (as JSON Schema counts them); never a bool."""

    def __init__(self, *, minimum: int, maximum: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.minimum, self.maximum = minimum, maximum

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError("Not an integer.")
        if not self.minimum <= value <= self.maximum:
            raise ValidationError(f"Must be between {self.minimum} and {self.maximum}.")
        return value


class Boolean(fields.Field[bool]):
    """A JSON boolean, and nothing that merely looks like one ("true", 1)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise ValidationError("Not a boolean.")
        return value


def _text(max_length: int, *, required: bool = True, min_length: int = 1) -> fields.String:
    return fields.String(required=required, validate=validate.Length(min_length, max_length))


class FullMatch(validate.Validator):
    """A JSON Schema ``^...$`` pattern with ECMA-262 anchors: "$" never matches before a newline."""

    def __init__(self, pattern: str) -> None:
        if not (pattern.startswith("^") and pattern.endswith("$")):
            raise ValueError("wire patterns are anchored at both ends")
        self.regex = re.compile(pattern[1:-1])

    def __call__(self, value: str) -> str:
        if self.regex.fullmatch(value) is None:
            raise ValidationError("Does not have the required format.")
        return value


def _pattern(pattern: str, *, required: bool = True, max_length: int = 128) -> fields.String:
    return fields.String(
        required=required,
        validate=[validate.Length(1, max_length), FullMatch(pattern)],
    )


def _choice(choices: tuple[str, ...], *, required: bool = True) -> fields.String:
    return fields.String(required=required, validate=validate.OneOf(choices))


def _unique(values: list[Any]) -> None:
    if len(values) != len({repr(value) for value in values}):
        raise ValidationError("Items must be unique.")


def _choices(
    choices: tuple[str, ...],
    *,
    min_items: int = 0,
    max_items: int | None = None,
    required: bool = True,
) -> fields.List[Any]:
    return fields.List(
        _choice(choices),
        required=required,
        validate=[validate.Length(min_items, max_items or len(choices)), _unique],
    )


class ClosedSchema(Schema):
    """Objects that may hold personal data are closed: an unknown member is an error,
    so a receiver never stores data it does not understand."""

    class Meta:
        unknown = RAISE


class OpenSchema(Schema):
    """Objects without personal data are open: unknown members are ignored (and dropped),
    so they can be extended without a new protocol version (RFC 7519 section 4 for claims)."""

    class Meta:
        unknown = EXCLUDE


class JWKSchema(ClosedSchema):
    kty = _choice(("OKP",))
    crv = _choice(("Ed25519", "X25519"))
    x = _pattern(r"^[A-Za-z0-9_-]{43}$")
    kid = _pattern(SHA256_B64URL_PATTERN)
    use = _choice(("sig", "enc"))
    alg = _choice(("Ed25519", "ECDH-ES+A256KW"))


class JWKSetSchema(ClosedSchema):
    keys = fields.List(fields.Nested(JWKSchema), required=True, validate=validate.Length(1, 8))


class NodeMetadataSchema(OpenSchema):
    organization_name = _text(200)
    organization_kind = _choice(ORGANIZATION_KINDS)
    capacity_endpoint = _text(512)
    inbox_endpoint = _text(512)
    peering_endpoint = _text(512)
    jwks = fields.Nested(JWKSetSchema, required=True)
    languages = fields.List(
        _pattern(LANGUAGE_PATTERN, max_length=35),
        required=True,
        validate=[validate.Length(1, 50), _unique],
    )
    protocol_versions = fields.List(
        _pattern(r"^[0-9]{1,3}(\.[0-9]{1,3})?$", max_length=7),
        required=True,
        validate=[validate.Length(1, 8), _unique],
    )


class EntityMetadataSchema(OpenSchema):
    exchange_node = fields.Nested(NodeMetadataSchema, required=True)


class EntityConfigurationSchema(OpenSchema):
    iss = _text(512)
    sub = _text(512)
    iat = Integer(required=True, minimum=0, maximum=253_402_300_799)
    exp = Integer(required=True, minimum=0, maximum=253_402_300_799)
    jwks = fields.Nested(JWKSetSchema, required=True)
    metadata = fields.Nested(EntityMetadataSchema, required=True)


class HSDSServiceSchema(Schema):
    """The members of an HSDS 3.1 ``service`` this protocol relies on; the rest is HSDS's."""

    class Meta:
        unknown = "include"

    id = _pattern(ID_PATTERN)
    name = _text(500)
    status = _choice(HSDS_SERVICE_STATUSES)


class CapacitySchema(OpenSchema):
    status = _choice(CAPACITY_STATUSES)
    accepting_referrals = Boolean(required=True)
    wait_days = Integer(minimum=0, maximum=3650)
    notes = _text(1000, required=False, min_length=0)
    intake_fields = _choices(tuple(INTAKE_FIELDS))
    verified_at = _pattern(DATETIME_PATTERN, required=False, max_length=32)
    updated_at = _pattern(DATETIME_PATTERN, max_length=32)


class CapacityEntrySchema(OpenSchema):
    service = fields.Nested(HSDSServiceSchema, required=True)
    capacity = fields.Nested(CapacitySchema, required=True)


class CapacityDocumentSchema(OpenSchema):
    iss = _text(512)
    iat = Integer(required=True, minimum=0, maximum=253_402_300_799)
    exp = Integer(required=True, minimum=0, maximum=253_402_300_799)
    version = Integer(required=True, minimum=1, maximum=2**53 - 1)
    services = fields.List(
        fields.Nested(CapacityEntrySchema), required=True, validate=validate.Length(0, 2000)
    )


#: The person's data: only names from the intake vocabulary, each optional and capped.
PersonSchema = ClosedSchema.from_dict(
    {name: _text(length, required=False) for name, (_, length) in INTAKE_FIELDS.items()},
    name="PersonSchema",
)


class ConsentSchema(ClosedSchema):
    consent_id = _pattern(ID_PATTERN)
    given_by = _choice(CONSENT_GIVERS)
    recipient = _text(512)
    service_id = _pattern(ID_PATTERN)
    data_categories = _choices(DATA_CATEGORIES)
    purpose = _text(500)
    method = _choice(CONSENT_METHODS)
    captured_by = _text(128)
    captured_at = _pattern(DATETIME_PATTERN, max_length=32)
    expires_at = _pattern(DATETIME_PATTERN, max_length=32)


class ContactWindowSchema(ClosedSchema):
    days = _choices(WEEKDAYS, min_items=1)
    start = _pattern(CLOCK_PATTERN, max_length=5)
    end = _pattern(CLOCK_PATTERN, max_length=5)


class SafeContactSchema(ClosedSchema):
    channels = _choices(CONTACT_CHANNELS, min_items=1)
    windows = fields.List(
        fields.Nested(ContactWindowSchema), validate=validate.Length(0, 14), required=False
    )
    time_zone = _pattern(TIME_ZONE_PATTERN, required=False, max_length=64)
    voicemail_allowed = Boolean(required=True)
    may_name_organization = Boolean(required=True)
    do_not_disclose = fields.List(_text(200), validate=validate.Length(0, 20), required=False)
    notes = _text(1000, required=False, min_length=0)


class OverrideSchema(ClosedSchema):
    reason = _text(500)


class ReferralBodySchema(ClosedSchema):
    referral_id = _pattern(ID_PATTERN)
    service_id = _pattern(ID_PATTERN)
    capacity_version = Integer(minimum=1, maximum=2**53 - 1)
    person = fields.Nested(PersonSchema, required=True)
    consent = fields.Nested(ConsentSchema, required=True)
    safe_contact = fields.Nested(SafeContactSchema, required=True)
    override = fields.Nested(OverrideSchema, required=False)


class ReasonSchema(ClosedSchema):
    code = _choice(tuple(ReasonCode))
    text = _text(500, required=False)

    @validates_schema
    def _text_for_other(self, data: Mapping[str, Any], **kwargs: Any) -> None:
        if data.get("code") == ReasonCode.OTHER and not data.get("text"):
            raise ValidationError("A reason of 'other' needs a text.", field_name="text")


class ReferralStatusBodySchema(ClosedSchema):
    referral_id = _pattern(ID_PATTERN)
    status = _choice(tuple(s.value for s in ReferralStatus if s is not ReferralStatus.REQUESTED))
    sequence = Integer(required=True, minimum=1, maximum=2**31 - 1)
    changed_at = _pattern(DATETIME_PATTERN, max_length=32)
    reason = fields.Nested(ReasonSchema, required=False)
    note = _text(1000, required=False, min_length=0)

    @validates_schema
    def _reason_when_required(self, data: Mapping[str, Any], **kwargs: Any) -> None:
        if data.get("status") in REASON_REQUIRED and "reason" not in data:
            raise ValidationError(f"Status {data['status']!r} needs a reason.", field_name="reason")


class ConsentWithdrawalBodySchema(ClosedSchema):
    referral_id = _pattern(ID_PATTERN)
    consent_id = _pattern(ID_PATTERN)
    withdrawn_at = _pattern(DATETIME_PATTERN, max_length=32)


class DeletionReceiptBodySchema(ClosedSchema):
    referral_id = _pattern(ID_PATTERN)
    consent_id = _pattern(ID_PATTERN)
    withdrawal_jti = _pattern(r"^[A-Za-z0-9_-]{16,128}$")
    deleted_at = _pattern(DATETIME_PATTERN, max_length=32)


def _message_claims(body_schema: type[Schema], name: str) -> type[Schema]:
    return OpenSchema.from_dict(
        {
            "iss": _text(512),
            "aud": _text(512),
            "iat": Integer(required=True, minimum=0, maximum=253_402_300_799),
            "exp": Integer(required=True, minimum=0, maximum=253_402_300_799),
            "jti": _pattern(r"^[A-Za-z0-9_-]{16,128}$"),
            "body": fields.Nested(body_schema, required=True),
        },
        name=name,
    )


ReferralClaimsSchema = _message_claims(ReferralBodySchema, "ReferralClaimsSchema")
ReferralStatusClaimsSchema = _message_claims(ReferralStatusBodySchema, "ReferralStatusClaimsSchema")
ConsentWithdrawalClaimsSchema = _message_claims(
    ConsentWithdrawalBodySchema, "ConsentWithdrawalClaimsSchema"
)
DeletionReceiptClaimsSchema = _message_claims(
    DeletionReceiptBodySchema, "DeletionReceiptClaimsSchema"
)


class ReceiptClaimsSchema(OpenSchema):
    iss = _text(512)
    aud = _text(512)
    iat = Integer(required=True, minimum=0, maximum=253_402_300_799)
    jti = _pattern(r"^[A-Za-z0-9_-]{16,128}$")
    message_jti = _pattern(r"^[A-Za-z0-9_-]{16,128}$")
    envelope_sha256 = _pattern(SHA256_B64URL_PATTERN)


class PeeringRequestSchema(OpenSchema):
    """Claims of a peering request (sent signed, not sealed: it holds no personal data)."""

    iss = _text(512)
    aud = _text(512)
    iat = Integer(required=True, minimum=0, maximum=253_402_300_799)
    exp = Integer(required=True, minimum=0, maximum=253_402_300_799)
    jti = _pattern(r"^[A-Za-z0-9_-]{16,128}$")
    message = _text(500, required=False, min_length=0)


#: JSON Schema file name (in ``schemas/``) -> the marshmallow schema that mirrors it.
SCHEMA_FILES: Final[Mapping[str, type[Schema]]] = {
    "entity-configuration.schema.json": EntityConfigurationSchema,
    "capacity-document.schema.json": CapacityDocumentSchema,
    "referral.schema.json": ReferralClaimsSchema,
    "referral-status.schema.json": ReferralStatusClaimsSchema,
    "consent-withdrawal.schema.json": ConsentWithdrawalClaimsSchema,
    "deletion-receipt.schema.json": DeletionReceiptClaimsSchema,
    "receipt.schema.json": ReceiptClaimsSchema,
    "peering-request.schema.json": PeeringRequestSchema,
}


@functools.cache
def _instance(schema: type[Schema]) -> Schema:
    """One shared instance per schema: building one deep-copies every field, loading does not."""
    return schema()


def load_claims(schema: type[Schema], claims: Mapping[str, Any], what: str) -> dict[str, Any]:
    """Validate local input with ``schema``; a failure names each field by JSON Pointer.

    Raises:
        SchemaError: the claims do not match, ``fields`` maps pointers to reasons.
    """
    try:
        loaded: dict[str, Any] = _instance(schema).load(claims)
    except ValidationError as e:
        problems = dict(_flatten(e.messages, ""))
        first = next(iter(problems), "")
        raise SchemaError(
            f"{what} does not match its schema (first problem at {first!r})", problems
        ) from e
    return loaded


def _flatten(messages: Any, pointer: str) -> Iterator[tuple[str, list[str]]]:
    """Marshmallow's nested error messages as (JSON Pointer, messages) pairs."""
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            inner = pointer if key == "_schema" else f"{pointer}/{key}"
            yield from _flatten(value, inner)
    else:
        yield pointer, [str(message) for message in messages]


__all__ = [
    "CAPACITY_STATUSES",
    "CONSENT_GIVERS",
    "CONSENT_METHODS",
    "CONTACT_CHANNELS",
    "ORGANIZATION_KINDS",
    "SCHEMA_FILES",
    "load_claims",
]
