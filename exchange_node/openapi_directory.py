"""The HTTP API table, continued: this node's services, its capacity feed, the open HSDS
API and the directory of peers' services.

Part of :data:`exchange_node.openapi.ENDPOINTS`; see :mod:`exchange_node.openapi_endpoints`
for how an endpoint is declared.
"""

from __future__ import annotations

from typing import Any

from exchange_node.errors import (
    ConfigurationError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PeerNotTrustedError,
    StorageError,
)
from exchange_node.openapi_endpoints import BODY_TOO_LARGE, Endpoint, Reply, header
from exchange_node.protocol.entity import CAPACITY_PATH
from exchange_node.protocol.wire import ORGANIZATION_KINDS, HSDSServiceSchema
from exchange_node.services import directory_search as search
from exchange_node.services import publication
from exchange_node.services.directory_search import CAPACITY_STATUSES
from exchange_node.web import api_schemas as bodies
from exchange_node.web import hsds
from exchange_node.web.api_directory import DIRECTORY_PATH
from exchange_node.web.api_services import SERVICES_PATH
from exchange_node.web.directory_schemas import DirectoryPageSchema
from exchange_node.web.service_schemas import (
    CapacityBodySchema,
    ImportResultSchema,
    ServiceEntrySchema,
    ServiceListSchema,
)

__all__ = ["SERVICE_ENDPOINTS"]

SERVICE_PATH = SERVICES_PATH + "/{service_id}"
CAPACITY_SCOPE = ("capacity:write",)
CAPACITY_CACHE = {
    "ETag": header("The document's strong ETag."),
    "Cache-Control": header("`private, no-cache`: revalidate with `If-None-Match`."),
}
OPEN = {"Access-Control-Allow-Origin": header("`*`: any web page may read it.")}
HSDS_CACHE = {**OPEN, "Cache-Control": header(f"`public, max-age={hsds.CACHE_SECONDS}`.")}
HSDS_ERROR_HEADERS = {status: OPEN for status in (400, 404, 500, 503)}
HSDS_OFF = "Every `/hsds` path answers `404` `not_found` while `public_hsds` is off."


def query(name: str, description: str, schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description} | {
        "schema": schema,
        **extra,
    }


def service_id(description: str) -> dict[str, Any]:
    return {
        "name": "service_id",
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


TRUE_FALSE = {"type": "string", "enum": ["true", "false"]}
PUBLIC = query(
    "public",
    "`true` or `false` exactly: whether the service is listed on the open HSDS API.",
    TRUE_FALSE,
)
API_ID = service_id("The service id; a UUID is matched in any letter case.")


def integer(low: int, high: int, default: int | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer", "minimum": low, "maximum": high}
    return schema if default is None else schema | {"default": default}


def repeated(items: dict[str, Any], most: int | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "array", "items": items}
    return schema if most is None else schema | {"maxItems": most}


SERVICES: tuple[Endpoint, ...] = (
    Endpoint(
        "get",
        SERVICES_PATH,
        "listServices",
        "integrations",
        summary="This node's services",
        description="Every service of this node, public or not, with its capacity.",
        scopes=CAPACITY_SCOPE,
        reply=Reply(200, "The services, by name then id.", ServiceListSchema),
        problems=(StorageError,),
    ),
    Endpoint(
        "post",
        SERVICES_PATH,
        "addService",
        "integrations",
        summary="Add a service",
        description=(
            "Adds a service from an HSDS 3.1 record (sent as `application/json`); a record "
            "without an id gets a new UUID. The service starts with capacity `no-capacity`, "
            "not accepting referrals, and private unless `public=true`. Refused (`400`) when "
            "the node already holds as many services as a capacity document carries."
        ),
        scopes=CAPACITY_SCOPE,
        parameters=(PUBLIC,),
        request=bodies.ServiceRecordSchema,
        reply=Reply(
            201,
            "The service was added.",
            ServiceEntrySchema,
            headers={"Location": header("The new service's URL, under the node's public URL.")},
        ),
        problems=(InvalidRequestError, ConflictError, BODY_TOO_LARGE, StorageError),
    ),
    Endpoint(
        "post",
        SERVICES_PATH + "/import",
        "importServices",
        "integrations",
        summary="Add or update many services",
        description=(
            "Adds or updates every record, or none: all are checked first, and a `400` names "
            "each refused one by its JSON Pointer (`/3/name`, `/contents/3/id`). `public` "
            "applies to the services added; updated ones keep theirs."
        ),
        scopes=CAPACITY_SCOPE,
        parameters=(PUBLIC,),
        request=bodies.ServiceImportSchema,
        reply=Reply(200, "Everything was imported.", ImportResultSchema),
        problems=(InvalidRequestError, BODY_TOO_LARGE, StorageError),
    ),
    Endpoint(
        "get",
        SERVICE_PATH,
        "getService",
        "integrations",
        summary="One of this node's services",
        description="A service, public or not, with its capacity.",
        scopes=CAPACITY_SCOPE,
        parameters=(API_ID,),
        reply=Reply(200, "The service.", ServiceEntrySchema),
        problems=(NotFoundError, StorageError),
    ),
    Endpoint(
        "put",
        SERVICE_PATH,
        "replaceService",
        "integrations",
        summary="Replace a service's record",
        description=(
            "Replaces the HSDS record of a service. Its id stays: a record naming another is "
            "refused (`/id`). A record without `capacities` keeps the service's own; its "
            "capacity (status, wait, ...) does not change. Without `public`, whether the "
            "service is public does not change either."
        ),
        scopes=CAPACITY_SCOPE,
        parameters=(API_ID, PUBLIC),
        request=bodies.ServiceRecordSchema,
        reply=Reply(200, "The service, as it is now.", ServiceEntrySchema),
        problems=(InvalidRequestError, NotFoundError, BODY_TOO_LARGE, StorageError),
    ),
    Endpoint(
        "delete",
        SERVICE_PATH,
        "removeService",
        "integrations",
        summary="Remove a service",
        description="Removes the service; the next capacity document no longer lists it.",
        scopes=CAPACITY_SCOPE,
        parameters=(API_ID,),
        reply=Reply(204, "The service was removed."),
        problems=(NotFoundError, StorageError),
    ),
    Endpoint(
        "put",
        SERVICE_PATH + "/capacity",
        "setServiceCapacity",
        "integrations",
        summary="Set a service's capacity",
        description=(
            "Replaces the service's capacity as a whole (see `CapacityBody`). The HSDS "
            "`capacities` sent are set by unit name; units of the record not sent are kept. "
            "`updated_at` moves only when something changed."
        ),
        scopes=CAPACITY_SCOPE,
        parameters=(API_ID,),
        request=CapacityBodySchema,
        reply=Reply(200, "The service, with its capacity as it is now.", ServiceEntrySchema),
        problems=(InvalidRequestError, NotFoundError, BODY_TOO_LARGE, StorageError),
    ),
)

CAPACITY_FEED = Endpoint(
    "get",
    CAPACITY_PATH,
    "getCapacityDocument",
    "federation",
    summary="This node's signed capacity document",
    description=(
        "Every service of this node with its capacity, signed (SPEC.md section 4), for "
        "trusted peers. The request has an empty body and no query. With `If-None-Match` "
        "naming the current ETag (compared weakly, in a list, or `*`) the answer is `304`."
    ),
    signed=True,
    parameters=(
        {
            "name": "If-None-Match",
            "in": "header",
            "required": False,
            "description": "ETags the caller holds (RFC 9110 section 13.1.2).",
            "schema": {"type": "string"},
        },
    ),
    reply=Reply(200, "The capacity document.", bodies.CAPACITY_DOCUMENT, CAPACITY_CACHE),
    other_replies=(Reply(304, "The caller's copy is current; no body.", None, CAPACITY_CACHE),),
    problems=(PeerNotTrustedError, BODY_TOO_LARGE, ConfigurationError, StorageError),
)

HSDS: tuple[Endpoint, ...] = (
    Endpoint(
        "get",
        "/hsds/",
        "getHsdsRoot",
        "hsds",
        summary="The open HSDS API's root",
        description=f"What this API implements. {HSDS_OFF}",
        reply=Reply(200, "The API root.", bodies.HSDSRootSchema, HSDS_CACHE),
        problems=(NotFoundError, StorageError),
        error_headers=HSDS_ERROR_HEADERS,
    ),
    Endpoint(
        "get",
        "/hsds/services",
        "listHsdsServices",
        "hsds",
        summary="The public services, a page at a time",
        description=(
            "The services marked public, by name then id. Each bad parameter is named in "
            f"`errors` (`/page`, `/per_page`, `/full`, `/search`). {HSDS_OFF}"
        ),
        parameters=(
            query("page", "The page, from 1.", integer(1, hsds.MAX_PAGE, hsds.DEFAULT_PAGE)),
            query(
                "per_page",
                "Services per page.",
                integer(1, hsds.MAX_PER_PAGE, hsds.DEFAULT_PER_PAGE),
            ),
            query(
                "full",
                "`true`: whole records with capacities; `false`: `service_list` members. "
                "In any letter case.",
                TRUE_FALSE | {"default": "false"},
            ),
            query(
                "search",
                "Case-insensitive text the name contains; trimmed, and empty means all.",
                {"type": "string", "maxLength": publication.MAX_SEARCH_LENGTH},
            ),
        ),
        reply=Reply(200, "A page of public services.", bodies.HSDSPageSchema, HSDS_CACHE),
        problems=(InvalidRequestError, NotFoundError, StorageError),
        error_headers=HSDS_ERROR_HEADERS,
    ),
    Endpoint(
        "get",
        "/hsds/services/{service_id}",
        "getHsdsService",
        "hsds",
        summary="One public service",
        description=(
            "A public service's whole HSDS 3.1 record, with its current `capacities`. An "
            f"unknown id, a private service's and an id over 36 characters answer alike: "
            f"`404`. The id is matched exactly. {HSDS_OFF}"
        ),
        parameters=(service_id("The service id."),),
        reply=Reply(200, "The service record.", HSDSServiceSchema, HSDS_CACHE),
        problems=(NotFoundError, StorageError),
        error_headers=HSDS_ERROR_HEADERS,
    ),
)

DIRECTORY = Endpoint(
    "get",
    DIRECTORY_PATH,
    "searchDirectory",
    "integrations",
    summary="Search trusted peers' services",
    description=(
        "Searches the capacity documents this node holds from its trusted peers: nothing is "
        "sent to a peer, and criteria are not logged. All parameters are optional and "
        "combined with AND; an empty one is no filter, an unknown one or one given twice "
        "(but `category` and `status`) is refused. Results come best first: fresh before "
        "stale, accepting referrals with capacity, then with a wait, then the rest; then "
        "the most recently verified or updated."
    ),
    scopes=("directory:read",),
    parameters=(
        query(
            "q",
            f"Words (at most {search.MAX_WORDS}), each a prefix, all required.",
            {"type": "string", "maxLength": search.MAX_TEXT},
        ),
        query(
            "category",
            "Taxonomy term code or name; repeat it for any of several.",
            repeated({"type": "string", "maxLength": search.MAX_TAG}, search.MAX_CATEGORIES),
            style="form",
            explode=True,
        ),
        query(
            "language",
            "Language code or name (`ar`, `Arabic`).",
            {"type": "string", "maxLength": search.MAX_TAG},
        ),
        query("age", "Age in years, in the service's age range.", integer(0, search.MAX_AGE)),
        query(
            "area",
            "Words of the service areas or addresses.",
            {"type": "string", "maxLength": search.MAX_TEXT},
        ),
        query(
            "near",
            "`LAT,LON` in decimal degrees; results get `distance_km`.",
            {"type": "string"},
            example="51.5,-0.12",
        ),
        query(
            "radius_km",
            "Only with `near`.",
            {
                "type": "number",
                "minimum": 0.1,
                "maximum": search.MAX_RADIUS_KM,
                "default": search.DEFAULT_RADIUS_KM,
            },
        ),
        query(
            "status",
            "Capacity status; repeat it for any of several.",
            repeated({"type": "string", "enum": list(CAPACITY_STATUSES)}),
            style="form",
            explode=True,
        ),
        query("accepting", "`true`: accepting referrals now; `false`: not.", TRUE_FALSE),
        query("affirming", "`true`: offers affirming care; `false`: does not say so.", TRUE_FALSE),
        query(
            "peer_kind",
            "The peer's organization kind.",
            {"type": "string", "enum": list(ORGANIZATION_KINDS)},
        ),
        query("limit", "Results per page.", integer(1, search.MAX_LIMIT, search.DEFAULT_LIMIT)),
        query("offset", "Results to skip.", integer(0, search.MAX_OFFSET, 0)),
    ),
    reply=Reply(
        200, "A page of results.", DirectoryPageSchema, {"Cache-Control": header("`no-store`.")}
    ),
    problems=(InvalidRequestError, StorageError),
)

SERVICE_ENDPOINTS: tuple[Endpoint, ...] = (*SERVICES, CAPACITY_FEED, *HSDS, DIRECTORY)
