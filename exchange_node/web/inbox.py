"""``POST /federation/v1/inbox``: sealed messages from trusted peers (SPEC 7).

The exact request (the public URL, headers and body bytes) goes to
:func:`~exchange_node.services.inbox.accept_request`, which authenticates it (SPEC 7.2
steps 1-6, as :func:`~exchange_node.web.federation.from_trusted_peer` does for other
endpoints), checks its media type (step 7) and accepts the envelope in the same
transaction, answering with the receipt.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from exchange_node.protocol.statements import RECEIPT_MEDIA_TYPE
from exchange_node.services.federation_auth import PeerRequest
from exchange_node.services.inbox import accept_request
from exchange_node.web.context import current_node
from exchange_node.web.federation import public_url

blueprint = Blueprint("inbox", __name__)

INBOX_PATH = "/federation/v1/inbox"


@blueprint.post(INBOX_PATH)
def inbox() -> Response:
    """Accept a sealed message; ``202`` with the signed receipt (SPEC 7.4)."""
    node = current_node()
    signed = PeerRequest(
        request.method, public_url(node), dict(request.headers), request.get_data(cache=True)
    )
    receipt = accept_request(node, signed, media_type=request.mimetype, now=node.now())
    response = Response(receipt, status=202, content_type=RECEIPT_MEDIA_TYPE)
    response.cache_control.no_store = True
    return response
