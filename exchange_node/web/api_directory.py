"""The local REST API for searching trusted peers' services (scope ``directory:read``).

The search runs on what this node holds (SPEC 4.1): no criterion is sent to a
peer, and none is logged (a refusal logs only its code, never the query string).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from exchange_node.services import directory_search
from exchange_node.services.clients import ApiClient
from exchange_node.web.context import current_node
from exchange_node.web.directory_schemas import load_directory_query, page_json
from exchange_node.web.oauth import require_scope

blueprint = Blueprint("api_directory", __name__)

DIRECTORY_PATH = "/api/v1/directory"


@blueprint.get(DIRECTORY_PATH)
@require_scope("directory:read")
def search_directory(client: ApiClient) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Services of trusted peers matching the query parameters, best first, one page."""
    query = load_directory_query(request.args)
    node = current_node()
    with node.database.session() as session:
        page = directory_search.search(session, query, now=node.now())
    return page_json(page), 200, {"Cache-Control": "no-store"}
