"""``POST /federation/v1/inbox``: sealed messages from trusted peers (SPEC 7).

The request is authenticated first (SPEC 7.2 steps 1-6, :func:`from_trusted_peer`);
then its media type is checked (step 7) and the exact body bytes go to
:func:`~exchange_node.services.inbox.accept_envelope`, which answers with the receipt.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from exchange_node.node import Node
from exchange_node.protocol.envelope import ENVELOPE_MEDIA_TYPE
from exchange_node.protocol.errors import MalformedError
from exchange_node.protocol.statements import RECEIPT_MEDIA_TYPE
from exchange_node.services.federation_auth import AuthenticatedPeer
from exchange_node.services.inbox import accept_envelope
from exchange_node.web.federation import from_trusted_peer

blueprint = Blueprint("inbox", __name__)

INBOX_PATH = "/federation/v1/inbox"


@blueprint.post(INBOX_PATH)
@from_trusted_peer
def inbox(node: Node, peer: AuthenticatedPeer) -> Response:
    """Accept a sealed message; ``202`` with the signed receipt (SPEC 7.4)."""
    if request.mimetype != ENVELOPE_MEDIA_TYPE:
        raise MalformedError(f"Content-Type must be {ENVELOPE_MEDIA_TYPE}")
    receipt = accept_envelope(node, peer, request.get_data(cache=True), now=node.now())
    response = Response(receipt, status=202, content_type=RECEIPT_MEDIA_TYPE)
    response.cache_control.no_store = True
    return response
