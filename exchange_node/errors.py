"""The node layer's errors: one root, stable codes, the same RFC 9457 shape as the protocol.

:class:`ExchangeError` is the root of everything the node itself raises
(configuration, storage, peers, requests); the protocol core keeps its own root,
:class:`~exchange_node.protocol.errors.ProtocolError`. Both carry ``code``,
``title``, ``status`` and ``to_problem()``, so the web layer and the command
line present either the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from exchange_node.protocol.errors import problem_details


class ExchangeError(Exception):
    """Root of the errors the node raises (outside the protocol core)."""

    code: ClassVar[str] = "error"
    title: ClassVar[str] = "Error"
    status: ClassVar[int] = 500

    def __init__(self, detail: str, fields: Mapping[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        #: The shape of SPEC 12.3: JSON Pointer into the request -> list of broken rules.
        self.fields: dict[str, list[str]] = {
            (name if name.startswith("/") else "/" + name): (
                [str(rule) for rule in rules] if isinstance(rules, list | tuple) else [str(rules)]
            )
            for name, rules in (fields or {}).items()
        }

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        problem = problem_details(self.code, self.title, self.status, self.detail, instance)
        if self.fields:
            problem["errors"] = self.fields
        return problem


class ConfigurationError(ExchangeError):
    """Settings, home folder or key files that cannot be used as they are."""

    code = "configuration"
    title = "Configuration error"


class NotInitializedError(ConfigurationError):
    code = "not_initialized"
    title = "Node not initialized"


class StorageError(ExchangeError):
    """The database cannot be reached or is not at the expected migration."""

    code = "storage_unavailable"
    title = "Storage unavailable"
    status = 503


class InvalidRequestError(ExchangeError):
    """A request or command argument that does not make sense; ``fields`` says where."""

    code = "invalid_request"
    title = "Invalid request"
    status = 400


class NotFoundError(ExchangeError):
    code = "not_found"
    title = "Not found"
    status = 404


class ConflictError(ExchangeError):
    code = "conflict"
    title = "Conflict"
    status = 409


class AuthenticationError(ExchangeError):
    code = "unauthorized"
    title = "Authentication required"
    status = 401


class InsufficientScopeError(ExchangeError):
    """A valid token that lacks the scope an endpoint needs."""

    code = "insufficient_scope"
    title = "Insufficient scope"
    status = 403


class PeerNotTrustedError(ExchangeError):
    """A known peer that is pending, suspended or removed asked for something."""

    code = "peer_not_trusted"
    title = "Peer not trusted"
    status = 403


class PeerUnreachableError(ExchangeError):
    """A peer could not be reached, or answered with something that is not the protocol."""

    code = "peer_unreachable"
    title = "Peer unreachable"
    status = 502


class PeerRefusedError(ExchangeError):
    """A peer answered with a problem document; ``peer_code`` is its code."""

    code = "peer_refused"
    title = "Peer refused the request"
    status = 502

    def __init__(self, detail: str, peer_code: str, peer_status: int) -> None:
        super().__init__(detail)
        self.peer_code = peer_code
        self.peer_status = peer_status
