"""The HTTP API as a table: every endpoint, what it takes, answers and may refuse.

:mod:`exchange_node.openapi` turns this table into the OpenAPI document; a test checks
that every route of the app is in it. A new endpoint is one more :class:`Endpoint`.
This module holds the node's own endpoints (identity, peering, OAuth, health);
:mod:`exchange_node.openapi_directory` those of services, capacity and directory.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from marshmallow import Schema

from exchange_node.errors import (
    ConfigurationError,
    ConflictError,
    ExchangeError,
    InvalidRequestError,
    PeerNotTrustedError,
    PeerRefusedError,
    PeerUnreachableError,
    StorageError,
)
from exchange_node.protocol import errors as protocol
from exchange_node.protocol.entity import WELL_KNOWN_PATH
from exchange_node.protocol.envelope import ENVELOPE_MEDIA_TYPE
from exchange_node.protocol.errors import ProtocolError
from exchange_node.protocol.limits import DEFAULT_LIMITS
from exchange_node.protocol.messages import MESSAGE_TYPES
from exchange_node.protocol.statements import RECEIPT_MEDIA_TYPE, RECEIPT_TYP
from exchange_node.protocol.wire import ReceiptClaimsSchema
from exchange_node.web import api_schemas as bodies
from exchange_node.web.api_schemas import ENTITY_CONFIGURATION, PEERING_REQUEST, CompactJWSBody
from exchange_node.web.inbox import INBOX_PATH
from exchange_node.web.oauth import TOKEN_PATH
from exchange_node.web.problems import HTTP_CODES

__all__ = ["NODE_ENDPOINTS", "Endpoint", "ErrorClass", "Header", "Problem", "Reply", "header"]

JSON, FORM = "application/json", "application/x-www-form-urlencoded"

ErrorClass = type[ProtocolError] | type[ExchangeError]
Header = Mapping[str, Any]


def header(description: str) -> dict[str, Any]:
    return {"description": description, "schema": {"type": "string"}}


NO_STORE = {"Cache-Control": header("`no-store`.")}
BEARER_CHALLENGE = {"WWW-Authenticate": header("The RFC 6750 challenge, e.g. `Bearer`.")}


@dataclass(frozen=True)
class Problem:
    """An error an endpoint may answer with: status, stable code, title; ``oauth`` for RFC 6749."""

    status: int
    code: str
    title: str
    oauth: bool = False

    @classmethod
    def of(cls, error: ErrorClass) -> Problem:
        return cls(error.status, error.code, error.title)


#: Problems Flask raises itself (see :mod:`exchange_node.web.problems`).
BODY_TOO_LARGE = Problem(413, HTTP_CODES[413], "Request Entity Too Large")
INTERNAL_ERROR = Problem(500, HTTP_CODES[500], "Internal Server Error")

#: The refusals of every request with an RFC 9421 signature (``verify_request``).
REQUEST_SIGNATURE_PROBLEMS: tuple[ErrorClass, ...] = (
    protocol.SignatureMissingError,
    protocol.SignatureInvalidError,
    protocol.SignatureExpiredError,
    protocol.SignatureNotYetValidError,
    protocol.DigestMismatchError,
    protocol.UnknownSignerError,
    protocol.ReplayError,
    protocol.OversizedError,
)


@dataclass(frozen=True)
class Reply:
    """The success response of an endpoint."""

    status: int
    description: str
    body: type[Schema] | CompactJWSBody | None = None
    headers: Mapping[str, Header] = field(default_factory=dict)


@dataclass(frozen=True)
class Endpoint:
    """One operation of the HTTP API, as documented."""

    method: str
    path: str
    operation_id: str
    tag: str
    summary: str
    description: str
    reply: Reply
    problems: tuple[ErrorClass | Problem, ...] = ()
    request: type[Schema] | CompactJWSBody | None = None
    request_media_type: str = JSON
    #: Requires an RFC 9421 signature with the exchange profile (``httpSignature``).
    signed: bool = False
    #: Requires an OAuth 2 bearer token granting these scopes (``oauth2``); ``()``: any token.
    scopes: tuple[str, ...] | None = None
    security: tuple[Mapping[str, list[str]], ...] = ()
    parameters: tuple[Mapping[str, Any], ...] = ()
    #: Headers of error responses, by status.
    error_headers: Mapping[int, Mapping[str, Header]] = field(default_factory=dict)
    #: Other responses that are not errors, such as a ``304``.
    other_replies: tuple[Reply, ...] = ()


class MessageClaimsSchema(Schema):
    """The claims sealed in an envelope, as far as all four message types share them."""

    class Meta:
        json_schema: ClassVar[dict[str, Any]] = {
            "type": "object",
            "required": ["iss", "aud", "iat", "exp", "jti", "body"],
            "properties": {
                "iss": {"type": "string", "description": "The sender's entity identifier."},
                "aud": {"type": "string", "description": "The receiver's entity identifier."},
                "iat": {"type": "integer", "description": "Time of sealing (NumericDate)."},
                "exp": {"type": "integer", "description": "`iat < exp <= iat + 3600`."},
                "jti": {"type": "string", "pattern": "^[A-Za-z0-9_-]{16,128}$"},
                "body": {"type": "object", "description": "The body of the message type."},
            },
        }


class SealedEnvelopeBody(CompactJWSBody):
    """A body that is one sealed message: a compact JWE around a compact JWS (SPEC.md 5.1)."""

    def token_component(self) -> dict[str, Any]:
        schemas = ", ".join(
            f"`{kind.typ}`: `schemas/{kind.schema_file}`" for kind in MESSAGE_TYPES.values()
        )
        return {
            "type": "string",
            "pattern": ENVELOPE_PATTERN,
            "maxLength": self.max_bytes,
            "description": (
                f"{self.description} The JWE's protected header holds `alg` `ECDH-ES+A256KW`, "
                "`enc` `A256GCM`, `kid` (the receiver's encryption key) and `cty` `JWT`; the "
                "plaintext is a compact JWS signed with Ed25519 by the sender, whose `typ` names "
                f"the message type and whose claims are `{self.claims_name}` "
                f"(`x-jws-claims`), the body normatively by type: {schemas}."
            ),
            "externalDocs": self._claims_docs(),
            "x-jws-claims": {"$ref": f"#/components/schemas/{self.claims_name}"},
        }

    def claims_component(self) -> dict[str, Any]:
        return {
            "description": (
                "The claims of a sealed message, read only once the envelope is decrypted and "
                "its inner signature holds. Normative, per message type: the JSON Schemas in "
                "`schemas/` (`referral.schema.json` and the others)."
            ),
            "externalDocs": self._claims_docs(),
        }

    def _claims_docs(self) -> dict[str, str]:
        return {"description": "The normative JSON Schemas of the claims.", "url": "README.md"}


#: A compact JWE: five base64url parts (the encrypted key is not empty with ECDH-ES+A256KW).
ENVELOPE_PATTERN = (
    r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"
)

SEALED_ENVELOPE = SealedEnvelopeBody(
    name="SealedEnvelope",
    media_type=ENVELOPE_MEDIA_TYPE,
    typ="JWT",
    claims=MessageClaimsSchema,
    claims_file="README.md",
    max_bytes=DEFAULT_LIMITS.max_envelope_bytes,
    description=(
        "A sealed message (`referral`, `referral-status`, `consent-withdrawal` or "
        "`deletion-receipt`), sent exactly, with no surrounding whitespace (SPEC.md 5.1, 7.1)."
    ),
)

RECEIPT = CompactJWSBody(
    name="Receipt",
    media_type=RECEIPT_MEDIA_TYPE,
    typ=RECEIPT_TYP,
    claims=ReceiptClaimsSchema,
    claims_file="receipt.schema.json",
    max_bytes=DEFAULT_LIMITS.max_token_bytes,
    description=(
        "The receiver's signed word that it stored the envelope whose SHA-256 it names "
        "(SPEC.md 7.4): a compact JWS signed with Ed25519 by the receiver, with no `exp`."
    ),
)

#: What opening an envelope may refuse (SPEC.md 6), then the application checks (7.3).
INBOX_PROBLEMS: tuple[ErrorClass | Problem, ...] = (
    PeerNotTrustedError,
    protocol.MalformedError,
    protocol.UnsupportedAlgorithmError,
    protocol.WrongTypeError,
    protocol.MissingClaimError,
    protocol.InvalidClaimError,
    protocol.NotYetValidError,
    protocol.ExpiredError,
    protocol.AudienceError,
    protocol.DecryptionError,
    protocol.UntrustedKeyError,
    protocol.BadSignatureError,
    protocol.WrongIssuerError,
    protocol.IllegalTransitionError,
    BODY_TOO_LARGE,
    protocol.SchemaError,
    protocol.UnrequestedFieldError,
    protocol.ConsentError,
    StorageError,
)


NODE_ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "get",
        WELL_KNOWN_PATH,
        "getEntityConfiguration",
        "federation",
        summary="This node's signed entity configuration",
        description=(
            "The node's self-signed identity document: its entity identifier, organization, "
            "endpoints and public keys (SPEC.md 3.1). Public and unsigned, so that a node "
            "that does not know this one yet can read it; a reader trusts it only through a "
            "key thumbprint it was given out of band (SPEC.md 3.6)."
        ),
        reply=Reply(
            200,
            "The entity configuration, a compact JWS.",
            ENTITY_CONFIGURATION,
            headers={"Cache-Control": header("`public, max-age=300`.")},
        ),
        problems=(ConfigurationError, StorageError),
    ),
    Endpoint(
        "post",
        "/federation/v1/peering-requests",
        "postPeeringRequest",
        "federation",
        summary="Ask this node to peer",
        description=(
            "Another node asks to be added as a peer (SPEC.md 8.2, 8.3). The requester is "
            "usually unknown here: this node fetches the entity configuration named by the "
            "request's `iss`, and the HTTP signature and the request must be signed by a key "
            "it lists. A new requester is recorded as `pending`, and becomes `trusted` only "
            "when an administrator here confirms its thumbprint out of band; a request from "
            "a node already known changes nothing."
        ),
        request=PEERING_REQUEST,
        signed=True,
        reply=Reply(202, "The request was verified and recorded.", bodies.PeeringAcceptedSchema),
        problems=(
            protocol.MalformedError,
            InvalidRequestError,
            protocol.UnsupportedAlgorithmError,
            protocol.WrongTypeError,
            protocol.KeyFormatError,
            protocol.MissingClaimError,
            protocol.InvalidClaimError,
            protocol.ExpiredError,
            protocol.NotYetValidError,
            protocol.AudienceError,
            protocol.UntrustedKeyError,
            protocol.BadSignatureError,
            protocol.WrongIssuerError,
            ConflictError,
            BODY_TOO_LARGE,
            protocol.SchemaError,
            PeerUnreachableError,
            PeerRefusedError,
            StorageError,
        ),
    ),
    Endpoint(
        "get",
        "/federation/v1/peer-status",
        "getPeerStatus",
        "federation",
        summary="How this node sees the caller",
        description=(
            "Lets a peer's administrator check the link (SPEC.md 8.4). The request has an "
            "empty body and is authenticated like every peer request (SPEC.md 7.2 steps "
            "1-6), so only a trusted peer gets an answer."
        ),
        signed=True,
        reply=Reply(200, "The caller is a trusted peer of this node.", bodies.PeerStatusSchema),
        problems=(PeerNotTrustedError, BODY_TOO_LARGE, StorageError),
    ),
    Endpoint(
        "post",
        INBOX_PATH,
        "postInboxMessage",
        "federation",
        summary="Deliver a sealed message",
        description=(
            "A trusted peer delivers a referral, a status change, a consent withdrawal or a "
            "deletion receipt (SPEC.md 7). After the request's signature, the peer's status "
            "and the nonce, the envelope is opened with the peer's trusted keys (the content "
            "must be signed by the peer that signed the request), checked (SPEC.md 6, 7.3) "
            "and stored with its effects in one transaction. Idempotent: the same envelope "
            "again (same bytes, even after its `exp`, or the same `jti`) is answered with "
            "the receipt stored for it and changes nothing."
        ),
        request=SEALED_ENVELOPE,
        signed=True,
        reply=Reply(
            202,
            "The message was accepted (or had been): the signed receipt.",
            RECEIPT,
            headers=NO_STORE,
        ),
        problems=INBOX_PROBLEMS,
    ),
    Endpoint(
        "post",
        TOKEN_PATH,
        "postToken",
        "integrations",
        summary="An access token for a client's credentials",
        description=(
            "OAuth 2 client credentials grant (RFC 6749 section 4.4) for clients added with "
            "`exchange-node client add`. Errors of the grant are RFC 6749 error objects, not "
            "problem documents. Needs HTTPS, except for a node whose URL is on loopback."
        ),
        request=bodies.TokenRequestSchema,
        request_media_type=FORM,
        security=({"clientSecretBasic": []}, {}),
        reply=Reply(
            200,
            "The token was issued.",
            bodies.TokenSchema,
            headers={**NO_STORE, "Pragma": header("`no-cache`.")},
        ),
        problems=(
            Problem(400, "unsupported_grant_type", "Only `client_credentials`", oauth=True),
            Problem(400, "invalid_scope", "A scope the client does not hold", oauth=True),
            Problem(400, "insecure_transport", "Plain HTTP to a non-loopback node", oauth=True),
            Problem(
                401, "invalid_client", "Unknown or revoked client, or wrong secret", oauth=True
            ),
            BODY_TOO_LARGE,
            StorageError,
        ),
        error_headers={401: {"WWW-Authenticate": header("A `Basic` challenge naming the error.")}},
    ),
    Endpoint(
        "get",
        "/api/v1/whoami",
        "getWhoami",
        "integrations",
        summary="The client behind a bearer token",
        description="Which client a token was issued to and what it grants; any valid token.",
        scopes=(),
        reply=Reply(200, "The token is valid.", bodies.WhoamiSchema),
        problems=(StorageError,),
    ),
    Endpoint(
        "get",
        "/healthz",
        "getHealth",
        "operations",
        summary="Liveness",
        description="The process answers. It checks nothing else.",
        reply=Reply(200, "The process is alive.", bodies.HealthSchema),
    ),
    Endpoint(
        "get",
        "/readyz",
        "getReadiness",
        "operations",
        summary="Readiness",
        description="The database answers and this node's keys load.",
        reply=Reply(200, "The node can serve requests.", bodies.ReadySchema),
        problems=(ConfigurationError, StorageError),
    ),
)


def signature_header(name: str, description: str, example: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": True,
        "description": description,
        "schema": {"type": "string", "maxLength": 8192},
        "example": example,
    }


SIGNATURE_PARAMETERS = {
    "SignatureInput": signature_header(
        "Signature-Input",
        "RFC 9421 signature metadata, one member `exchange` (see `httpSignature`).",
        'exchange=("@method" "@target-uri" "content-digest");created=1798761600;'
        'keyid="QP5o4goMdMCXp-XWFYWnpX9YFxRcMuFymEO9aaZRTNU";alg="ed25519";'
        'expires=1798761660;nonce="Z2V0LWNhcGFjaXR5LXZhbA";tag="exchange-node"',
    ),
    "Signature": signature_header(
        "Signature",
        "RFC 9421 signature, one member `exchange`: the Ed25519 signature.",
        "exchange=:cjyWt3PQVK+LQ1V0OWahS1KgXoc/+LT+HYTAUM98k/YZxL1P3KKB2Cj9IUXJVpuzWYSZvLAN"
        "cpIAyqpCezw+Bw==:",
    ),
    "ContentDigest": signature_header(
        "Content-Digest",
        "RFC 9530 digest of the exact body bytes: one `sha-256` member.",
        "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:",
    ),
}
