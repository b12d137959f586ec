"""The outbound transport's guard against server-side request forgery, and error shapes."""

from __future__ import annotations

import pytest

from exchange_node.errors import (
    ConfigurationError,
    ExchangeError,
    InvalidRequestError,
    PeerUnreachableError,
)
from exchange_node.transport import RequestsTransport
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
