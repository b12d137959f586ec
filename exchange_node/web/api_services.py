"""The local REST API for this node's services and their capacity (scope capacity:write).

For integrations that push services and capacity from their own systems. Bodies are
HSDS 3.1 service records (or, for capacity, :class:`CapacityBodySchema`); the query
parameter ``public=true|false`` says whether a service is listed on the open HSDS
endpoint. Views are thin: the catalog checks and stores; errors leave as problem details.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, jsonify, request

from exchange_node.errors import InvalidRequestError
from exchange_node.services import catalog, service_capacity
from exchange_node.services.clients import ApiClient
from exchange_node.web.context import current_node
from exchange_node.web.oauth import require_scope
from exchange_node.web.service_schemas import CapacityBodySchema, load_body

blueprint = Blueprint("api_services", __name__)
log = logging.getLogger("exchange_node.web")

SERVICES_PATH = "/api/v1/services"
_SCOPE = "capacity:write"
_BOOLEANS = {"true": True, "false": False}


@blueprint.get(SERVICES_PATH)
@require_scope(_SCOPE)
def list_services(client: ApiClient) -> dict[str, Any]:
    """Every service of this node, with its capacity."""
    node = current_node()
    with node.database.session() as session:
        return {"services": [catalog.describe_service(s) for s in catalog.list_services(session)]}


@blueprint.post(SERVICES_PATH)
@require_scope(_SCOPE)
def add_service(client: ApiClient) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Add a service from an HSDS record (an id is made if it has none): 201 with Location."""
    node = current_node()
    body, public = _json_body(), _public()
    with node.database.session() as session:
        added = catalog.describe_service(
            catalog.add_service(node, session, body, public=bool(public), actor=_actor(client))
        )
    service_id = added["service"]["id"]
    log.info("service %s added by client %s", service_id, client.client_id)
    return added, 201, {"Location": f"{node.settings.url}{SERVICES_PATH}/{service_id}"}


@blueprint.get(f"{SERVICES_PATH}/<service_id>")
@require_scope(_SCOPE)
def show_service(client: ApiClient, service_id: str) -> dict[str, Any]:
    node = current_node()
    with node.database.session() as session:
        return catalog.describe_service(catalog.get_service(session, service_id))


@blueprint.put(f"{SERVICES_PATH}/<service_id>")
@require_scope(_SCOPE)
def replace_service(client: ApiClient, service_id: str) -> dict[str, Any]:
    """Replace a service's record (its id stays; without ``capacities`` it keeps its own)."""
    node = current_node()
    body, public = _json_body(), _public()
    with node.database.session() as session:
        replaced = catalog.replace_service(
            node, session, service_id, body, public=public, actor=_actor(client)
        )
        log.info("service %s replaced by client %s", replaced.id, client.client_id)
        return catalog.describe_service(replaced)


@blueprint.delete(f"{SERVICES_PATH}/<service_id>")
@require_scope(_SCOPE)
def remove_service(client: ApiClient, service_id: str) -> Response:
    node = current_node()
    with node.database.session() as session:
        catalog.remove_service(session, service_id, node.now(), actor=_actor(client))
    log.info("service %s removed by client %s", service_id[:36], client.client_id)
    return Response(status=204)


@blueprint.put(f"{SERVICES_PATH}/<service_id>/capacity")
@require_scope(_SCOPE)
def set_capacity(client: ApiClient, service_id: str) -> dict[str, Any]:
    """Replace a service's capacity as a whole (see :class:`CapacityBodySchema`)."""
    body = load_body(CapacityBodySchema(), _json_body())
    change = service_capacity.CapacityChange(
        status=body["status"],
        accepting_referrals=body["accepting_referrals"],
        wait_days=body.get("wait_days"),
        notes=body.get("notes"),
        intake_fields=tuple(body.get("intake_fields", ())),
        numbers=tuple(
            service_capacity.CapacityNumbers(
                unit=n["unit"],
                available=n["available"],
                maximum=n.get("maximum"),
                description=n.get("description"),
            )
            for n in body.get("capacities", ())
        ),
        verified=body.get("verified", False),
    )
    node = current_node()
    with node.database.session() as session:
        changed = service_capacity.set_capacity(
            session, service_id, change, node.now(), actor=_actor(client)
        )
        return catalog.describe_service(changed)


@blueprint.post(f"{SERVICES_PATH}/import")
@require_scope(_SCOPE)
def import_services(client: ApiClient) -> Any:
    """Add or update many services at once, or none (same shapes as ``service import``)."""
    node = current_node()
    body, public = _json_body(), _public()
    with node.database.session() as session:
        result = catalog.import_services(
            node, session, body, public=bool(public), actor=_actor(client)
        )
    log.info(
        "import by client %s: %d added, %d updated",
        client.client_id,
        len(result.added),
        len(result.updated),
    )
    return jsonify(added=list(result.added), updated=list(result.updated))


def _json_body() -> Any:
    if not request.is_json:
        raise InvalidRequestError(
            "the body must be JSON, sent with Content-Type: application/json",
            {"": "not JSON"},
        )
    body = request.get_json(silent=True)
    if body is None:
        raise InvalidRequestError("the body is not valid JSON", {"": "not JSON"})
    return body


def _public() -> bool | None:
    """The ``public`` query parameter: ``true``, ``false``, or absent (``None``)."""
    value = request.args.get("public")
    if value is None:
        return None
    if value not in _BOOLEANS:
        raise InvalidRequestError(
            "the query parameter public is true or false", {"/query/public": "not a boolean"}
        )
    return _BOOLEANS[value]


def _actor(client: ApiClient) -> str:
    """Who the audit log says acted: the integration client."""
    return f"api:{client.client_id}"
