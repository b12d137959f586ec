"""How this node talks to peers over HTTP: one small interface, two implementations.

:class:`RequestsTransport` is the real one (no redirects, a timeout, and the
response read with a size cap). Tests use :class:`WsgiTransport`, which hands
requests straight to peer apps in the same process, so node-to-node behaviour
is tested without sockets. Neither signs anything; the federation client does.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests

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


class RequestsTransport:
    """Real HTTP with ``requests``: redirects refused, responses capped at ``max_bytes``.

    Unless ``allow_private`` is set, a host that resolves to a private, loopback,
    link-local or otherwise non-global address is refused: the peering endpoint fetches
    a URL named by an unverified request, and must not be turned against the node's own
    network (server-side request forgery). The check runs before each request.
    Each thread has its own ``requests`` session (the directory sync polls peers from
    several threads, and a session is not documented as thread-safe).
    """

    def __init__(self, timeout: float, *, allow_private: bool = False) -> None:
        self.timeout = timeout
        self.allow_private = allow_private
        self._local = threading.local()

    @property
    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.trust_env = False  # no proxies or .netrc from the environment
        return session

    def send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes, *, max_bytes: int
    ) -> HttpResponse:
        if not self.allow_private:
            _refuse_private(url)
        try:
            with self._session.request(
                method,
                url,
                headers=dict(headers),
                data=body or None,
                timeout=self.timeout,
                allow_redirects=False,
                stream=True,
            ) as response:
                content = bytearray()
                for chunk in response.iter_content(chunk_size=65_536):
                    content += chunk
                    if len(content) > max_bytes:
                        raise PeerUnreachableError(
                            f"{_origin(url)} answered with more than {max_bytes} bytes"
                        )
                return HttpResponse(response.status_code, dict(response.headers), bytes(content))
        except requests.RequestException as e:
            raise PeerUnreachableError(
                f"{_origin(url)} cannot be reached: {type(e).__name__}"
            ) from e


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
