"""The HTTP API table, continued: the referrals API for integration clients.

Part of :data:`exchange_node.openapi.ENDPOINTS`; see :mod:`exchange_node.openapi_endpoints`
for how an endpoint is declared. :class:`MediaReply` documents a success response whose
body is not JSON (the consent receipt, as text or HTML).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from exchange_node.data_key import DataKeyError
from exchange_node.errors import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PeerNotTrustedError,
    StorageError,
)
from exchange_node.openapi_endpoints import BODY_TOO_LARGE, NO_STORE, Endpoint, Reply, header
from exchange_node.protocol.errors import ConsentError, IllegalTransitionError
from exchange_node.services.referrals import ServiceNotAcceptingError
from exchange_node.web.api_referrals import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    READ,
    REFERRALS_PATH,
    ROLES,
    WRITE,
)
from exchange_node.web.referral_schemas import (
    STATUSES,
    CreatedReferralSchema,
    CreateReferralSchema,
    ReferralDetailSchema,
    ReferralListSchema,
    ReferralSummarySchema,
    StatusChangeSchema,
)

__all__ = ["REFERRAL_ENDPOINTS", "MediaReply"]


@dataclass(frozen=True)
class MediaReply(Reply):
    """A success response with bodies in other media types: media type -> media type object."""

    content: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


REFERRAL_PATH = REFERRALS_PATH + "/{referral_id}"
REFERRAL_ID = {
    "name": "referral_id",
    "in": "path",
    "required": True,
    "description": "The referral's id, exactly (for referrals this node sends, a UUID).",
    "schema": {"type": "string", "maxLength": 128},
}
PERSONAL = (
    "The answer holds personal data: it is never cached (`Cache-Control: no-store`), and "
    "the read is recorded in the audit log with the client as actor."
)
TELLS_PEER = (
    "The change is recorded here and queued as a sealed message to the peer, which the "
    "node's worker delivers (see `delivery` and `messages`)."
)


def query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description} | {
        "schema": schema
    }


REFERRAL_ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "post",
        REFERRALS_PATH,
        "createReferral",
        "integrations",
        summary="Send a consented referral",
        description=(
            "Refers a person to a service of a trusted peer, with their consent. The referral "
            "carries only the intake fields the service asks for in its capacity document "
            "(as this node's directory holds it), and only those whose data category the "
            "consent names (sensitive categories one by one); otherwise `400` names each "
            "field by its JSON Pointer, never its value. A service not accepting referrals, "
            "with no capacity or a stale capacity document is refused (`409` "
            "`service_not_accepting`) unless `override.reason` says why. The referral is "
            "stored with its personal data encrypted and queued for delivery through the "
            "outbox; give the person the `consent_code` of their consent receipt."
        ),
        scopes=(WRITE,),
        request=CreateReferralSchema,
        reply=Reply(
            201,
            "The referral was stored and queued for delivery.",
            CreatedReferralSchema,
            headers={**NO_STORE, "Location": header("The referral's URL in this API.")},
        ),
        problems=(
            InvalidRequestError,
            NotFoundError,
            PeerNotTrustedError,
            ServiceNotAcceptingError,
            ConsentError,
            BODY_TOO_LARGE,
            StorageError,
        ),
    ),
    Endpoint(
        "get",
        REFERRALS_PATH,
        "listReferrals",
        "integrations",
        summary="List referrals",
        description=(
            "The referrals this node sent and received, newest first, without personal data. "
            "An unknown parameter, or one given twice, is refused."
        ),
        scopes=(READ,),
        parameters=(
            query("role", "`sent` or `received`.", {"type": "string", "enum": list(ROLES)}),
            query("status", "Only referrals in this status.", {"enum": list(STATUSES)}),
            query(
                "limit",
                "At most this many.",
                {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
            ),
        ),
        reply=Reply(200, "The referrals.", ReferralListSchema, NO_STORE),
        problems=(InvalidRequestError, StorageError),
    ),
    Endpoint(
        "get",
        REFERRAL_PATH,
        "getReferral",
        "integrations",
        summary="One referral, with its personal data",
        description=(
            "A referral with the person's data, the consent record, the safe-contact "
            "preferences and the timeline with its notes (each `null` once purged). " + PERSONAL
        ),
        scopes=(READ,),
        parameters=(REFERRAL_ID,),
        reply=Reply(200, "The referral.", ReferralDetailSchema, NO_STORE),
        problems=(NotFoundError, DataKeyError, StorageError),
    ),
    Endpoint(
        "post",
        REFERRAL_PATH + "/status",
        "changeReferralStatus",
        "integrations",
        summary="Change a referral's status",
        description=(
            "Moves the referral on as this node's side: the serving node accepts, rejects, "
            "starts, holds, completes or fails it; the referring node may cancel it "
            "(SPEC.md 10). A change not allowed from the current status for this side is "
            "refused with `409` `illegal_transition`, whose `allowed` lists the statuses this "
            "side may choose. A note or reason text on a purged referral is refused (`409` "
            "`conflict`). " + TELLS_PEER
        ),
        scopes=(WRITE,),
        parameters=(REFERRAL_ID,),
        request=StatusChangeSchema,
        reply=Reply(200, "The referral, as it is now.", ReferralSummarySchema, NO_STORE),
        problems=(
            InvalidRequestError,
            NotFoundError,
            PeerNotTrustedError,
            IllegalTransitionError,
            ConflictError,
            BODY_TOO_LARGE,
            StorageError,
        ),
    ),
    Endpoint(
        "post",
        REFERRAL_PATH + "/withdrawal",
        "withdrawReferralConsent",
        "integrations",
        summary="Withdraw the person's consent",
        description=(
            "The person withdrew their consent (SPEC.md 5.9): a referral not yet closed that "
            "the peer holds is first cancelled (`person-declined`), the withdrawal is queued "
            "to the peer, which purges its copy and answers with a deletion receipt "
            "(`peer_deleted_at`), and this node purges its own copy now. Only the referring "
            "node withdraws (`400` for a received referral); a second withdrawal is `409`. "
            "No body, or `{}`."
        ),
        scopes=(WRITE,),
        parameters=(REFERRAL_ID,),
        reply=Reply(
            200, "The referral, withdrawn and purged here.", ReferralSummarySchema, NO_STORE
        ),
        problems=(
            InvalidRequestError,
            NotFoundError,
            PeerNotTrustedError,
            ConflictError,
            BODY_TOO_LARGE,
            StorageError,
        ),
    ),
    Endpoint(
        "get",
        REFERRAL_PATH + "/consent-receipt",
        "getConsentReceipt",
        "integrations",
        summary="The person's consent receipt",
        description=(
            "What the person agreed to, in plain words, for a referral this node sent: who "
            "shares which kinds of data with whom, why, until when, and how to withdraw "
            "quoting the receipt code. It names kinds of data, never the data. Plain text, "
            "or with `format=html` a printable page. A received referral has none (`400`)."
        ),
        scopes=(READ,),
        parameters=(
            REFERRAL_ID,
            query("format", "`text` (default) or `html`.", {"enum": ["text", "html"]}),
        ),
        reply=MediaReply(
            200,
            "The consent receipt.",
            headers=NO_STORE,
            content={
                "text/plain": {"schema": {"type": "string"}},
                "text/html": {"schema": {"type": "string"}},
            },
        ),
        problems=(InvalidRequestError, NotFoundError, DataKeyError, StorageError),
    ),
)
