"""Requests for the ``httpsig`` tests: fixed keys, sign and verify, and hand-made signatures.

``resign`` signs any ``Signature-Input`` parameters correctly, by hand, so a test can
reach the profile checks behind the parser; ``flip_signature_bit`` breaks a signature.
Shared by ``test_httpsig`` and ``test_httpsig_refusals``; no tests here.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from exchange_node.protocol.errors import ProtocolError
from exchange_node.protocol.httpsig import VerifiedRequest, sign_request, verify_request
from exchange_node.protocol.keys import NodeKey, import_jwk
from exchange_node.protocol.limits import DEFAULT_LIMITS, Limits

KEYS_FILE = Path(__file__).resolve().parents[2] / "protocol" / "vectors" / "keys.json"
NOW = 1798761600
NONCE = "dGVzdC1ub25jZS0wMDAwMQ"
INBOX = "https://clinic.example/federation/v1/inbox"
CAPACITY = "https://community.example/federation/v1/capacity"
JSON_BODY = b'{"type":"referral","id":"a1b2"}'


def load_keys() -> dict[str, NodeKey]:
    nodes = json.loads(KEYS_FILE.read_text(encoding="utf-8"))["nodes"]
    return {
        name: import_jwk(node["signing_key"], "sig", private=True) for name, node in nodes.items()
    }


KEYS = load_keys()
COMMUNITY, CLINIC, SCHOOL = KEYS["community"], KEYS["clinic"], KEYS["school"]


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def with_headers(self, **changes: str | None) -> Request:
        """Set (or, with ``None``, drop) headers; underscores in names become dashes."""
        headers = dict(self.headers)
        for name, value in changes.items():
            header = name.replace("_", "-")
            headers.pop(header, None)
            if value is not None:
                headers[header] = value
        return replace(self, headers=headers)


def sign(
    request: Request,
    key: NodeKey = COMMUNITY,
    *,
    now: int = NOW,
    nonce: str | None = NONCE,
    limits: Limits = DEFAULT_LIMITS,
) -> Request:
    method, url, headers, body = request.method, request.url, request.headers, request.body
    added = sign_request(method, url, headers, body, key=key, now=now, nonce=nonce, limits=limits)
    return replace(request, headers=request.headers | added)


def verify(
    request: Request, key: NodeKey = COMMUNITY, now: int = NOW, limits: Limits = DEFAULT_LIMITS
) -> VerifiedRequest:
    method, url, headers, body = request.method, request.url, request.headers, request.body
    return verify_request(method, url, headers, body, key=key, now=now, limits=limits)


def signed_post(
    key: NodeKey = COMMUNITY,
    *,
    now: int = NOW,
    nonce: str | None = NONCE,
    limits: Limits = DEFAULT_LIMITS,
) -> Request:
    request = Request("POST", INBOX, JSON_BODY, {"Content-Type": "application/json"})
    return sign(request, key, now=now, nonce=nonce, limits=limits)


def signed_get(
    key: NodeKey = COMMUNITY,
    *,
    now: int = NOW,
    nonce: str | None = NONCE,
    limits: Limits = DEFAULT_LIMITS,
) -> Request:
    return sign(Request("GET", CAPACITY, b""), key, now=now, nonce=nonce, limits=limits)


def signature_params(request: Request) -> str:
    """The ``@signature-params`` value: the Signature-Input member without its label."""
    return request.headers["Signature-Input"].removeprefix("exchange=")


def resign(request: Request, params: str, key: NodeKey = COMMUNITY) -> Request:
    """Sign ``params`` correctly, by hand, so a test reaches the check after the parser's."""
    names = re.findall(r'"([^"]+)"', params.split(")")[0])
    lookup = {name.lower(): value for name, value in request.headers.items()}
    derived = {
        "@method": request.method,
        "@target-uri": request.url,
        "@path": "/federation/v1/inbox",
    }
    lines = [f'"{name}": {derived.get(name) or lookup[name]}' for name in names]
    base = "\n".join([*lines, f'"@signature-params": {params}']).encode("ascii")
    signature = base64.b64encode(key.ed25519_private().sign(base)).decode("ascii")
    return request.with_headers(
        Signature_Input=f"exchange={params}", Signature=f"exchange=:{signature}:"
    )


def assert_fails(
    error: type[ProtocolError], request: Request, key: NodeKey = COMMUNITY, now: int = NOW
) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        verify(request, key, now)
    assert type(info.value) is error, info.value
    assert info.value.code == error.code
    return info.value


def flip_signature_bit(request: Request) -> Request:
    """One bit of the signature flipped: still well formed, no longer valid."""
    raw = bytearray(base64.b64decode(request.headers["Signature"].split(":")[1]))
    raw[10] ^= 0x01
    return request.with_headers(Signature=f"exchange=:{base64.b64encode(raw).decode()}:")
