"""The JSON of the referrals API: the bodies it validates, and what it answers.

Request bodies are closed (an unknown member is refused, so a misspelt one is never
silently dropped, and nothing personal is taken that the API does not understand) and
every string is capped; :func:`~exchange_node.web.service_schemas.load_body` turns
marshmallow's errors into an ``invalid_request`` with JSON Pointers. Times are RFC 3339
in requests and responses. The response schemas describe what
:func:`exchange_node.services.referrals.describe` returns, for the OpenAPI document.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from exchange_node.protocol import wire
from exchange_node.protocol.intake import DATA_CATEGORIES, INTAKE_FIELDS
from exchange_node.protocol.states import REASON_REQUIRED, ReasonCode, ReferralStatus
from exchange_node.web.api_schemas import OpenBody
from exchange_node.web.service_schemas import StrictBody

__all__ = [
    "CreateReferralSchema",
    "CreatedReferralSchema",
    "ReferralDetailSchema",
    "ReferralListSchema",
    "ReferralSummarySchema",
    "StatusChangeSchema",
    "Timestamp",
]

#: The largest NumericDate (SPEC 13): 9999-12-31T23:59:59Z.
MAX_TIME = 253_402_300_799
MAX_ENTITY_ID_LENGTH = 512
STATUSES = tuple(status.value for status in ReferralStatus)
CHANGEABLE_STATUSES = tuple(s for s in STATUSES if s != ReferralStatus.REQUESTED)
REASON_CODES = tuple(reason.value for reason in ReasonCode)
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


class Timestamp(fields.String):
    """An RFC 3339 date and time with its offset (``Z`` or ``+02:00``), loaded as Unix seconds."""

    def __init__(self, **kwargs: Any) -> None:
        metadata = {"format": "date-time", "maxLength": 40} | kwargs.pop("metadata", {})
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        if len(text) > 40 or _RFC3339.fullmatch(text) is None:
            raise ValidationError("Not an RFC 3339 date and time, such as 2027-03-31T00:00:00Z.")
        whole, _, fraction = text.upper().partition(".")
        if fraction:  # seconds are whole in this protocol: drop the fraction, keep the offset
            whole += fraction.lstrip("0123456789")
        try:
            seconds = int(datetime.fromisoformat(whole).timestamp())
        except ValueError as e:
            raise ValidationError("No such date and time.") from e
        if not 0 <= seconds <= MAX_TIME:
            raise ValidationError("Out of range.")
        return seconds


class _PersonBody(StrictBody):
    class Meta(StrictBody.Meta):
        description = (
            "The person's data (SPEC.md 5.4): intake fields only, each optional. Send only the "
            "fields the service asks for (its `intake_fields`) whose data category the consent "
            "names; anything else is refused, naming the field, never its value."
        )
        component_name = "ReferralPerson"


PersonBodySchema = _PersonBody.from_dict(
    {
        name: fields.String(
            validate=validate.Length(1, length),
            metadata={"description": f"Category `{category}`."},
        )
        for name, (category, length) in INTAKE_FIELDS.items()
    },
    name="PersonBodySchema",
)


class ConsentBodySchema(StrictBody):
    class Meta(StrictBody.Meta):
        description = (
            "The person's consent (SPEC.md 5.5, after ISO/IEC TS 27560). The node adds the "
            "consent id, the recipient (the peer) and the service."
        )
        component_name = "ReferralConsent"

    data_categories = fields.List(
        fields.String(validate=validate.OneOf(DATA_CATEGORIES)),
        required=True,
        validate=validate.Length(max=len(DATA_CATEGORIES)),
        metadata={
            "description": (
                "The data categories the person agreed to share; the sensitive ones "
                "(`gender_identity`, `sexual_orientation`, `health`, `immigration_status`) "
                "each named explicitly."
            )
        },
    )
    purpose = fields.String(
        required=True,
        validate=validate.Length(1, 500),
        metadata={"description": "What the data is shared for, as explained to the person."},
    )
    given_by = fields.String(required=True, validate=validate.OneOf(wire.CONSENT_GIVERS))
    method = fields.String(required=True, validate=validate.OneOf(wire.CONSENT_METHODS))
    captured_by = fields.String(
        required=True,
        validate=validate.Length(1, 128),
        metadata={
            "description": (
                "Opaque reference of the staff member who recorded the consent; never a name "
                "or an e-mail address."
            )
        },
    )
    captured_at = Timestamp(metadata={"description": "When consent was given (default: now)."})
    expires_at = Timestamp(required=True, metadata={"description": "When the consent ends."})


class SafeContactBodySchema(wire.SafeContactSchema):
    class Meta(wire.ClosedSchema.Meta):
        description = (
            "How the person may be contacted (SPEC.md 5.6): `channels` in order of "
            "preference, `windows` in `time_zone`, whether a voicemail may be left, whether "
            "the organization may be named, what must not be disclosed, and notes."
        )
        component_name = "SafeContact"


class OverrideBodySchema(StrictBody):
    class Meta(StrictBody.Meta):
        description = (
            "Send although the service is not accepting referrals, has no capacity or its "
            "capacity document is stale; the reason goes to the receiving staff."
        )
        component_name = "ReferralOverride"

    reason = fields.String(required=True, validate=validate.Length(1, 500))


class CreateReferralSchema(StrictBody):
    class Meta(StrictBody.Meta):
        description = (
            "A consented referral to a service of a trusted peer, as its capacity document "
            "in this node's directory lists it."
        )
        component_name = "NewReferral"

    peer = fields.String(
        required=True,
        validate=validate.Length(1, MAX_ENTITY_ID_LENGTH),
        metadata={"description": "The peer's entity identifier (its URL)."},
    )
    service_id = fields.String(
        required=True,
        validate=[validate.Length(1, 128), wire.FullMatch(wire.ID_PATTERN)],
        metadata={"description": "The service's id in the peer's capacity document."},
    )
    person = fields.Nested(PersonBodySchema, required=True)
    consent = fields.Nested(ConsentBodySchema, required=True)
    safe_contact = fields.Nested(SafeContactBodySchema, required=True)
    override = fields.Nested(OverrideBodySchema)


class ReasonBodySchema(StrictBody):
    class Meta(StrictBody.Meta):
        description = "Why (SPEC.md 5.8): required for `rejected`, `cancelled` and `failed`."
        component_name = "StatusReason"

    code = fields.String(required=True, validate=validate.OneOf(REASON_CODES))
    text = fields.String(
        validate=validate.Length(1, 500),
        metadata={"description": "Required when `code` is `other`; sent to the peer."},
    )

    @validates_schema
    def _text_for_other(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("code") == ReasonCode.OTHER and not data.get("text"):
            raise ValidationError("A reason of 'other' needs a text.", field_name="text")


class StatusChangeSchema(StrictBody):
    class Meta(StrictBody.Meta):
        description = (
            "A status change made by this node's side (SPEC.md 10); it is sent to the peer. "
            "A change the state machine does not allow is refused with `illegal_transition`, "
            "whose `allowed` lists the statuses this side may choose."
        )

    status = fields.String(required=True, validate=validate.OneOf(CHANGEABLE_STATUSES))
    reason = fields.Nested(ReasonBodySchema)
    note = fields.String(
        validate=validate.Length(0, 1000),
        metadata={"description": "Free text for the peer's staff; sent sealed."},
    )

    @validates_schema
    def _reason_when_required(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("status") in REASON_REQUIRED and "reason" not in data:
            raise ValidationError(f"Status {data['status']!r} needs a reason.", field_name="reason")


# --- responses ----------------------------------------------------------------------------


def _time(description: str, *, nullable: bool = True) -> fields.String:
    return fields.String(
        required=True,
        allow_none=nullable,
        metadata={"description": f"RFC 3339: {description}", "format": "date-time"},
    )


def _nullable_text(description: str) -> fields.String:
    return fields.String(required=True, allow_none=True, metadata={"description": description})


class ReferralPeerSchema(OpenBody):
    class Meta(OpenBody.Meta):
        description = "The other node of the referral."

    entity_id = fields.String(required=True)
    organization = fields.String(required=True)


class ReferralMessageSchema(OpenBody):
    class Meta(OpenBody.Meta):
        description = "A message this node sent about the referral, and its delivery."

    message_type = fields.String(
        required=True,
        validate=validate.OneOf(("referral", "referral-status", "consent-withdrawal")),
    )
    state = fields.String(
        required=True, validate=validate.OneOf(("pending", "delivered", "failed", "cancelled"))
    )
    attempts = fields.Integer(required=True)
    created_at = _time("when it was queued.", nullable=False)
    delivered_at = _time("when the peer's receipt came (null: not yet).")
    last_error_code = _nullable_text("The code of the last failed attempt.")
    last_error = _nullable_text("What went wrong on the last failed attempt.")


class TimelineEventSchema(OpenBody):
    class Meta(OpenBody.Meta):
        description = (
            "One line of the referral's timeline: a status change, the withdrawal, the purge, "
            "the peer's deletion receipt, a delivery failure."
        )

    time = _time("when it happened.", nullable=False)
    kind = fields.String(
        required=True,
        validate=validate.OneOf(
            ("status", "withdrawn", "purged", "deleted-at-peer", "delivery-failed")
        ),
    )
    status = fields.String(required=True, allow_none=True)
    side = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "Who made a status change: `sender` or `receiver`."},
    )
    sequence = fields.Integer(required=True, allow_none=True)
    reason_code = fields.String(required=True, allow_none=True)


class PersonalTimelineEventSchema(TimelineEventSchema):
    class Meta(TimelineEventSchema.Meta):
        description = "A timeline event with its free text (null once purged, or none)."

    note = fields.String(required=True, allow_none=True)
    reason_text = fields.String(required=True, allow_none=True)


class ReferralSummarySchema(OpenBody):
    class Meta(OpenBody.Meta):
        description = (
            "A referral this node sent (`role` `sent`) or received, without personal data: "
            "identifiers, status, times, the timeline and the delivery of its messages."
        )
        component_name = "Referral"

    referral_id = fields.String(required=True)
    role = fields.String(required=True, validate=validate.OneOf(("sent", "received")))
    peer = fields.Nested(ReferralPeerSchema, required=True)
    service_id = fields.String(required=True)
    service_name = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    consent_id = fields.String(required=True)
    consent_code = _nullable_text("The consent receipt code (sent referrals).")
    consent_expires_at = _time("when the consent ends.", nullable=False)
    override = fields.Boolean(
        required=True, metadata={"description": "Sent although the service was not accepting."}
    )
    capacity_version = fields.Integer(required=True, allow_none=True)
    created_by = fields.String(required=True)
    created_at = _time("when this node stored it.", nullable=False)
    updated_at = _time("when it last changed.", nullable=False)
    closed_at = _time("when it reached a terminal status; retention counts from here.")
    withdrawn_at = _time("when the person withdrew consent.")
    purged_at = _time("when its personal data was purged here.")
    purge_reason = fields.String(
        required=True, allow_none=True, validate=validate.OneOf(("withdrawn", "retention"))
    )
    peer_deleted_at = _time("when the peer confirmed deleting the data (sent referrals).")
    delivery = fields.Nested(
        ReferralMessageSchema,
        required=True,
        allow_none=True,
        metadata={"description": "The referral message's delivery (sent referrals)."},
    )
    messages = fields.List(fields.Nested(ReferralMessageSchema), required=True)
    failed_messages = fields.List(fields.Nested(ReferralMessageSchema), required=True)
    timeline = fields.List(fields.Nested(TimelineEventSchema), required=True)


class ReferralDetailSchema(ReferralSummarySchema):
    class Meta(ReferralSummarySchema.Meta):
        description = (
            "A referral with its personal data (each member `null` once purged). Every such "
            "read is recorded in the audit log."
        )
        component_name = "ReferralDetail"

    timeline = fields.List(fields.Nested(PersonalTimelineEventSchema), required=True)
    person = fields.Dict(
        required=True, allow_none=True, metadata={"description": "Intake field -> value."}
    )
    consent = fields.Dict(
        required=True,
        allow_none=True,
        metadata={"description": "The consent record as sent or received (SPEC.md 5.5)."},
    )
    safe_contact = fields.Dict(
        required=True, allow_none=True, metadata={"description": "As in SPEC.md 5.6."}
    )
    override_reason = _nullable_text("Why it was sent although the service was not accepting.")


class CreatedReferralSchema(ReferralSummarySchema):
    class Meta(ReferralSummarySchema.Meta):
        description = (
            "The referral, stored and queued for delivery (`delivery.state` `pending`); "
            "give the person `consent_code`, the code of their consent receipt."
        )
        component_name = "CreatedReferral"

    consent_code = fields.String(required=True)


class ReferralListSchema(OpenBody):
    class Meta(OpenBody.Meta):
        description = "Referrals, newest first, without personal data."

    referrals = fields.List(fields.Nested(ReferralSummarySchema), required=True)
