"""The bodies of the HTTP API: marshmallow schemas of its JSON, descriptors of its tokens.

These describe what the endpoints in :mod:`exchange_node.web` take and return,
for the OpenAPI document (:mod:`exchange_node.openapi`), with the apispec
plugin that turns them into JSON Schema. They do not validate requests: what
peers send is compact JWS, checked by the protocol core after its signature
holds. JSON bodies are open (``unknown = EXCLUDE``): a client ignores members
it does not know, so a later version can add some.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import resolve_schema_cls, resolve_schema_instance
from apispec.ext.marshmallow.openapi import OpenAPIConverter
from marshmallow import EXCLUDE, INCLUDE, RAISE, Schema, fields, validate

from exchange_node.db.models import PeerStatus
from exchange_node.protocol.capacity import CAPACITY_MEDIA_TYPE, CAPACITY_TYP
from exchange_node.protocol.entity import (
    ENTITY_CONFIGURATION_MEDIA_TYPE,
    ENTITY_CONFIGURATION_TYP,
)
from exchange_node.protocol.errors import PROBLEM_TYPE_PREFIX
from exchange_node.protocol.limits import DEFAULT_LIMITS
from exchange_node.protocol.statements import PEERING_REQUEST_MEDIA_TYPE, PEERING_REQUEST_TYP
from exchange_node.protocol.wire import (
    HSDS_SERVICE_STATUSES,
    Boolean,
    CapacityDocumentSchema,
    EntityConfigurationSchema,
    FullMatch,
    Integer,
    PeeringRequestSchema,
)
from exchange_node.services.clients import SCOPES

__all__ = [
    "CAPACITY_DOCUMENT",
    "ENTITY_CONFIGURATION",
    "PEERING_REQUEST",
    "BodiesPlugin",
    "CompactJWSBody",
    "HSDSPageSchema",
    "HSDSRootSchema",
    "HealthSchema",
    "OAuthErrorSchema",
    "PeerStatusSchema",
    "PeeringAcceptedSchema",
    "ProblemSchema",
    "ReadySchema",
    "ServiceImportSchema",
    "ServiceRecordSchema",
    "TokenRequestSchema",
    "TokenSchema",
    "WhoamiSchema",
    "component_name",
]

PEER_STATUSES = tuple(status.value for status in PeerStatus)
CODE_PATTERN = r"^[a-z0-9_]+$"
COMPACT_JWS_PATTERN = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"


def _text(description: str, validator: validate.Validator | None = None) -> fields.String:
    """A required string member."""
    return fields.String(required=True, validate=validator, metadata={"description": description})


class OpenBody(Schema):
    """A JSON body whose unknown members a reader ignores."""

    class Meta:
        unknown = EXCLUDE


class ProblemSchema(OpenBody):
    class Meta(OpenBody.Meta):
        description = (
            "RFC 9457 problem details (application/problem+json; protocol/SPEC.md section 12), "
            "the body of every error but those of the token endpoint. Clients act on `code` "
            "and `status`, never on text."
        )

    type = _text(
        "`urn:exchange-node:problem:` followed by `code`.",
        validate.Regexp("^" + PROBLEM_TYPE_PREFIX + CODE_PATTERN[1:]),
    )
    title = _text("A short summary of the problem type (informative).")
    status = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(400, 599),
        metadata={"description": "The HTTP status code of the response."},
    )
    detail = _text("What went wrong, for people (informative; never holds personal data).")
    code = _text("The stable problem code (SPEC.md 12.2).", validate.Regexp(CODE_PATTERN))
    instance = fields.String(
        metadata={"description": "The path of the request that failed."},
    )
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.Raw(
            metadata={
                "anyOf": [
                    {"type": "array", "items": {"type": "string"}},
                    {"type": "string"},
                ]
            }
        ),
        metadata={
            "description": (
                "Where a body is wrong: JSON Pointers into the claims mapped to the rules "
                "broken (SPEC.md 12.3). With `invalid_body`, `consent_mismatch`, "
                "`field_not_requested` and `invalid_request` only."
            )
        },
    )
    allowed = fields.List(
        fields.String(),
        metadata={
            "description": "With `illegal_transition` only: the statuses the referral may move to."
        },
    )


class HealthSchema(OpenBody):
    class Meta(OpenBody.Meta):
        description = "The process answers."

    status = _text("Always `ok`.", validate.OneOf(["ok"]))


class ReadySchema(OpenBody):
    class Meta(OpenBody.Meta):
        description = "The database answers and this node's keys load."

    status = _text("Always `ready`.", validate.OneOf(["ready"]))


class PeeringAcceptedSchema(OpenBody):
    class Meta(OpenBody.Meta):
        description = (
            "A peering request was verified and recorded. A new requester is `pending` "
            "until an administrator here confirms its thumbprint out of band; a known one "
            "keeps its status."
        )

    entity_id = _text("This node's entity identifier (the node that received the request).")
    status = _text("The requester's status at this node.", validate.OneOf(PEER_STATUSES))


class PeerStatusSchema(OpenBody):
    class Meta(OpenBody.Meta):
        description = "How the answering node sees the (signed, trusted) caller."

    entity_id = _text("The caller's entity identifier, as the answering node knows it.")
    status = _text("The caller's status at the answering node.", validate.OneOf(PEER_STATUSES))
    seen_by = _text("The answering node's entity identifier.")


class TokenRequestSchema(OpenBody):
    class Meta(OpenBody.Meta):
        description = (
            "An access token request, client credentials grant (RFC 6749 section 4.4.2). The "
            "client authenticates with HTTP Basic (`client_secret_basic`, preferred) or with "
            "`client_id` and `client_secret` in this form (`client_secret_post`)."
        )

    grant_type = _text("Always `client_credentials`.", validate.OneOf(["client_credentials"]))
    scope = fields.String(
        metadata={
            "description": (
                "Space-separated scopes, all held by the client; "
                "without it, every scope the client holds."
            )
        }
    )
    client_id = fields.String(metadata={"description": "With `client_secret_post` only."})
    client_secret = fields.String(metadata={"description": "With `client_secret_post` only."})


class TokenSchema(OpenBody):
    class Meta(OpenBody.Meta):
        description = "An access token (RFC 6749 section 5.1); no refresh token is issued."

    access_token = _text("The bearer token, for `Authorization: Bearer TOKEN`.")
    token_type = _text("Always `Bearer`.", validate.OneOf(["Bearer"]))
    expires_in = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=1),
        metadata={"description": "Seconds until the token expires."},
    )
    scope = _text("The space-separated scopes the token grants.")


class OAuthErrorSchema(OpenBody):
    class Meta(OpenBody.Meta):
        description = (
            "An error of the token endpoint, in RFC 6749's shape (section 5.2), which is what "
            "OAuth clients expect; every other endpoint answers with problem details."
        )

    error = _text("The RFC 6749 error code.")
    error_description = fields.String(metadata={"description": "What went wrong, for people."})


class WhoamiSchema(OpenBody):
    class Meta(OpenBody.Meta):
        description = "The client a bearer token was issued to."

    client = _text("The client's name, as its administrator entered it.")
    scopes = fields.List(
        fields.String(validate=validate.OneOf(SCOPES)),
        required=True,
        metadata={"description": "The scopes the token grants."},
    )


class ServiceRecordSchema(Schema):
    class Meta:
        unknown = INCLUDE
        description = (
            "An HSDS 3.1 service record (Open Referral), checked against the HSDS 3.1 schema: "
            "at most 64 KiB of JSON. Only the members below are listed here; the others are "
            "HSDS's. Its `capacities` are the service's HSDS capacities."
        )

    id = fields.String(
        metadata={"description": "The service id, a UUID; without it, the node makes one."}
    )
    name = fields.String(
        required=True,
        validate=validate.Length(1, 500),
        metadata={"description": "1 to 500 characters once trimmed."},
    )
    status = fields.String(required=True, validate=validate.OneOf(HSDS_SERVICE_STATUSES))


_RECORD_REF = {"$ref": "#/components/schemas/ServiceRecord"}


class ServiceImportSchema(Schema):
    """What ``POST /api/v1/services/import`` takes; its JSON Schema is ``Meta.json_schema``."""

    class Meta:
        json_schema: ClassVar[dict[str, Any]] = {
            "description": (
                "One HSDS 3.1 service record, a JSON array of them, or an HSDS page whose "
                "`contents` is that array; at most as many records as a capacity document "
                "carries (2000 unless configured). A record whose id exists updates that "
                "service (keeping its capacities when it has none), any other is added."
            ),
            "anyOf": [
                _RECORD_REF,
                {"type": "array", "items": _RECORD_REF},
                {
                    "type": "object",
                    "required": ["contents"],
                    "properties": {"contents": {"type": "array", "items": _RECORD_REF}},
                },
            ],
        }


class HSDSRootSchema(OpenBody):
    class Meta(OpenBody.Meta):
        description = "The API root of the open HSDS API: what it implements."

    version = _text("The HSDS version, `3.1`.", validate.OneOf(["3.1"]))
    profile = _text("The HSDS profile URL.")
    openapi_url = _text("The HSDS 3.1 OpenAPI description this API implements part of.")


def _count(description: str, low: int = 0) -> fields.Integer:
    return fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=low),
        metadata={"description": description},
    )


def _flag(description: str) -> fields.Boolean:
    return fields.Boolean(required=True, metadata={"description": description})


class HSDSPageSchema(OpenBody):
    class Meta(OpenBody.Meta):
        description = (
            "A page of the public services, as HSDS 3.1 `Page`, by name then id. A page past "
            "the last one is empty."
        )

    total_items = _count("Public services that match, in all pages.")
    total_pages = _count("Pages of `per_page` services (0 when none match).")
    page_number = _count("This page, from 1.", 1)
    size = _count("Services on this page (not `per_page`).")
    first_page = _flag("`page_number` is 1.")
    last_page = _flag("`page_number` is `total_pages` or more.")
    empty = _flag("`contents` is empty.")
    contents = fields.List(
        fields.Dict(),
        required=True,
        metadata={
            "description": (
                "Each service's one-to-one members (HSDS `service_list`), or with `full=true` "
                "its whole record, with its `capacities`."
            )
        },
    )


def component_name(schema: type[Schema] | Schema | str) -> str:
    """The component name of a schema: ``Meta.component_name``, else the class name without
    ``Schema`` (apispec's default), which would clash between some schemas."""
    schema_class = _schema_class(schema)
    named = getattr(getattr(schema_class, "Meta", None), "component_name", None)
    return named or schema_class.__name__.removesuffix("Schema")


def _schema_class(schema: type[Schema] | Schema | str) -> type[Schema]:
    resolved = resolve_schema_cls(schema)
    return resolved[0] if isinstance(resolved, list) else resolved


@dataclass(frozen=True)
class CompactJWSBody:
    """A body that is one compact JWS (RFC 7515), sent as ASCII text with its own media type."""

    name: str
    media_type: str
    typ: str
    claims: type[Schema]
    claims_file: str
    max_bytes: int
    description: str

    @property
    def claims_name(self) -> str:
        return f"{self.name}Claims"

    def token_component(self) -> dict[str, Any]:
        """The OpenAPI schema of the token: a string, whose claims are ``claims_name``."""
        return {
            "type": "string",
            "pattern": COMPACT_JWS_PATTERN,
            "maxLength": self.max_bytes,
            "description": (
                f"{self.description} Its protected header holds `alg` `Ed25519`, `typ` "
                f"`{self.typ}` and `kid`; its claims are `{self.claims_name}` (`x-jws-claims`), "
                f"normatively `schemas/{self.claims_file}`."
            ),
            "externalDocs": self._claims_docs(),
            "x-jws-typ": self.typ,
            "x-jws-claims": {"$ref": f"#/components/schemas/{self.claims_name}"},
        }

    def claims_component(self) -> dict[str, Any]:
        """What the OpenAPI schema of the claims adds to the one apispec makes of ``claims``."""
        return {
            "description": (
                f"The claims of a `{self.name}` token (`typ` `{self.typ}`), read only once its "
                f"signature holds. Normative: `schemas/{self.claims_file}`, which also fixes "
                "the form of entity identifiers."
            ),
            "externalDocs": self._claims_docs(),
        }

    def _claims_docs(self) -> dict[str, str]:
        """A link to the claims' JSON Schema, relative to ``schemas/openapi.json``."""
        return {"description": "The normative JSON Schema of the claims.", "url": self.claims_file}


class WireConverter(OpenAPIConverter):
    """apispec's converter, taught the JSON-exact fields and anchored patterns of ``wire``."""

    def field2property(self, field: fields.Field[Any]) -> dict[str, Any]:
        properties: dict[str, Any] = super().field2property(field)
        if isinstance(field, Integer):
            properties |= {"type": "integer", "minimum": field.minimum, "maximum": field.maximum}
        elif isinstance(field, Boolean):
            properties["type"] = "boolean"
        for validator in field.validators:
            if isinstance(validator, FullMatch):
                properties["pattern"] = f"^{validator.regex.pattern}$"
        return properties

    def schema2jsonschema(self, schema: Any) -> dict[str, Any]:
        """A schema's ``Meta.json_schema`` if it has one; closed when it refuses unknown members
        (apispec leaves that out when ``Meta`` has a description)."""
        fixed = getattr(getattr(_schema_class(schema), "Meta", None), "json_schema", None)
        if fixed is not None:
            return dict(fixed)
        converted: dict[str, Any] = super().schema2jsonschema(schema)  # type: ignore[no-untyped-call]
        if resolve_schema_instance(schema).unknown == RAISE:
            converted["additionalProperties"] = False
        return converted


class BodiesPlugin(MarshmallowPlugin):
    """apispec's marshmallow plugin, for these schemas and the wire schemas they reuse."""

    Converter = WireConverter

    def __init__(self) -> None:
        super().__init__(schema_name_resolver=component_name)


ENTITY_CONFIGURATION = CompactJWSBody(
    name="EntityConfiguration",
    media_type=ENTITY_CONFIGURATION_MEDIA_TYPE,
    typ=ENTITY_CONFIGURATION_TYP,
    claims=EntityConfigurationSchema,
    claims_file="entity-configuration.schema.json",
    max_bytes=DEFAULT_LIMITS.max_token_bytes,
    description=(
        "The node's entity configuration (OpenID Federation 1.0): a compact JWS signed with "
        "Ed25519 by one of the signing keys it lists (SPEC.md section 3)."
    ),
)

PEERING_REQUEST = CompactJWSBody(
    name="PeeringRequest",
    media_type=PEERING_REQUEST_MEDIA_TYPE,
    typ=PEERING_REQUEST_TYP,
    claims=PeeringRequestSchema,
    claims_file="peering-request.schema.json",
    max_bytes=DEFAULT_LIMITS.max_body_bytes,
    description=(
        "A peering request: a compact JWS signed with Ed25519 by a signing key of the "
        "requester's entity configuration, signed but not encrypted, as it holds no personal "
        "data (SPEC.md section 8.2)."
    ),
)

CAPACITY_DOCUMENT = CompactJWSBody(
    name="CapacityDocument",
    media_type=CAPACITY_MEDIA_TYPE,
    typ=CAPACITY_TYP,
    claims=CapacityDocumentSchema,
    claims_file="capacity-document.schema.json",
    max_bytes=DEFAULT_LIMITS.max_token_bytes,
    description=(
        "The node's capacity document: every service it publishes with its capacity, a "
        "compact JWS signed with Ed25519 by the node's current signing key (SPEC.md section 4)."
    ),
)
