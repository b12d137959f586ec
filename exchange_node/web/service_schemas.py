"""The JSON of the services API: the capacity body it validates, and what it answers.

:class:`CapacityBodySchema` validates ``PUT /api/v1/services/{id}/capacity`` (unknown
members are refused, so a misspelt one is not silently ignored); service records
themselves are checked against HSDS 3.1 by the catalog, not here. The other schemas
describe responses for the OpenAPI document. :func:`load_body` turns marshmallow's
errors into an ``invalid_request`` with JSON Pointers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from exchange_node.errors import InvalidRequestError
from exchange_node.protocol.intake import INTAKE_FIELDS
from exchange_node.protocol.wire import Boolean, Integer
from exchange_node.services.service_capacity import (
    CAPACITY_STATUSES,
    MAX_NOTES_LENGTH,
    MAX_UNIT_LENGTH,
    MAX_WAIT_DAYS,
)
from exchange_node.web.api_schemas import OpenBody

__all__ = [
    "CapacityBodySchema",
    "CapacityNumbersSchema",
    "CapacitySchema",
    "ImportResultSchema",
    "ServiceEntrySchema",
    "ServiceListSchema",
    "load_body",
]

#: HSDS capacities one request may set.
MAX_CAPACITIES = 20


class Number(fields.Field[float]):
    """A finite JSON number of 0 or more, and nothing that merely looks like one ("3", true)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError("Not a number.")
        if not math.isfinite(value) or value < 0:
            raise ValidationError("Must be a finite number of 0 or more.")
        return value


class StrictBody(Schema):
    """A request body: a member this API does not know is an error."""

    class Meta:
        unknown = RAISE


class CapacityNumbersSchema(StrictBody):
    class Meta(StrictBody.Meta):
        description = (
            "An HSDS 3.1 `service_capacity` to set, matched by unit name to the ones the "
            "record holds (a new unit is added); `updated` becomes the time of the request."
        )

    unit = fields.String(
        required=True,
        validate=validate.Length(1, MAX_UNIT_LENGTH),
        metadata={"description": "What is counted: beds, appointments, places ..."},
    )
    available = Number(required=True, metadata={"description": "How many are free now."})
    maximum = Number(metadata={"description": "How many there are in all."})
    description = fields.String(validate=validate.Length(0, MAX_NOTES_LENGTH))


class CapacityBodySchema(StrictBody):
    class Meta(StrictBody.Meta):
        description = (
            "A service's capacity, replaced as a whole: an absent `wait_days` or `notes` "
            "removes it, an absent `intake_fields` means none. `verified_at` becomes now "
            "only with `verified: true` (a person confirmed it)."
        )

    status = fields.String(required=True, validate=validate.OneOf(CAPACITY_STATUSES))
    accepting_referrals = Boolean(required=True)
    wait_days = Integer(minimum=0, maximum=MAX_WAIT_DAYS, allow_none=True)
    notes = fields.String(
        allow_none=True,
        validate=validate.Length(0, MAX_NOTES_LENGTH),
        metadata={"description": "For referrers; never personal data."},
    )
    intake_fields = fields.List(
        fields.String(validate=validate.OneOf(tuple(INTAKE_FIELDS))),
        validate=validate.Length(max=len(INTAKE_FIELDS)),
        metadata={"description": "The person fields a referral to this service carries."},
    )
    capacities = fields.List(
        fields.Nested(CapacityNumbersSchema), validate=validate.Length(max=MAX_CAPACITIES)
    )
    verified = Boolean(metadata={"description": "A person confirmed this capacity just now."})


class CapacitySchema(OpenBody):
    class Meta(OpenBody.Meta):
        description = (
            "A service's capacity, as its capacity document entry publishes it, but with "
            "`null` where the entry leaves a member out."
        )
        component_name = "ServiceCapacity"  # the protocol's own schema is `Capacity`

    status = fields.String(required=True, validate=validate.OneOf(CAPACITY_STATUSES))
    accepting_referrals = fields.Boolean(required=True)
    wait_days = fields.Integer(required=True, allow_none=True)
    notes = fields.String(required=True, allow_none=True)
    intake_fields = fields.List(fields.String(), required=True)
    verified_at = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "RFC 3339: when a person last confirmed it (null: never)."},
    )
    updated_at = fields.String(
        required=True, metadata={"description": "RFC 3339: when it last changed."}
    )


class ServiceEntrySchema(OpenBody):
    class Meta(OpenBody.Meta):
        description = "One of this node's services."

    service = fields.Dict(
        required=True, metadata={"description": "The HSDS 3.1 service record, as published."}
    )
    capacity = fields.Nested(CapacitySchema, required=True)
    public = fields.Boolean(
        required=True, metadata={"description": "Listed on the open HSDS endpoint."}
    )
    created_at = fields.String(required=True)
    updated_at = fields.String(required=True, metadata={"description": "Record last changed."})


class ServiceListSchema(OpenBody):
    class Meta(OpenBody.Meta):
        description = "Every service of this node, by name."

    services = fields.List(fields.Nested(ServiceEntrySchema), required=True)


class ImportResultSchema(OpenBody):
    class Meta(OpenBody.Meta):
        description = "The ids of the services an import added and of those it updated."

    added = fields.List(fields.String(), required=True)
    updated = fields.List(fields.String(), required=True)


def load_body(schema: Schema, body: Any) -> dict[str, Any]:
    """``body`` loaded by ``schema``.

    Raises:
        InvalidRequestError: with a JSON Pointer per wrong member.
    """
    if not isinstance(body, dict):
        raise InvalidRequestError("the body must be a JSON object", {"": "not an object"})
    try:
        loaded: dict[str, Any] = schema.load(body)
    except ValidationError as e:
        problems = dict(_pointers(e.messages))
        first = next(iter(problems), "")
        raise InvalidRequestError(
            f"{first or '/'}: {problems.get(first, ['invalid'])[0]}", problems
        ) from e
    return loaded


def _pointers(messages: Any, prefix: str = "") -> Any:
    """(JSON Pointer, reasons) for each leaf of marshmallow's nested error messages."""
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            name = str(key).replace("~", "~0").replace("/", "~1")
            yield from _pointers(value, f"{prefix}/{name}")
    else:
        reasons = messages if isinstance(messages, list) else [messages]
        yield prefix, [str(reason) for reason in reasons]
