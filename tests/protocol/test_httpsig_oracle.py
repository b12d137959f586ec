"""The general-purpose RFC 9421 verifier of ``http-message-signatures`` as an oracle.

Our verifier handles one fixed profile directly; these tests show it accepts exactly the
requests the library accepts, on signed requests and on hypothesis mutations of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from http_message_signatures import HTTPMessageVerifier, MappingKeyResolver
from http_message_signatures.algorithms import ED25519
from http_message_signatures.exceptions import HTTPMessageSignaturesException
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange_node.protocol.errors import ProtocolError
from exchange_node.protocol.httpsig import (
    SIGNATURE_LABEL,
    SIGNATURE_TAG,
    read_signature,
    sign_request,
    verify_request,
)
from exchange_node.protocol.keys import generate_key

KEY = generate_key("sig")
NOW = 1_798_761_600
URL = "https://clinic.example/federation/v1/inbox"


@dataclass
class _Message:
    method: str
    url: str
    headers: dict[str, str]


class _NoClockVerifier(HTTPMessageVerifier):
    def validate_created_and_expires(self, sig_input: Any, max_age: Any = None) -> None:
        """Time is our verifier's business; the oracle judges the cryptography."""


def library_accepts(method: str, url: str, headers: dict[str, str], body: bytes) -> bool:
    resolver = MappingKeyResolver(public_keys={KEY.kid: KEY.ed25519_public()}, private_keys={})
    verifier = _NoClockVerifier(signature_algorithm=ED25519, key_resolver=resolver)
    message = _Message(method, url, headers)
    try:
        results = verifier.verify(
            message, max_age=None, expect_tag=SIGNATURE_TAG, expect_label=SIGNATURE_LABEL
        )
        verifier.verify_body(message, results, body)
    except (HTTPMessageSignaturesException, ValueError, TypeError):
        return False
    return True


def we_accept(method: str, url: str, headers: dict[str, str], body: bytes) -> bool:
    try:
        verify_request(method, url, headers, body, key=KEY.public(), now=NOW)
    except ProtocolError:
        return False
    return True


def signed(method: str, body: bytes) -> dict[str, str]:
    headers = {"Content-Type": "application/jose"} if body else {}
    return headers | sign_request(method, URL, headers, body, key=KEY, now=NOW)


def test_both_accept_what_we_sign() -> None:
    for method, body in (("POST", b"a.b.c.d.e"), ("GET", b"")):
        headers = signed(method, body)
        assert library_accepts(method, URL, headers, body)
        assert we_accept(method, URL, headers, body)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(
        ["Signature", "Signature-Input", "Content-Digest", "Content-Type", "url", "body"]
    ),
    st.integers(0, 400),
    st.sampled_from(["A", "0", ";", '"', " ", "=", ":", ","]),
)
def test_same_verdict_on_mutated_requests(target: str, position: int, character: str) -> None:
    body = b"eyJhbGciOiJFQ0RILUVTK0EyNTZLVyJ9.a.b.c.d"
    headers, url = signed("POST", body), URL
    if target == "url":
        url = url[: position % len(url)] + character + url[position % len(url) + 1 :]
    elif target == "body":
        at = position % len(body)
        body = body[:at] + character.encode() + body[at + 1 :]
    else:
        value = headers[target]
        at = position % len(value)
        headers = headers | {target: value[:at] + character + value[at + 1 :]}
    ours = we_accept("POST", url, headers, body)
    theirs = library_accepts("POST", url, headers, body)
    if ours:
        assert theirs
    elif theirs:
        # The library accepted what we refused: only one of our profile rules may explain it.
        assert not _profile_ok(url, headers)


def _profile_ok(url: str, headers: dict[str, str]) -> bool:
    """Whether the request passes our profile rules other than cryptography."""
    try:
        read_signature(headers)
    except ProtocolError:
        return False
    return url.isascii() and " " not in url
