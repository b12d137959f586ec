"""OAuth 2 clients of integrations, and the bearer tokens issued to them.

A client gets a random ``client_id`` and a secret that is shown once and
stored only as a hash; tokens are stored only as their SHA-256. The HTTP side
(the token endpoint, reading ``Authorization`` headers) lives in
:mod:`exchange_node.web.oauth`; this module does no HTTP. Adding and revoking a client
are audited under its ``client_id``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from exchange_node.db.models import AccessToken, OAuthClient
from exchange_node.errors import (
    AuthenticationError,
    InsufficientScopeError,
    InvalidRequestError,
    NotFoundError,
)
from exchange_node.services import audit

__all__ = [
    "SCOPES",
    "ApiClient",
    "add_client",
    "authenticate_token",
    "check_client_secret",
    "find_active_client",
    "get_client",
    "list_clients",
    "revoke_client",
    "store_token",
    "token_hash",
]

#: Every scope a client may hold.
SCOPES = ("capacity:write", "directory:read", "referrals:read", "referrals:write")
MAX_NAME_LENGTH = 200

# Secrets are 256 random bits, so a fast hash is enough: no dictionary or brute-force
# attack can reach them, unlike people's passwords. A slow hash (argon2id) would add
# nothing but CPU cost on every token request, a cost anyone can make the node pay.
_HASH_SCHEME = "sha256:"


@dataclass(frozen=True)
class ApiClient:
    """The client behind a valid bearer token, and the scopes that token grants."""

    id: int
    client_id: str
    name: str
    scopes: tuple[str, ...]


def new_client_id() -> str:
    """A random client id that a command line never takes for an option (no leading '-')."""
    return "c" + secrets.token_urlsafe(16)


def add_client(
    session: Session, name: str, scopes: Iterable[str], now: int, *, actor: str = "cli"
) -> tuple[OAuthClient, str]:
    """A new client and its secret; the secret is not stored and cannot be shown again.

    Raises:
        InvalidRequestError: an empty or too long name, no scope, or an unknown scope.
    """
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise InvalidRequestError(
            f"a client name needs 1 to {MAX_NAME_LENGTH} characters", {"name": "length"}
        )
    chosen = _check_scopes(scopes)
    secret = secrets.token_urlsafe(32)
    client = OAuthClient(
        client_id=new_client_id(),
        name=name,
        secret_hash=_HASH_SCHEME + _sha256(secret),
        scopes=list(chosen),
        created_at=now,
        revoked_at=None,
    )
    session.add(client)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="client.added",
        subject=client.client_id,
        details={"scopes": " ".join(chosen)},  # the name is free text: not logged
        now=now,
    )
    return client, secret


def list_clients(session: Session) -> list[OAuthClient]:
    return list(session.scalars(select(OAuthClient).order_by(OAuthClient.created_at)))


def get_client(session: Session, client_id: str) -> OAuthClient:
    """The client with this ``client_id``, revoked or not.

    Raises:
        NotFoundError: there is none.
    """
    client = session.scalar(select(OAuthClient).where(OAuthClient.client_id == client_id))
    if client is None:
        raise NotFoundError(f"no client {client_id}: see 'exchange-node client list'")
    return client


def revoke_client(session: Session, client_id: str, now: int, *, actor: str = "cli") -> OAuthClient:
    """Refuse the client from now on and delete its tokens. Revoking twice changes nothing.

    Raises:
        NotFoundError: no client has this ``client_id``.
    """
    client = get_client(session, client_id)
    if client.revoked_at is None:
        client.revoked_at = now
        audit.record(
            session, actor=actor, action="client.revoked", subject=client.client_id, now=now
        )
    session.execute(delete(AccessToken).where(AccessToken.client_id == client.id))
    return client


def find_active_client(session: Session, client_id: str) -> OAuthClient | None:
    """The client with this ``client_id`` unless it is unknown or revoked."""
    return session.scalar(
        select(OAuthClient).where(
            OAuthClient.client_id == client_id, OAuthClient.revoked_at.is_(None)
        )
    )


def check_client_secret(client: OAuthClient, secret: str) -> bool:
    if not client.secret_hash.startswith(_HASH_SCHEME):
        return False
    expected = client.secret_hash.removeprefix(_HASH_SCHEME)
    return hmac.compare_digest(expected, _sha256(secret))


def token_hash(token: str) -> str:
    """What is stored for a bearer token: its SHA-256, in hex."""
    return _sha256(token)


def store_token(
    session: Session,
    client: OAuthClient,
    token: str,
    scopes: Iterable[str],
    now: int,
    lifetime: int,
) -> AccessToken:
    """Record an issued token by its hash; expired tokens of any client go at the same time."""
    session.execute(delete(AccessToken).where(AccessToken.expires_at <= now))
    row = AccessToken(
        token_hash=token_hash(token),
        client_id=client.id,
        scopes=list(scopes),
        issued_at=now,
        expires_at=now + lifetime,
    )
    session.add(row)
    return row


def authenticate_token(session: Session, token: str, now: int, scope: str | None) -> ApiClient:
    """The client a bearer token was issued to, if the token is valid and grants ``scope``.

    ``scope=None`` asks only for a valid token (an endpoint any client may call).

    Raises:
        AuthenticationError: unknown or expired token, or a revoked client.
        InsufficientScopeError: the token does not grant ``scope``.
    """
    found = session.execute(
        select(AccessToken, OAuthClient)
        .join(OAuthClient, AccessToken.client_id == OAuthClient.id)
        .where(AccessToken.token_hash == token_hash(token))
    ).one_or_none()
    if found is None:
        raise AuthenticationError("unknown access token: get one from /oauth/token")
    access, client = found
    if access.expires_at <= now or client.revoked_at is not None:
        raise AuthenticationError("the access token has expired: get a new one from /oauth/token")
    if scope is not None and scope not in access.scopes:
        raise InsufficientScopeError(
            f"this needs the scope {scope}; the token grants: {' '.join(access.scopes) or 'none'}"
        )
    return ApiClient(client.id, client.client_id, client.name, tuple(access.scopes))


def _check_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(scope.strip() for scope in scopes if scope.strip()))
    allowed = ", ".join(SCOPES)
    if not chosen:
        raise InvalidRequestError(
            f"a client needs at least one scope: choose from {allowed}", {"scopes": "empty"}
        )
    unknown = [scope for scope in chosen if scope not in SCOPES]
    if unknown:
        raise InvalidRequestError(
            f"unknown scope {', '.join(unknown)}: choose from {allowed}", {"scopes": "unknown"}
        )
    return chosen


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()
