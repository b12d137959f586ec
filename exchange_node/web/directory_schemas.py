"""The directory search API's query parameters and answer: parsing them, and their JSON shape.

:func:`load_directory_query` turns the query string of ``GET /api/v1/directory``
into a :class:`~exchange_node.services.directory_search.DirectoryQuery`, refusing
unknown parameters and values of the wrong type with a JSON Pointer per
parameter; ranges and limits are the search service's to check, so the API and
the command line refuse the same things the same way. :func:`page_json` is the
answer, also printed by ``exchange-node directory search --json``. The
marshmallow schemas describe both for the OpenAPI document.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validates_schema
from werkzeug.datastructures import MultiDict

from exchange_node.errors import InvalidRequestError
from exchange_node.protocol.messages import format_timestamp
from exchange_node.services import directory_search as search
from exchange_node.services.directory_search import DirectoryQuery, SearchPage, SearchResult

__all__ = [
    "DirectoryPageSchema",
    "DirectoryQuerySchema",
    "load_directory_query",
    "page_json",
    "result_json",
]

#: Parameters that may be given more than once (any of the values matches).
REPEATABLE = ("category", "status")


def _param(field: type[fields.Field[Any]], description: str, **options: Any) -> Any:
    return field(metadata={"description": description}, **options)


def _list(description: str) -> fields.List[str]:
    return fields.List(fields.String(), metadata={"description": description})


def _flag(description: str) -> fields.Boolean:
    return fields.Boolean(truthy={"true"}, falsy={"false"}, metadata={"description": description})


class DirectoryQuerySchema(Schema):
    """The query string of ``GET /api/v1/directory``; every parameter is optional."""

    class Meta:
        unknown = RAISE

    q = _param(fields.String, "Words, each matched as a prefix, all required.")
    category = _list("Taxonomy term code or name; repeatable, any of them matches.")
    language = _param(fields.String, "Language code or name (`ar`, `Arabic`).")
    age = _param(fields.Integer, "Age in years, inside the service's age range.")
    area = _param(fields.String, "Words of the service areas or addresses.")
    near = _param(fields.String, "`LAT,LON` in decimal degrees.")
    radius_km = _param(
        fields.Float, f"With `near` (default {search.DEFAULT_RADIUS_KM}).", allow_nan=False
    )
    status = _list("Capacity status; repeatable, any of them matches.")
    accepting = _flag("`true`: accepting referrals now; `false`: not.")
    affirming = _flag("`true`: offers affirming care; `false`: does not say so.")
    peer_kind = _param(fields.String, "The peer's organization kind.")
    limit = _param(fields.Integer, f"1 to {search.MAX_LIMIT} (default {search.DEFAULT_LIMIT}).")
    offset = _param(fields.Integer, f"0 to {search.MAX_OFFSET}.")

    @validates_schema
    def _radius_needs_a_point(self, data: Mapping[str, Any], **kwargs: Any) -> None:
        if "radius_km" in data and "near" not in data:
            raise ValidationError("only with near", "radius_km")


def load_directory_query(args: MultiDict[str, str]) -> DirectoryQuery:
    """The query from a query string; an empty parameter is no filter.

    Raises:
        InvalidRequestError: unknown parameter, wrong type, or given twice when not repeatable.
    """
    given = {name: [v for v in args.getlist(name) if v.strip()] for name in args}
    twice = sorted(name for name, values in given.items() if len(values) > 1)
    problems = {f"/{name}": ["give it once"] for name in twice if name not in REPEATABLE}
    data = {
        name: values if name in REPEATABLE else values[0]
        for name, values in given.items()
        if values
    }
    try:
        loaded = DirectoryQuerySchema().load(data)
    except ValidationError as error:
        problems |= {f"/{name}": _reasons(reasons) for name, reasons in _messages(error).items()}
    if problems:
        first = next(iter(problems))
        raise InvalidRequestError(f"{first[1:]}: {problems[first][0]}", problems)
    return _query(loaded)


def _query(loaded: Mapping[str, Any]) -> DirectoryQuery:
    near = loaded.get("near")
    return DirectoryQuery(
        text=loaded.get("q"),
        categories=tuple(loaded.get("category", ())),
        language=loaded.get("language"),
        age=loaded.get("age"),
        area=loaded.get("area"),
        near=None if near is None else search.parse_point(near),
        radius_km=loaded.get("radius_km", search.DEFAULT_RADIUS_KM),
        statuses=tuple(loaded.get("status", ())),
        accepting=loaded.get("accepting"),
        affirming=loaded.get("affirming"),
        peer_kind=loaded.get("peer_kind"),
        limit=loaded.get("limit", search.DEFAULT_LIMIT),
        offset=loaded.get("offset", 0),
    )


def _messages(error: ValidationError) -> Mapping[str, Any]:
    messages = error.messages
    return messages if isinstance(messages, Mapping) else {"": messages}


def _reasons(messages: Any) -> list[str]:
    """Marshmallow's messages of one parameter (nested per item for a list), flattened."""
    if isinstance(messages, Mapping):
        return [reason for inner in messages.values() for reason in _reasons(inner)]
    return [str(message) for message in messages]


def result_json(result: SearchResult) -> dict[str, Any]:
    """A result as the API and ``--json`` show it: RFC 3339 times, the capacity as published."""
    distance = result.distance_km
    return {
        "peer": {
            "entity_id": result.peer_entity_id,
            "organization": result.peer_organization,
            "kind": result.peer_kind,
        },
        "service": {
            "id": result.service_id,
            "name": result.name,
            "organization": result.organization_name,
            "description": result.description,
            "status": result.hsds_status,
        },
        "capacity": {
            "status": result.capacity_status,
            "accepting_referrals": result.accepting_referrals,
            "wait_days": result.wait_days,
            "notes": result.notes,
            "intake_fields": list(result.intake_fields),
            "verified_at": _timestamp(result.verified_at),
            "updated_at": _timestamp(result.updated_at),
        },
        "verified_days_ago": result.verified_days_ago,
        "stale": result.stale,
        "stale_since": _timestamp(result.stale_since),
        "distance_km": None if distance is None else round(distance, 2),
    }


def page_json(page: SearchPage) -> dict[str, Any]:
    return {
        "results": [result_json(result) for result in page.results],
        "total": page.total,
        "limit": page.limit,
        "offset": page.offset,
    }


def _timestamp(value: int | None) -> str | None:
    return None if value is None else format_timestamp(value)


def _text(description: str, *, nullable: bool = False) -> fields.String:
    return fields.String(required=True, allow_none=nullable, metadata={"description": description})


def _number(field: type[fields.Number[Any]], description: str) -> fields.Number[Any]:
    return field(required=True, allow_none=True, metadata={"description": description})


class DirectoryPeerSchema(Schema):
    entity_id = _text("The peer's entity identifier.")
    organization = _text("The peer's organization name.")
    kind = _text("The peer's organization kind.")


class DirectoryServiceSchema(Schema):
    id = _text("The HSDS service id.")
    name = _text("The service name.")
    organization = _text("The organization offering it (HSDS organization, else the peer).")
    description = _text("The HSDS description (untrusted display text).")
    status = _text("The HSDS status (`active`, `inactive`, `temporarily closed`).")


class DirectoryCapacitySchema(Schema):
    status = _text("`capacity`, `no-capacity`, `waitlist`, `additional-assessment-required`.")
    accepting_referrals = fields.Boolean(required=True)
    wait_days = _number(fields.Integer, "Typical wait in days.")
    notes = _text("Notes for referrers.", nullable=True)
    intake_fields = fields.List(fields.String(), required=True)
    verified_at = _text("When staff last confirmed it (RFC 3339).", nullable=True)
    updated_at = _text("When it last changed (RFC 3339).")


class DirectoryResultSchema(Schema):
    peer = fields.Nested(DirectoryPeerSchema, required=True)
    service = fields.Nested(DirectoryServiceSchema, required=True)
    capacity = fields.Nested(DirectoryCapacitySchema, required=True)
    verified_days_ago = _number(fields.Integer, "Whole days since `verified_at`.")
    stale = fields.Boolean(
        required=True, metadata={"description": "The peer's capacity document has expired."}
    )
    stale_since = _text("When the document expired (RFC 3339), if one is held.", nullable=True)
    distance_km = _number(fields.Float, "From `near`, to the nearest location.")


class DirectoryPageSchema(Schema):
    class Meta:
        description = "Services of trusted peers, best first: fresh, accepting, fresher."

    results = fields.List(fields.Nested(DirectoryResultSchema), required=True)
    total = fields.Integer(required=True, metadata={"description": "Matches in all pages."})
    limit = fields.Integer(required=True)
    offset = fields.Integer(required=True)
