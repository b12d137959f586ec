"""Requests this node makes to peers: entity configurations, capacity documents, signed calls.

Every call to a peer endpoint is signed with RFC 9421 (the ``exchange`` profile);
a problem-details answer becomes :class:`PeerRefusedError` with the peer's code,
anything that is not the protocol becomes :class:`PeerUnreachableError`. Nothing
fetched here is verified here: the caller verifies before it trusts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from exchange_node.errors import PeerRefusedError, PeerUnreachableError
from exchange_node.protocol.capacity import CAPACITY_MEDIA_TYPE
from exchange_node.protocol.entity import ENTITY_CONFIGURATION_MEDIA_TYPE, WELL_KNOWN_PATH
from exchange_node.protocol.envelope import ENVELOPE_MEDIA_TYPE
from exchange_node.protocol.errors import PROBLEM_CONTENT_TYPE
from exchange_node.protocol.httpsig import sign_request
from exchange_node.protocol.keys import NodeKey
from exchange_node.protocol.limits import Limits
from exchange_node.protocol.statements import RECEIPT_MEDIA_TYPE
from exchange_node.transport import HttpResponse, Transport

#: An entity tag as RFC 9110 section 8.8.3 allows it, short enough to store and send back.
_ETAG = re.compile(r'(W/)?"[\x21\x23-\x7e]{0,120}"')
#: What an inbox answers (SPEC 7.1): a receipt, or a problem.
INBOX_ACCEPT = f"{RECEIPT_MEDIA_TYPE}, {PROBLEM_CONTENT_TYPE}"


@dataclass(frozen=True)
class PeerProblem:
    """The stable ``code`` and the ``detail`` of a peer's problem document (SPEC 12.1)."""

    code: str | None
    detail: str


@dataclass(frozen=True)
class CapacityResponse:
    """A peer's answer to a capacity poll: ``200`` with the (unverified) token, or ``304``."""

    status: int
    token: str | None
    etag: str | None


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
        extra_headers: Mapping[str, str] | None = None,
        max_bytes: int | None = None,
    ) -> HttpResponse:
        """Send a request signed with this node's ``key``; problems become errors.

        ``extra_headers`` (such as ``If-None-Match``) are sent but not signed; the
        response is capped at ``max_bytes`` (default: the largest request body).
        """
        headers = {"Accept": accept, **(extra_headers or {})}
        if content_type:
            headers["Content-Type"] = content_type
        headers |= sign_request(method, url, headers, body, key=key, now=now, limits=self.limits)
        response = self.transport.send(
            method, url, headers, body, max_bytes=max_bytes or self.limits.max_body_bytes
        )
        self._raise_for_problem(url, response)
        return response

    def post_envelope(self, url: str, envelope: str, *, key: NodeKey, now: int) -> HttpResponse:
        """POST the exact envelope bytes to a peer's inbox with a new signature (SPEC 7.1).

        The answer comes back as it is, problems included: the sender decides what a
        status, a problem code or ``Retry-After`` mean for the message (SPEC 7.5).

        Raises:
            PeerUnreachableError: no answer (network error, timeout, an oversized answer).
        """
        body = envelope.encode("ascii")
        headers = {"Accept": INBOX_ACCEPT, "Content-Type": ENVELOPE_MEDIA_TYPE}
        headers |= sign_request("POST", url, headers, body, key=key, now=now, limits=self.limits)
        return self.transport.send("POST", url, headers, body, max_bytes=self.limits.max_body_bytes)

    def fetch_capacity(
        self, url: str, *, key: NodeKey, now: int, etag: str | None = None
    ) -> CapacityResponse:
        """Poll a peer's capacity document (SPEC 4.1), conditionally when ``etag`` is held.

        Raises:
            PeerRefusedError: the peer answered with a problem (4xx, or 5xx with a code).
            PeerUnreachableError: no answer, or one that is not the protocol.
        """
        response = self.signed_request(
            "GET",
            url,
            key=key,
            now=now,
            accept=CAPACITY_MEDIA_TYPE,
            extra_headers={"If-None-Match": etag} if etag else None,
            max_bytes=self.limits.max_capacity_bytes,
        )
        served_etag = _header(response, "etag")
        if served_etag is not None and not _ETAG.fullmatch(served_etag):
            served_etag = None  # never stored nor sent back: it is not an entity tag
        if response.status == 304 and etag:
            return CapacityResponse(304, None, served_etag or etag)
        if response.status != 200:
            raise PeerUnreachableError(
                f"{url} answered a capacity poll with HTTP {response.status}"
            )
        try:
            token = response.body.decode("ascii").strip()
        except UnicodeDecodeError as e:
            raise PeerUnreachableError(f"{url} served a capacity document that is not text") from e
        return CapacityResponse(200, token, served_etag)

    @staticmethod
    def _raise_for_problem(url: str, response: HttpResponse) -> None:
        if response.status < 400:
            return
        problem = read_problem(response)
        code = problem.code or "unknown"
        if response.status >= 500 and problem.code is None:
            raise PeerUnreachableError(f"{url} failed with HTTP {response.status}")
        raise PeerRefusedError(f"{url} refused: {code}: {problem.detail}", code, response.status)


def read_problem(response: HttpResponse) -> PeerProblem:
    """The problem document of an error answer; ``code`` is None when there is none."""
    code, detail = None, f"HTTP {response.status}"
    content_type = _header(response, "content-type") or ""
    if content_type.startswith(PROBLEM_CONTENT_TYPE):
        try:
            problem = json.loads(response.body)
            if problem.get("code") is not None:
                code = str(problem["code"])[:64]
            detail = str(problem.get("detail", detail))[:300]
        except (ValueError, AttributeError):
            pass
    return PeerProblem(code, detail)


def retry_after(response: HttpResponse, now: int) -> int | None:
    """Seconds to wait that ``Retry-After`` asks for (RFC 9110 10.2.3), or None.

    Either form is read: delay-seconds, or an HTTP-date (a date already past is 0).
    """
    value = (_header(response, "retry-after") or "").strip()
    if value.isascii() and value.isdigit():
        return int(value[:9])
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None  # RFC 9110 dates are GMT; a date without a zone is not one
    return max(0, int(when.timestamp()) - now)


def _header(response: HttpResponse, name: str) -> str | None:
    """A response header by its lower-case name (transports differ in how they spell names)."""
    return next((v for k, v in response.headers.items() if k.lower() == name), None)
