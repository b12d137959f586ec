"""The outbound transport: the guard against server-side request forgery, kept-alive
connections, the size cap, and error shapes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from exchange_node.errors import (
    ConfigurationError,
    ExchangeError,
    InvalidRequestError,
    PeerUnreachableError,
)
from exchange_node.transport import HttpTransport, RequestsTransport
from tests.node.conftest import Federation


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/.well-known/openid-federation",
        "https://10.1.2.3/.well-known/openid-federation",
        "https://192.168.0.10/x",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/x",
        "https://localhost/x",
    ],
)
def test_non_public_addresses_are_refused_before_connecting(url: str) -> None:
    transport = RequestsTransport(timeout=0.5)
    with pytest.raises(PeerUnreachableError, match="non-public address"):
        transport.send("GET", url, {}, b"", max_bytes=1024)


def test_the_guard_can_be_lifted_for_private_networks(federation: Federation) -> None:
    clinic = federation.add("clinic")
    assert clinic.node.settings.allow_private_peers is False
    lifted = RequestsTransport(timeout=0.2, allow_private=True)
    with pytest.raises(PeerUnreachableError, match="cannot be reached"):  # it did try to connect
        lifted.send("GET", "http://127.0.0.1:9/", {}, b"", max_bytes=1024)


def test_errors_take_the_problem_shape_of_the_spec() -> None:
    error = InvalidRequestError("bad", {"email": "not an e-mail address", "/scopes": ["a", "b"]})
    assert error.fields == {"/email": ["not an e-mail address"], "/scopes": ["a", "b"]}
    assert error.to_problem()["errors"] == error.fields


def test_server_errors_reveal_no_details(federation: Federation) -> None:
    clinic = federation.add("clinic")

    @clinic.app.get("/boom")
    def boom() -> None:
        raise ConfigurationError("cannot read /secret/path/keys.jwk")

    response = clinic.client().get("/boom")
    assert response.status_code == 500
    problem = response.get_json()
    assert problem["code"] == "configuration"
    assert "/secret" not in problem["detail"]
    assert issubclass(ConfigurationError, ExchangeError)


class _Inbox(BaseHTTPRequestHandler):
    """Answers every POST with its body's length; counts the connections it accepted."""

    protocol_version = "HTTP/1.1"  # keep-alive
    connections: list[int] = []  # noqa: RUF012 - one server per test, reset by the fixture

    def setup(self) -> None:
        super().setup()
        self.connections.append(1)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        answer = b"x" * len(body)
        self.send_response(202)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def inbox_url() -> Iterator[str]:
    _Inbox.connections = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Inbox)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/inbox"
    server.shutdown()
    server.server_close()


def test_connections_are_kept_alive_across_requests_and_threads(inbox_url: str) -> None:
    transport = HttpTransport(timeout=5, allow_private=True)

    def post(size: int) -> None:
        response = transport.send("POST", inbox_url, {}, b"a" * size, max_bytes=1024)
        assert (response.status, response.body) == (202, b"x" * size)

    post(10)
    for size in (20, 30):  # one thread after another, as in successive delivery batches
        thread = threading.Thread(target=post, args=(size,))
        thread.start()
        thread.join()
    assert len(_Inbox.connections) == 1
    transport.close()


def test_an_answer_over_the_cap_is_not_read(inbox_url: str) -> None:
    transport = HttpTransport(timeout=5, allow_private=True)
    with pytest.raises(PeerUnreachableError, match="more than 100 bytes"):
        transport.send("POST", inbox_url, {}, b"a" * 200, max_bytes=100)
    assert transport.send("POST", inbox_url, {}, b"a", max_bytes=100).body == b"x"
