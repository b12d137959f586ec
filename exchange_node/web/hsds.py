"""The open HSDS 3.1 API: this node's public services, for Open Referral tools.

Served only when the node's ``public_hsds`` setting is on, and then only the services
marked public; everything else answers ``404`` as an unknown path would. It is
read-only, without authentication, and open to browser-based tools (CORS ``*``). It
implements the API root, the paginated service list and the service by id of the HSDS
3.1 OpenAPI description; its other paths and filters are not offered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, request

from exchange_node.errors import InvalidRequestError, NotFoundError
from exchange_node.hsds import HSDS_VERSION
from exchange_node.services import publication
from exchange_node.services.publication import PublicServicePage
from exchange_node.web.context import current_node

blueprint = Blueprint("hsds", __name__, url_prefix="/hsds")

HSDS_PROFILE = "https://openreferral.org/specification/3.1"
HSDS_OPENAPI_URL = (
    "https://raw.githubusercontent.com/openreferral/specification/3.1/schema/openapi.json"
)
#: Members of a service in a list: its one-to-one fields, as HSDS 3.1 ``service_list`` has them.
LIST_MEMBERS = (
    "id",
    "organization_id",
    "program_id",
    "name",
    "alternate_name",
    "description",
    "url",
    "email",
    "status",
    "interpretation_services",
    "application_process",
    "fees_description",
    "wait_time",
    "fees",
    "accreditations",
    "eligibility_description",
    "minimum_age",
    "maximum_age",
    "assured_date",
    "assurer_email",
    "licenses",
    "alert",
    "last_modified",
    "organization",
    "program",
)
DEFAULT_PAGE = 1
DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 100
MAX_PAGE = 1_000_000
CACHE_SECONDS = 300


@blueprint.before_request
def require_public_hsds() -> None:
    if not current_node().settings.public_hsds:
        raise NotFoundError("this node serves no open HSDS API")


@blueprint.after_request
def open_to_browsers(response: Response) -> Response:
    """Public, read-only data: any origin may read it; a success may be cached a while."""
    response.headers["Access-Control-Allow-Origin"] = "*"
    if response.status_code == 200:
        response.cache_control.public = True
        response.cache_control.max_age = CACHE_SECONDS
    return response


@blueprint.get("/")
def api_root() -> dict[str, str]:
    """What this API is: the HSDS version and profile, and where its OpenAPI lives."""
    return {"version": HSDS_VERSION, "profile": HSDS_PROFILE, "openapi_url": HSDS_OPENAPI_URL}


@blueprint.get("/services")
def list_services() -> dict[str, Any]:
    """The public services, a page at a time, as HSDS 3.1 lists them."""
    arguments = _list_arguments()
    node = current_node()
    with node.database.session() as session:
        found = publication.list_public_services(
            session, page=arguments.page, per_page=arguments.per_page, search=arguments.search
        )
    return _page_document(found, full=arguments.full)


@blueprint.get("/services/<service_id>")
def show_service(service_id: str) -> dict[str, Any]:
    """One public service, fully nested, with its current capacities."""
    node = current_node()
    with node.database.session() as session:
        return publication.get_public_service(session, service_id)


@dataclass(frozen=True)
class ListArguments:
    page: int
    per_page: int
    full: bool
    search: str | None


def _list_arguments() -> ListArguments:
    """The list's query parameters, checked.

    Raises:
        InvalidRequestError: naming each bad parameter and its rule.
    """
    problems: dict[str, str] = {}
    page = _integer("page", 1, MAX_PAGE, DEFAULT_PAGE, problems)
    per_page = _integer("per_page", 1, MAX_PER_PAGE, DEFAULT_PER_PAGE, problems)
    full = request.args.get("full", "false").lower()
    if full not in ("true", "false"):
        problems["full"] = "must be true or false"
    search = request.args.get("search", "").strip()
    if len(search) > publication.MAX_SEARCH_LENGTH:
        problems["search"] = f"must be at most {publication.MAX_SEARCH_LENGTH} characters"
    if problems:
        raise InvalidRequestError(
            "invalid " + "; ".join(f"{name}: {rule}" for name, rule in problems.items()),
            problems,
        )
    return ListArguments(page, per_page, full == "true", search or None)


def _integer(name: str, low: int, high: int, default: int, problems: dict[str, str]) -> int:
    text = request.args.get(name)
    if text is None:
        return default
    too_long = len(text) > len(str(high))  # int() of a huge text is slow, then refused
    if too_long or not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        problems[name] = f"must be an integer from {low} to {high}"
        return default
    return int(text)


def _page_document(found: PublicServicePage, *, full: bool) -> dict[str, Any]:
    """The HSDS 3.1 ``Page`` members and its ``contents``."""
    contents = [
        record if full else {name: record[name] for name in LIST_MEMBERS if name in record}
        for record in found.records
    ]
    return {
        "total_items": found.total_items,
        "total_pages": found.total_pages,
        "page_number": found.page_number,
        "size": len(contents),
        "first_page": found.page_number == 1,
        "last_page": found.page_number >= found.total_pages,
        "empty": not contents,
        "contents": contents,
    }
