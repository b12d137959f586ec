"""A fault-injecting HTTP proxy on 127.0.0.1, in front of one node's real server.

The node's public URL (its entity identifier) is the proxy's, so its peers sign
and seal for that URL as they would behind any reverse proxy, while the node
itself serves on another port. Requests to the faulted path (the inbox) get the
current mode; everything else is passed through:

- ``pass``: forward, answer with the node's answer;
- ``fail``: do not forward; answer ``status`` with a problem document of ``code``;
- ``hang``: do not forward; say nothing for ``seconds``, then close the connection;
- ``hold``: forward (the node accepts), then keep its answer until :meth:`release`.

An upstream that cannot be reached (the node is stopped) closes the connection
with no answer, as a node that is down would. Every faulted request is logged
with the SHA-256 of its body and what happened to it.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

INBOX = "/federation/v1/inbox"
#: Headers of one hop only (RFC 9110 7.6.1), plus the length, which is set anew.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)
#: The longest a held answer waits for :meth:`FaultProxy.release`.
HOLD_LIMIT_SECONDS = 30.0
#: The signer's key in an HTTP message signature (SPEC 9.1): which peer sent the request.
_KEYID = re.compile(r'keyid="([^"]*)"')


@dataclass(frozen=True)
class Mode:
    name: str = "pass"
    status: int = 0
    code: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class Attempt:
    """One request to the faulted path: when, which body, and what became of it."""

    at: float
    #: The ``keyid`` of the request's signature: the sender's key thumbprint.
    keyid: str
    body_sha256: str
    mode: str
    #: The node's HTTP status (0 when it was not reached) or the status the proxy made up.
    status: int


class FaultProxy:
    """A threaded proxy to ``upstream`` (``http://127.0.0.1:PORT``) listening on ``port``."""

    def __init__(self, upstream: str, port: int, faulted_path: str = INBOX) -> None:
        split = urlsplit(upstream)
        self.upstream_host, self.upstream_port = split.hostname or "127.0.0.1", split.port or 80
        self.faulted_path = faulted_path
        self._mode = Mode()
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._attempts: list[Attempt] = []
        self._held: Counter[str] = Counter()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def close(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # Modes -------------------------------------------------------------------------------

    def pass_through(self) -> None:
        self._set(Mode())

    def fail(self, status: int, code: str = "") -> None:
        self._set(Mode("fail", status=status, code=code))

    def hang(self, seconds: float) -> None:
        self._set(Mode("hang", seconds=seconds))

    def hold(self) -> None:
        self._released.clear()
        self._set(Mode("hold"))

    def release(self) -> None:
        """Let every held answer go (to a sender that may be gone) and pass from now on."""
        self._set(Mode())
        self._released.set()

    def _set(self, mode: Mode) -> None:
        with self._lock:
            self._mode = mode

    # What happened -------------------------------------------------------------------------

    def forget(self) -> None:
        """Start a new log of attempts."""
        with self._lock:
            self._attempts.clear()

    @property
    def attempts(self) -> list[Attempt]:
        with self._lock:
            return list(self._attempts)

    def held(self, keyid: str | None = None) -> int:
        """Answers held now (from the sender signing with ``keyid``, or from anyone):
        accepted by the node, not yet given to the sender."""
        with self._lock:
            return self._held.total() if keyid is None else self._held[keyid]

    def statuses(self) -> Counter[int]:
        return Counter(attempt.status for attempt in self.attempts)

    def forwarded_bodies(self) -> Counter[str]:
        """How often each body reached the node (by SHA-256)."""
        return Counter(a.body_sha256 for a in self.attempts if a.mode in ("pass", "hold"))

    # Serving -------------------------------------------------------------------------------

    def handle(self, request: BaseHTTPRequestHandler, body: bytes) -> None:
        if urlsplit(request.path).path != self.faulted_path:
            self._forward(request, body, None)
            return
        with self._lock:
            mode = self._mode
        if mode.name == "fail":
            self._log(request, body, mode, mode.status)
            _answer_problem(request, mode.status, mode.code)
        elif mode.name == "hang":
            self._log(request, body, mode, 0)
            time.sleep(mode.seconds)
            request.close_connection = True
        else:
            self._forward(request, body, mode)

    def _forward(self, request: BaseHTTPRequestHandler, body: bytes, mode: Mode | None) -> None:
        """Send the request on; ``mode`` is None for a path that is not faulted (not logged)."""
        connection = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=30)
        try:
            headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
            connection.request(request.command, request.path, body=body, headers=headers)
            answer = connection.getresponse()
            answer_body = answer.read()
        except OSError:  # the node is down: the sender sees a closed connection
            self._log(request, body, mode, 0)
            request.close_connection = True
            return
        finally:
            connection.close()
        self._log(request, body, mode, answer.status)
        if mode is not None and mode.name == "hold":
            with self._lock:
                self._held[keyid_of(request)] += 1
            self._released.wait(HOLD_LIMIT_SECONDS)
            with self._lock:
                self._held[keyid_of(request)] -= 1
        request.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in HOP_BY_HOP:
                request.send_header(name, value)
        request.send_header("Content-Length", str(len(answer_body)))
        request.end_headers()
        request.wfile.write(answer_body)

    def _log(
        self, request: BaseHTTPRequestHandler, body: bytes, mode: Mode | None, status: int
    ) -> None:
        if mode is None:
            return
        digest = hashlib.sha256(body).hexdigest()
        attempt = Attempt(time.monotonic(), keyid_of(request), digest, mode.name, status)
        with self._lock:
            self._attempts.append(attempt)


def keyid_of(request: BaseHTTPRequestHandler) -> str:
    found = _KEYID.search(request.headers.get("Signature-Input", ""))
    return found.group(1) if found else ""


def _answer_problem(request: BaseHTTPRequestHandler, status: int, code: str) -> None:
    problem = {
        "type": f"urn:exchange-node:problem:{code or 'about:blank'}",
        "title": "Injected by the fault proxy",
        "status": status,
        "detail": "an answer made up by the test's fault proxy",
    } | ({"code": code} if code else {})
    if code == "illegal_transition":
        problem["allowed"] = []
    body = json.dumps(problem).encode()
    request.send_response(status)
    request.send_header("Content-Type", "application/problem+json")
    request.send_header("Cache-Control", "no-store")
    request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    request.wfile.write(body)


def _handler_for(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            try:
                proxy.handle(self, body)
            except (BrokenPipeError, ConnectionResetError):  # the sender is gone (killed)
                self.close_connection = True

        do_GET = do_POST = do_PUT = do_DELETE = _any

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the test reads :attr:`FaultProxy.attempts`."""

    return Handler
