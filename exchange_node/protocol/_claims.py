"""Checks on verified JWT claims shared by documents and messages: names, types, time.

Only called on claims whose signature already held. Each failure raises the
specific :mod:`errors` class whose ``code`` the conformance vectors name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from exchange_node.protocol.errors import (
    AudienceError,
    ExpiredError,
    InvalidClaimError,
    MissingClaimError,
    NotYetValidError,
    WrongIssuerError,
)

_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_JTI = re.compile(r"[A-Za-z0-9_-]{16,128}")
#: Largest integer a NumericDate may hold (year 9999), so datetime conversions never overflow.
MAX_NUMERIC_DATE = 253_402_300_799


@dataclass(frozen=True, slots=True)
class Lifetime:
    issued_at: int
    expires_at: int


def require_str(claims: Mapping[str, Any], name: str) -> str:
    if name not in claims:
        raise MissingClaimError(f"claim {name!r} is required")
    value = claims[name]
    if not isinstance(value, str) or not value:
        raise InvalidClaimError(f"claim {name!r} must be a non-empty string")
    return value


def require_int(claims: Mapping[str, Any], name: str, minimum: int = 0) -> int:
    if name not in claims:
        raise MissingClaimError(f"claim {name!r} is required")
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidClaimError(f"claim {name!r} must be an integer")
    if not minimum <= value <= MAX_NUMERIC_DATE:
        raise InvalidClaimError(f"claim {name!r} is out of range")
    return value


def check_issuer(claims: Mapping[str, Any], expected: str) -> None:
    """The ``iss`` claim must name the party whose key verified the signature."""
    issuer = require_str(claims, "iss")
    if issuer != expected:
        raise WrongIssuerError(f"claims name issuer {issuer!r}, expected {expected!r}")


def check_audience(claims: Mapping[str, Any], expected: str) -> None:
    """``aud`` is one string, the receiving node's entity identifier."""
    audience = require_str(claims, "aud")
    if audience != expected:
        raise AudienceError(f"addressed to {audience!r}, this node is {expected!r}")


def check_lifetime(
    claims: Mapping[str, Any], *, now: int, skew: int, max_lifetime: int
) -> Lifetime:
    """Check ``iat`` and ``exp``: ordered, not too long, and ``now`` inside them (± skew).

    Raises:
        MissingClaimError, InvalidClaimError, NotYetValidError, ExpiredError.
    """
    issued_at = require_int(claims, "iat")
    expires_at = require_int(claims, "exp")
    if expires_at <= issued_at:
        raise InvalidClaimError("'exp' must be later than 'iat'")
    if expires_at - issued_at > max_lifetime:
        raise InvalidClaimError(
            f"lifetime of {expires_at - issued_at} s exceeds the maximum of {max_lifetime} s"
        )
    if issued_at > now + skew:
        raise NotYetValidError(f"issued at {issued_at}, {issued_at - now} s in the future")
    if expires_at < now - skew:
        raise ExpiredError(f"expired at {expires_at}, {now - expires_at} s ago")
    return Lifetime(issued_at, expires_at)


def check_jti(claims: Mapping[str, Any]) -> str:
    """``jti``: 16 to 128 base64url characters (128 random bits, encoded, is the norm)."""
    jti = require_str(claims, "jti")
    if not _JTI.fullmatch(jti):
        raise InvalidClaimError("'jti' must be 16 to 128 base64url characters")
    return jti


def check_entity_id(value: str, what: str = "entity identifier") -> str:
    """An entity identifier is an origin-rooted https URL with no query, fragment or trailing slash.

    Plain ``http`` is accepted only for loopback hosts, so nodes can be tested locally.

    Raises:
        InvalidClaimError: ``value`` is not a valid entity identifier.
    """
    try:
        parts = urlsplit(value)
        host = parts.hostname
        port_ok = parts.port is None or parts.port > 0
    except ValueError as e:
        raise InvalidClaimError(f"{what} {value!r} is not a URL") from e
    secure = parts.scheme == "https" or (parts.scheme == "http" and host in _LOOPBACK_HOSTS)
    if (
        not secure
        or not host
        or not port_ok
        or parts.query
        or parts.fragment
        or parts.username
        or parts.password
        or value.endswith("/")
        or len(value) > 512
    ):
        raise InvalidClaimError(
            f"{what} {value!r} must be an https URL (http only on loopback) "
            "without query, fragment, credentials or trailing slash"
        )
    return value


def check_same_origin(url: str, entity_id: str, what: str) -> str:
    """An endpoint a node publishes must live under its own entity identifier."""
    if not isinstance(url, str) or not (url == entity_id or url.startswith(entity_id + "/")):
        raise InvalidClaimError(f"{what} must be a URL under {entity_id}")
    return url
