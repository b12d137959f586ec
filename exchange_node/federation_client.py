"""Requests this node makes to peers: fetching entity configurations, signed calls.

Every call to a peer endpoint is signed with RFC 9421 (the ``exchange`` profile);
a problem-details answer becomes :class:`PeerRefusedError` with the peer's code,
anything that is not the protocol becomes :class:`PeerUnreachableError`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from exchange_node.errors import PeerRefusedError, PeerUnreachableError
from exchange_node.protocol.entity import ENTITY_CONFIGURATION_MEDIA_TYPE, WELL_KNOWN_PATH
from exchange_node.protocol.httpsig import sign_request
from exchange_node.protocol.keys import NodeKey
from exchange_node.protocol.limits import Limits
from exchange_node.transport import HttpResponse, Transport


@dataclass(frozen=True)
class FederationClient:
    transport: Transport
    limits: Limits

    def fetch_entity_configuration(self, entity_id: str) -> str:
        """The compact JWS a node serves at ``/.well-known/openid-federation`` (unverified)."""
        url = entity_id + WELL_KNOWN_PATH
        response = self.transport.send(
            "GET",
            url,
            {"Accept": ENTITY_CONFIGURATION_MEDIA_TYPE},
            b"",
            max_bytes=self.limits.max_token_bytes,
        )
        self._raise_for_problem(url, response)
        try:
            return response.body.decode("ascii").strip()
        except UnicodeDecodeError as e:
            raise PeerUnreachableError(
                f"{entity_id} served an entity configuration that is not text"
            ) from e

    def signed_request(
        self,
        method: str,
        url: str,
        *,
        key: NodeKey,
        now: int,
        body: bytes = b"",
        content_type: str | None = None,
        accept: str = "application/json",
    ) -> HttpResponse:
        """Send a request signed with this node's ``key``; problems become errors."""
        headers = {"Accept": accept}
        if content_type:
            headers["Content-Type"] = content_type
        headers |= sign_request(method, url, headers, body, key=key, now=now, limits=self.limits)
        response = self.transport.send(
            method, url, headers, body, max_bytes=self.limits.max_body_bytes
        )
        self._raise_for_problem(url, response)
        return response

    @staticmethod
    def _raise_for_problem(url: str, response: HttpResponse) -> None:
        if response.status < 400:
            return
        code, detail = "unknown", f"HTTP {response.status}"
        content_type = {k.lower(): v for k, v in response.headers.items()}.get("content-type", "")
        if content_type.startswith("application/problem+json"):
            try:
                problem = json.loads(response.body)
                code = str(problem.get("code", code))[:64]
                detail = str(problem.get("detail", detail))[:300]
            except (ValueError, AttributeError):
                pass
        if response.status >= 500 and code == "unknown":
            raise PeerUnreachableError(f"{url} failed with HTTP {response.status}")
        raise PeerRefusedError(f"{url} refused: {code}: {detail}", code, response.status)
