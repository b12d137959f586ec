"""OAuth 2 for integrations: the token endpoint, and bearer tokens on the local REST API.

``POST /oauth/token`` runs authlib's authorization server with the
client-credentials grant only (client authentication ``client_secret_basic``
or ``client_secret_post``) and answers in RFC 6749's JSON error shape, which
is what OAuth clients expect. API views are protected by :func:`require_scope`
(or :func:`require_token`), which answer in RFC 9457 problem details like the
rest of the node. Storage and checks live in :mod:`exchange_node.services.clients`.

HTTPS: authlib refuses plain-HTTP token requests. It is given the node's
public URL (``settings.url``) rather than the URL the socket saw, so a node
behind a TLS-terminating proxy works, a node whose public URL is plain HTTP on
a loopback address (a laptop, tests) works through authlib's own loopback
exception (RFC 8252), and any other plain-HTTP node refuses with
``insecure_transport``. No environment variable is set or needed.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any, ClassVar

from authlib.integrations.flask_oauth2 import (  # type: ignore[import-untyped]
    AuthorizationServer,
)
from authlib.integrations.flask_oauth2.requests import (  # type: ignore[import-untyped]
    FlaskOAuth2Payload,
    FlaskOAuth2Request,
)
from authlib.oauth2.rfc6749 import (  # type: ignore[import-untyped]
    ClientMixin,
    InvalidScopeError,
    OAuth2Error,
    OAuth2Request,
)
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749.hooks import hooked  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749.util import scope_to_list  # type: ignore[import-untyped]
from authlib.oauth2.rfc6750 import BearerTokenGenerator  # type: ignore[import-untyped]
from flask import Blueprint, Request, Response, request
from sqlalchemy.orm import Session

from exchange_node.db.models import OAuthClient
from exchange_node.errors import AuthenticationError, InsufficientScopeError
from exchange_node.node import Node
from exchange_node.services import clients
from exchange_node.services.clients import SCOPES, ApiClient
from exchange_node.web.context import current_node
from exchange_node.web.federation import public_url
from exchange_node.web.problems import problem_response

__all__ = ["TOKEN_PATH", "blueprint", "require_scope", "require_token"]

blueprint = Blueprint("oauth", __name__)

TOKEN_PATH = "/oauth/token"  # noqa: S105 (a path, not a secret)
AUTH_METHODS = ("client_secret_basic", "client_secret_post")
# RFC 6750 section 2.1: "Bearer" 1*SP b64token.
_BEARER = re.compile(r"bearer +([A-Za-z0-9\-._~+/]+=*)", re.IGNORECASE)

ApiView = Callable[..., Any]


class _Client(ClientMixin):  # type: ignore[misc]
    """An :class:`OAuthClient` row as authlib sees it: confidential, client credentials only."""

    def __init__(self, row: OAuthClient) -> None:
        self.row = row

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        """The requested scopes, all of which the client must hold; none requested: all it has."""
        held = list(self.row.scopes)
        requested = set(scope_to_list(scope) or held)
        if not requested <= set(held):
            raise InvalidScopeError(description=f"this client may request only: {' '.join(held)}")
        return " ".join(s for s in held if s in requested)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return clients.check_client_secret(self.row, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint == "token" and method in AUTH_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return bool(grant_type == ClientCredentialsGrant.GRANT_TYPE)


class _ClientCredentialsGrant(ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = list(AUTH_METHODS)

    @hooked  # type: ignore[untyped-decorator]
    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        # authlib's own version logs the issued token at DEBUG; the token is a credential.
        token = self.generate_token(scope=self.request.payload.scope, include_refresh_token=False)
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER


class _PublicUrlRequest(FlaskOAuth2Request):  # type: ignore[misc]
    """authlib's view of a Flask request, at the node's public URL instead of the socket's.

    Mirrors ``FlaskOAuth2Request.__init__``, whose only difference is ``uri=request.url``;
    authlib checks that URI for HTTPS.
    """

    def __init__(self, flask_request: Request, uri: str) -> None:
        OAuth2Request.__init__(
            self, method=flask_request.method, uri=uri, headers=flask_request.headers
        )
        self._request = flask_request
        self.payload = FlaskOAuth2Payload(flask_request)


class _TokenEndpoint(AuthorizationServer):  # type: ignore[misc]
    """authlib's authorization server for one request, on one database session."""

    def __init__(self, node: Node, session: Session) -> None:
        super().__init__()
        self.node = node
        self.session = session
        self.scopes_supported = SCOPES
        self.register_grant(_ClientCredentialsGrant)
        self.register_token_generator(
            "default",
            BearerTokenGenerator(_new_token, expires_generator=node.settings.access_token_seconds),
        )

    def query_client(self, client_id: str) -> _Client | None:
        row = clients.find_active_client(self.session, client_id)
        return None if row is None else _Client(row)

    def save_token(self, token: dict[str, Any], oauth_request: OAuth2Request) -> None:
        clients.store_token(
            self.session,
            oauth_request.client.row,
            token["access_token"],
            scope_to_list(token.get("scope")) or [],
            now=self.node.now(),
            lifetime=token["expires_in"],
        )

    def validate_requested_scope(self, scope: str | None) -> None:
        if scope and not set(scope_to_list(scope)) <= set(SCOPES):
            raise InvalidScopeError(description=f"the scopes are: {' '.join(SCOPES)}")

    def create_oauth2_request(self, _request: object) -> _PublicUrlRequest:
        return _PublicUrlRequest(request, public_url(self.node))

    def get_error_uri(self, _request: object, _error: OAuth2Error) -> None:
        return None


def _new_token(**_: object) -> str:
    return secrets.token_urlsafe(32)


@blueprint.post(TOKEN_PATH)
def token() -> Response:
    """An access token for a client's own credentials (RFC 6749 section 4.4)."""
    node = current_node()
    with node.database.session() as session:
        endpoint = _TokenEndpoint(node, session)
        try:
            response: Response = endpoint.create_token_response()
        except OAuth2Error as error:  # raised before authlib's own handling, e.g. plain HTTP
            response = endpoint.handle_error_response(None, error)
    return response


def require_scope(scope: str) -> Callable[[ApiView], ApiView]:
    """Run ``view(client, ...)`` only with a valid bearer token that grants ``scope``.

    Missing, unknown or expired token: 401 ``unauthorized``; a token without
    ``scope``: 403 ``insufficient_scope``. ``client`` is an :class:`ApiClient`.
    """
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; the scopes are {', '.join(SCOPES)}")
    return lambda view: _protect(view, scope)


def require_token(view: ApiView) -> ApiView:
    """Run ``view(client, ...)`` only with a valid bearer token, whatever its scopes."""
    return _protect(view, None)


def _protect(view: ApiView, scope: str | None) -> ApiView:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        node = current_node()
        try:
            presented = _bearer_token(request.headers.get("Authorization"))
            with node.database.session() as session:
                client = clients.authenticate_token(session, presented, node.now(), scope)
        except (AuthenticationError, InsufficientScopeError) as error:
            return _refusal(error, presented_token="Authorization" in request.headers, scope=scope)
        return view(client, *args, **kwargs)

    return wrapper


def _bearer_token(header: str | None) -> str:
    if not header:
        raise AuthenticationError(f"this endpoint needs a bearer token: get one from {TOKEN_PATH}")
    match = _BEARER.fullmatch(header.strip())
    if match is None:
        raise AuthenticationError("the Authorization header must be 'Bearer TOKEN'")
    return match.group(1)


def _refusal(
    error: AuthenticationError | InsufficientScopeError, *, presented_token: bool, scope: str | None
) -> Response:
    """The problem response, with the RFC 6750 ``WWW-Authenticate`` challenge."""
    response = problem_response(error.to_problem(request.path), error.status)
    if isinstance(error, InsufficientScopeError):
        challenge = f'Bearer error="insufficient_scope", scope="{scope}"'
    elif presented_token:
        challenge = 'Bearer error="invalid_token"'
    else:
        challenge = "Bearer"
    response.headers["WWW-Authenticate"] = challenge
    return response


@blueprint.get("/api/v1/whoami")
@require_token
def whoami(client: ApiClient) -> dict[str, Any]:
    """The client a bearer token belongs to, and the scopes it grants."""
    return {"client": client.name, "scopes": list(client.scopes)}
