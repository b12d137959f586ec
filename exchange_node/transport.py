"""How this node talks to peers over HTTP: one small interface, two implementations.

:class:`HttpTransport` is the real one (no redirects, a timeout, the response
read with a size cap, connections kept alive across requests). Tests use
:class:`WsgiTransport`, which hands requests straight to peer apps in the same
process, so node-to-node behaviour is tested without sockets. Neither signs
anything; the federation client does.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.client import HTTPException
from typing import Any, Protocol
from urllib.parse import urlsplit

import certifi
import urllib3

from exchange_node.errors import PeerUnreachableError


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes


class Transport(Protocol):
    def send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes, *, max_bytes: int
    ) -> HttpResponse: ...


class HttpTransport:
    """Real HTTP with ``urllib3``: redirects refused, responses capped at ``max_bytes``.

    Unless ``allow_private`` is set, a host that resolves to a private, loopback,
    link-local or otherwise non-global address is refused: the peering endpoint fetches
    a URL named by an unverified request, and must not be turned against the node's own
    network (server-side request forgery). The check runs before each request.

    One pool manager serves every thread (it is thread-safe), so connections to a peer
    are kept alive and reused across requests, threads and delivery batches, up to
    ``connections_per_host`` idle ones per peer. ``urllib3`` rather than a ``requests``
    session: the session's request preparation cost about as much CPU as the signature.
    Nothing is read from the environment (no proxies, no ``.netrc``).
    """

    def __init__(
        self, timeout: float, *, allow_private: bool = False, connections_per_host: int = 16
    ) -> None:
        self.timeout = timeout
        self.allow_private = allow_private
        self._pool = urllib3.PoolManager(
            num_pools=64,
            maxsize=connections_per_host,
            retries=False,
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
            ca_certs=certifi.where(),
        )

    def send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes, *, max_bytes: int
    ) -> HttpResponse:
        if not self.allow_private:
            _refuse_private(url)
        try:
            response = self._pool.request(
                method,
                url,
                body=body or None,
                headers=dict(headers),
                redirect=False,
                preload_content=False,
            )
            try:
                content = bytearray()
                for chunk in response.stream(65_536):
                    content += chunk
                    if len(content) > max_bytes:
                        response.close()  # the connection is closed, not read to the end
                        raise PeerUnreachableError(
                            f"{_origin(url)} answered with more than {max_bytes} bytes"
                        )
                return HttpResponse(response.status, dict(response.headers), bytes(content))
            finally:
                response.release_conn()
        except (urllib3.exceptions.HTTPError, HTTPException, OSError) as e:
            raise PeerUnreachableError(
                f"{_origin(url)} cannot be reached: {type(e).__name__}"
            ) from e

    def close(self) -> None:
        """Close the idle connections (the transport can still be used afterwards)."""
        self._pool.clear()


#: The name the node and older callers use.
RequestsTransport = HttpTransport


@dataclass
class WsgiTransport:
    """Deliver requests to in-process WSGI apps by origin, for tests without sockets."""

    apps: dict[str, Callable[..., Any]] = field(default_factory=dict)

    def send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes, *, max_bytes: int
    ) -> HttpResponse:
        from werkzeug.test import Client

        app = self.apps.get(_origin(url))
        if app is None:
            raise PeerUnreachableError(f"{_origin(url)} cannot be reached: no such node")
        parts = urlsplit(url)
        response = Client(app).open(
            parts.path,
            method=method,
            headers=dict(headers),
            data=body,
            base_url=f"{parts.scheme}://{parts.netloc}",
            query_string=parts.query,
        )
        data = response.get_data()
        if len(data) > max_bytes:
            raise PeerUnreachableError(f"{_origin(url)} answered with more than {max_bytes} bytes")
        return HttpResponse(response.status_code, dict(response.headers), data)


def _refuse_private(url: str) -> None:
    host = urlsplit(url).hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (OSError, UnicodeError) as e:
        raise PeerUnreachableError(f"{_origin(url)} cannot be resolved") from e
    for address in addresses:
        if not ipaddress.ip_address(str(address).split("%")[0]).is_global:
            raise PeerUnreachableError(
                f"{_origin(url)} resolves to a non-public address; refusing to connect "
                "(set EXCHANGE_ALLOW_PRIVATE_PEERS=1 for peers on a private network)"
            )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
