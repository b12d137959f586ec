"""Endpoints other nodes call: identity, peering requests, how this node sees the caller,
and the capacity document.

Requests from peers are authenticated in one place, :func:`from_trusted_peer`,
which runs :func:`~exchange_node.services.federation_auth.authenticate_peer_request`
on the exact body bytes and the public URL of the endpoint. (The inbox, the busiest
endpoint, makes the same checks in the transaction that stores the message:
:func:`~exchange_node.services.inbox.accept_request`.)
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, request

from exchange_node.node import Node
from exchange_node.protocol.capacity import CAPACITY_MEDIA_TYPE
from exchange_node.protocol.entity import (
    CAPACITY_PATH,
    ENTITY_CONFIGURATION_MEDIA_TYPE,
    WELL_KNOWN_PATH,
)
from exchange_node.protocol.errors import MalformedError
from exchange_node.protocol.statements import PEERING_REQUEST_MEDIA_TYPE
from exchange_node.services import peers, publication
from exchange_node.services.federation_auth import AuthenticatedPeer, authenticate_peer_request
from exchange_node.web.context import current_node

blueprint = Blueprint("federation", __name__)

PeerView = Callable[..., Any]


def public_url(node: Node) -> str:
    """The URL the caller signed: this node's base URL, the path, and the raw query."""
    url = node.settings.url + quote(request.path)
    if request.query_string:
        url += "?" + request.query_string.decode("latin-1")
    return url


def from_trusted_peer(view: PeerView) -> Callable[..., Any]:
    """Run ``view(node, peer, ...)`` only for a request signed by a trusted peer.

    Authentication commits on its own (the nonce is recorded whatever the view does);
    a view that needs the database opens its own session.
    """

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        node = current_node()
        peer = authenticate_peer_request(
            node.database,
            method=request.method,
            url=public_url(node),
            headers=dict(request.headers),
            body=request.get_data(cache=True),
            now=node.now(),
            limits=node.settings.limits,
        )
        return view(node, peer, *args, **kwargs)

    return wrapper


@blueprint.get(WELL_KNOWN_PATH)
def entity_configuration() -> Response:
    """This node's signed entity configuration (OpenID Federation)."""
    node = current_node()
    with node.database.session() as session:
        token = node.entity_configuration(session)
    response = Response(token, content_type=ENTITY_CONFIGURATION_MEDIA_TYPE)
    response.cache_control.public = True
    response.cache_control.max_age = 300
    return response


@blueprint.post("/federation/v1/peering-requests")
def peering_request() -> tuple[dict[str, str], int]:
    """Another node asks to peer; it is listed as pending until an administrator accepts it."""
    if request.mimetype != PEERING_REQUEST_MEDIA_TYPE:
        raise MalformedError(f"Content-Type must be {PEERING_REQUEST_MEDIA_TYPE}")
    node = current_node()
    body = request.get_data(cache=True)
    with node.database.session() as session:
        peer = peers.receive_peering_request(
            node, session, url=public_url(node), headers=dict(request.headers), body=body
        )
        status = peer.status
    return {"entity_id": node.settings.url, "status": status}, 202


@blueprint.get("/federation/v1/peer-status")
@from_trusted_peer
def peer_status(node: Node, peer: AuthenticatedPeer) -> dict[str, str]:
    """How this node sees the (trusted) caller: lets a peer's administrator check the link."""
    return {"entity_id": peer.entity_id, "status": peer.status, "seen_by": node.settings.url}


@blueprint.get(CAPACITY_PATH)
@from_trusted_peer
def capacity_document(node: Node, peer: AuthenticatedPeer) -> Response:
    """This node's signed capacity document (SPEC 4.1); ``304`` when the caller holds it."""
    with node.database.session() as session:
        document = publication.current_document(node, session)
    if request.if_none_match.contains_weak(document.etag.strip('"')):
        response = Response(status=304)
    else:
        response = Response(document.token, content_type=CAPACITY_MEDIA_TYPE)
    response.headers["ETag"] = document.etag
    response.cache_control.private = True
    response.cache_control.no_cache = True
    return response
