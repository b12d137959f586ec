"""``POST /oauth/token`` (client credentials) and bearer-token protection of the local API."""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, text
from werkzeug.test import TestResponse

from exchange_node.db.models import AccessToken
from exchange_node.services import clients
from exchange_node.services.clients import ApiClient
from exchange_node.web.oauth import require_scope

if TYPE_CHECKING:  # imported at run time, pytest would try to collect the classes
    from tests.node.conftest import Federation, TestClock, TestNode

ALL_SCOPES = ["capacity:write", "referrals:read", "referrals:write"]

MakeClient = Callable[..., tuple[str, str]]


@pytest.fixture
def clinic_node(federation: Federation) -> TestNode:
    return federation.add("clinic")


@pytest.fixture
def http(clinic_node: TestNode) -> FlaskClient:
    return clinic_node.client()


@pytest.fixture
def make_client(clinic_node: TestNode) -> MakeClient:
    """Add a client with ``scopes``; returns its ``(client_id, secret)``."""

    def make(scopes: list[str] = ALL_SCOPES, name: str = "Bed board") -> tuple[str, str]:
        with clinic_node.node.database.session() as session:
            client, secret = clients.add_client(session, name, scopes, clinic_node.node.now())
        return client.client_id, secret

    return make


def request_token(
    http: FlaskClient,
    client_id: str,
    secret: str,
    *,
    auth: str = "basic",
    scope: str | None = None,
) -> TestResponse:
    form = {"grant_type": "client_credentials"}
    if scope is not None:
        form["scope"] = scope
    headers = {}
    if auth == "basic":
        credentials = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        headers["Authorization"] = f"Basic {credentials}"
    else:
        form |= {"client_id": client_id, "client_secret": secret}
    return http.post("/oauth/token", data=form, headers=headers)


def get_token(http: FlaskClient, client_id: str, secret: str, **kwargs: Any) -> str:
    response = request_token(http, client_id, secret, **kwargs)
    assert response.status_code == 200, response.json
    token: str = response.json["access_token"]  # type: ignore[index]
    return token


def whoami(http: FlaskClient, token: str | None) -> TestResponse:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return http.get("/api/v1/whoami", headers=headers)


@pytest.mark.parametrize("auth", ["basic", "post"])
def test_token_for_client_credentials(
    clinic_node: TestNode, http: FlaskClient, make_client: MakeClient, auth: str
) -> None:
    client_id, secret = make_client(["capacity:write", "referrals:read"])
    response = request_token(http, client_id, secret, auth=auth)
    assert response.status_code == 200, response.json
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json
    assert body is not None
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == clinic_node.node.settings.access_token_seconds
    assert body["scope"] == "capacity:write referrals:read"
    assert "refresh_token" not in body
    answer = whoami(http, body["access_token"])
    assert answer.status_code == 200
    assert answer.json == {"client": "Bed board", "scopes": ["capacity:write", "referrals:read"]}


@pytest.mark.parametrize("auth", ["basic", "post"])
def test_wrong_secret_is_401_invalid_client(
    http: FlaskClient, make_client: MakeClient, auth: str
) -> None:
    client_id, secret = make_client()
    response = request_token(http, client_id, secret[:-1] + "x", auth=auth)
    assert response.status_code == 401
    assert response.json is not None
    assert response.json["error"] == "invalid_client"
    assert response.headers["Content-Type"] == "application/json"


def test_unknown_client_is_401_invalid_client(http: FlaskClient) -> None:
    response = request_token(http, "no-such-client", "whatever")
    assert response.status_code == 401
    assert response.json is not None
    assert response.json["error"] == "invalid_client"


def test_revoked_client_gets_no_token_and_its_tokens_stop(
    clinic_node: TestNode, http: FlaskClient, make_client: MakeClient
) -> None:
    client_id, secret = make_client()
    token = get_token(http, client_id, secret)
    assert whoami(http, token).status_code == 200
    with clinic_node.node.database.session() as session:
        clients.revoke_client(session, client_id, clinic_node.node.now())
    assert whoami(http, token).status_code == 401
    response = request_token(http, client_id, secret)
    assert response.status_code == 401
    assert response.json is not None
    assert response.json["error"] == "invalid_client"


@pytest.mark.parametrize(
    ("requested", "granted"),
    [
        (None, "capacity:write referrals:read"),
        ("referrals:read", "referrals:read"),
        ("referrals:read capacity:write", "capacity:write referrals:read"),
    ],
)
def test_scope_is_what_was_requested_of_what_the_client_holds(
    http: FlaskClient, make_client: MakeClient, requested: str | None, granted: str
) -> None:
    client_id, secret = make_client(["capacity:write", "referrals:read"])
    response = request_token(http, client_id, secret, scope=requested)
    assert response.status_code == 200, response.json
    assert response.json is not None
    assert response.json["scope"] == granted


SCOPES_TEXT = "capacity:write directory:read referrals:read referrals:write"


@pytest.mark.parametrize(
    ("requested", "description"),
    [
        ("referrals:write", "this client may request only: referrals:read"),
        ("referrals:read referrals:write", "this client may request only: referrals:read"),
        ("capacity:read", f"the scopes are: {SCOPES_TEXT}"),
        ('"odd\\scope"', f"the scopes are: {SCOPES_TEXT}"),
    ],
)
def test_scopes_the_client_lacks_are_invalid_scope(
    clinic_node: TestNode,
    http: FlaskClient,
    make_client: MakeClient,
    requested: str,
    description: str,
) -> None:
    client_id, secret = make_client(["referrals:read"])
    response = request_token(http, client_id, secret, scope=requested)
    assert response.status_code == 400
    assert response.json == {"error": "invalid_scope", "error_description": description}
    with clinic_node.node.database.session() as session:
        assert session.scalars(select(AccessToken)).all() == []


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"grant_type": "password", "username": "a", "password": "b"}, "unsupported_grant_type"),
        ({"grant_type": "authorization_code", "code": "x"}, "unsupported_grant_type"),
        ({}, "unsupported_grant_type"),
        ({"grant_type": "client_credentials"}, "invalid_client"),
    ],
)
def test_other_requests_get_rfc6749_errors(
    http: FlaskClient, form: dict[str, str], error: str
) -> None:
    response = http.post("/oauth/token", data=form)
    assert response.status_code in (400, 401)
    assert response.json is not None
    assert response.json["error"] == error
    assert "Traceback" not in response.get_data(as_text=True)


def test_tokens_expire_on_the_node_clock(
    clinic_node: TestNode, http: FlaskClient, make_client: MakeClient, clock: TestClock
) -> None:
    token = get_token(http, *make_client())
    clock.advance(clinic_node.node.settings.access_token_seconds - 1)
    assert whoami(http, token).status_code == 200
    clock.advance(1)
    expired = whoami(http, token)
    assert expired.status_code == 401
    assert expired.json is not None
    assert expired.json["code"] == "unauthorized"
    assert "expired" in expired.json["detail"]
    assert expired.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_expired_tokens_are_deleted_when_new_ones_are_issued(
    clinic_node: TestNode, http: FlaskClient, make_client: MakeClient, clock: TestClock
) -> None:
    client_id, secret = make_client()
    old = get_token(http, client_id, secret)
    clock.advance(clinic_node.node.settings.access_token_seconds)
    new = get_token(http, client_id, secret)
    with clinic_node.node.database.session() as session:
        hashes = session.scalars(select(AccessToken.token_hash)).all()
    assert hashes == [hashlib.sha256(new.encode()).hexdigest()]
    assert old != new


@pytest.mark.parametrize(
    ("authorization", "detail"),
    [
        (None, "this endpoint needs a bearer token"),
        ("Basic YTpi", "the Authorization header must be 'Bearer TOKEN'"),
        ("Bearer", "the Authorization header must be 'Bearer TOKEN'"),
        ("Bearer not a token", "the Authorization header must be 'Bearer TOKEN'"),
        ("Bearer unknown-token", "unknown access token"),
    ],
)
def test_whoami_without_a_valid_token_is_a_401_problem(
    http: FlaskClient, authorization: str | None, detail: str
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = http.get("/api/v1/whoami", headers=headers)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json is not None
    assert response.json["code"] == "unauthorized"
    assert response.json["detail"].startswith(detail)


def test_require_scope_passes_the_client_or_answers_403(
    clinic_node: TestNode, make_client: MakeClient
) -> None:
    @clinic_node.app.post("/test/referrals")
    @require_scope("referrals:write")
    def create_referral(client: ApiClient) -> dict[str, Any]:
        return {"client_id": client.client_id, "scopes": list(client.scopes)}

    http = clinic_node.client()
    writer_id, writer_secret = make_client(["referrals:write"], "Writer")
    reader_id, reader_secret = make_client(["referrals:read"], "Reader")
    allowed = http.post(
        "/test/referrals",
        headers={"Authorization": f"Bearer {get_token(http, writer_id, writer_secret)}"},
    )
    assert allowed.status_code == 200
    assert allowed.json == {"client_id": writer_id, "scopes": ["referrals:write"]}
    refused = http.post(
        "/test/referrals",
        headers={"Authorization": f"bearer  {get_token(http, reader_id, reader_secret)}"},
    )
    assert refused.status_code == 403
    assert refused.mimetype == "application/problem+json"
    assert refused.json is not None
    assert refused.json["code"] == "insufficient_scope"
    assert "referrals:write" in refused.json["detail"]
    assert refused.headers["WWW-Authenticate"] == (
        'Bearer error="insufficient_scope", scope="referrals:write"'
    )


def test_require_scope_refuses_an_unknown_scope_name() -> None:
    with pytest.raises(ValueError, match="unknown scope 'referrals:delete'"):
        require_scope("referrals:delete")


def test_tokens_are_stored_only_as_their_sha256(
    clinic_node: TestNode, http: FlaskClient, make_client: MakeClient
) -> None:
    client_id, secret = make_client(["referrals:read"])
    token = get_token(http, client_id, secret)
    with clinic_node.node.database.session() as session:
        rows = session.execute(text("SELECT * FROM access_tokens")).all()
        stored_clients = session.execute(text("SELECT * FROM oauth_clients")).all()
    assert len(rows) == 1
    assert token not in repr(rows)
    assert secret not in repr(stored_clients)
    assert rows[0].token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert rows[0].issued_at == clinic_node.node.now()
    assert rows[0].expires_at == rows[0].issued_at + clinic_node.node.settings.access_token_seconds


def test_neither_token_nor_secret_reaches_the_logs(
    http: FlaskClient, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client_id, secret = make_client()
    token = get_token(http, client_id, secret)
    whoami(http, token)
    request_token(http, client_id, "wrong")
    assert token not in caplog.text
    assert secret not in caplog.text


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("http://127.0.0.1:8040", 200),
        ("http://localhost:8040", 200),
        ("https://clinic.example", 200),
        ("http://clinic.example", 400),
    ],
)
def test_token_endpoint_needs_https_except_on_loopback(
    clinic_node: TestNode, make_client: MakeClient, url: str, status: int
) -> None:
    clinic_node.node.settings = replace(clinic_node.node.settings, url=url)
    http = clinic_node.client()
    response = request_token(http, *make_client())
    assert response.status_code == status
    if status == 400:
        assert response.json == {
            "error": "insecure_transport",
            "error_description": "OAuth 2 MUST utilize https.",
        }


def test_the_socket_url_does_not_matter_behind_a_tls_proxy(
    http: FlaskClient, make_client: MakeClient
) -> None:
    """The public URL is https; the request reached the node over plain http on another host."""
    response = request_token(http, *make_client())
    assert response.status_code == 200
    on_a_lan_address = http.post(
        "/oauth/token",
        base_url="http://10.0.0.5:8040",
        data={"grant_type": "client_credentials"},
    )
    assert on_a_lan_address.json is not None
    assert on_a_lan_address.json["error"] == "invalid_client"  # not insecure_transport
