"""Requests the ``exchange`` profile verifier refuses, each with its error and in a fixed order.

Oversized, missing or malformed signatures; parameters and coverage outside the profile;
times outside the window; other keys and tampered requests; wrong Content-Digest; the
order of the checks; and random mutations, from which nothing but ``ProtocolError`` escapes.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
from collections.abc import Callable
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange_node.protocol.errors import (
    DigestMismatchError,
    OversizedError,
    ProtocolError,
    SignatureExpiredError,
    SignatureInvalidError,
    SignatureMissingError,
    SignatureNotYetValidError,
)
from exchange_node.protocol.httpsig import read_signature_keyid
from exchange_node.protocol.keys import NodeKey
from exchange_node.protocol.limits import DEFAULT_LIMITS, Limits
from tests.protocol.httpsig_requests import (
    CAPACITY,
    CLINIC,
    COMMUNITY,
    INBOX,
    JSON_BODY,
    NONCE,
    NOW,
    SCHOOL,
    Request,
    assert_fails,
    flip_signature_bit,
    resign,
    sign,
    signature_params,
    signed_get,
    signed_post,
    verify,
)

# --- Sizes -------------------------------------------------------------------------------


def test_oversized_header_is_refused_before_parsing() -> None:
    request = Request("GET", CAPACITY, b"", {"X-Padding": "a" * 8193})
    assert_fails(OversizedError, request)
    with pytest.raises(OversizedError):
        read_signature_keyid(request.headers)
    assert verify(signed_get().with_headers(X_Padding="a" * 8192)).keyid == COMMUNITY.kid


def test_header_size_counts_utf8_bytes_and_joined_duplicates() -> None:
    assert_fails(OversizedError, Request("GET", CAPACITY, b"", {"X-A": "é" * 4097}))
    headers = {"X-A": "a" * 5000, "x-a": "a" * 5000}
    assert_fails(OversizedError, Request("GET", CAPACITY, b"", headers))


def test_oversized_body_is_refused() -> None:
    request = signed_post()
    assert_fails(OversizedError, replace(request, body=b"x" * (DEFAULT_LIMITS.max_body_bytes + 1)))
    limits = Limits(max_body_bytes=len(JSON_BODY) - 1)
    with pytest.raises(OversizedError):
        verify(request, limits=limits)


# --- Missing and malformed ---------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"Signature_Input": None, "Signature": None},
        {"Signature_Input": None},
        {"Signature": None},
        {"Signature_Input": 'other=("@method");created=1', "Signature": "other=:AAAA:"},
        {"Signature_Input": "", "Signature": ""},
    ],
)
def test_missing_signature(changes: dict[str, str | None]) -> None:
    request = signed_post().with_headers(**changes)
    error = assert_fails(SignatureMissingError, request)
    assert error.status == 401
    with pytest.raises(SignatureMissingError):
        read_signature_keyid(request.headers)


@pytest.mark.parametrize(
    "changes",
    [
        {"Signature_Input": "exchange=("},
        {"Signature_Input": 'exchange=("@method";created=1'},
        {"Signature_Input": 'exchange="@method"'},
        {"Signature_Input": 'exchange=("@method"), exchange=("@method")'},
        {"Signature_Input": 'exchange=("@méthod")'},
        {"Signature": "exchange=notbytes"},
        {"Signature": "exchange=:not base64:"},
        {"Signature": "other=:AAAA:"},
    ],
)
def test_malformed_signature_fields(changes: dict[str, str]) -> None:
    request = signed_post().with_headers(**changes)
    assert_fails(SignatureInvalidError, request)
    with pytest.raises(SignatureInvalidError):
        read_signature_keyid(request.headers)


# --- Parameters and coverage (correctly signed, so only the profile check can refuse) ------


def test_resign_helper_makes_valid_signatures() -> None:
    request = signed_post()
    assert verify(resign(request, signature_params(request))).nonce == NONCE


@pytest.mark.parametrize(
    ("pattern", "replacement"),
    [
        (r';keyid="[^"]*"', ""),
        (r";created=\d+", ""),
        (r";expires=\d+", ""),
        (r';nonce="[^"]*"', ""),
        (r';alg="[^"]*"', ""),
        (r';tag="[^"]*"', ""),
        (r';tag="[^"]*"', ';tag="other-app"'),
        (r';tag="[^"]*"', ";tag=exchange-node"),  # a Token, not a String
        (r';alg="[^"]*"', ';alg="rsa-pss-sha512"'),
        (r';alg="[^"]*"', ';alg="hmac-sha256"'),
        (r";created=(\d+)", r';created="\1"'),
        (r";created=(\d+)", r";created=\1.0"),
        (r";created=\d+", ";created=?1"),
        (r';nonce="[^"]*"', ';nonce="short"'),
        (r';nonce="[^"]*"', ';nonce=""'),
        (r';keyid="[^"]*"', ';keyid=""'),
        (r"$", ';context="extra"'),
        (r'"@target-uri" ', ""),
        (r'"@method" ', ""),
        (r'"@method" "@target-uri"', '"@target-uri" "@method"'),
        (r' "content-digest"', ""),
        (r'"content-digest"', '"content-digest";sf'),
        (r'"content-digest"', '"content-digest" "date"'),
        (r'"@target-uri"', '"@path"'),
    ],
)
def test_parameters_and_coverage_outside_the_profile(pattern: str, replacement: str) -> None:
    request = signed_post().with_headers(Date="Fri, 01 Jan 2027 00:00:00 GMT")
    params = re.sub(pattern, replacement, signature_params(request), count=1)
    assert params != signature_params(request)
    assert_fails(SignatureInvalidError, resign(request, params))


def test_body_requires_signed_content_type() -> None:
    request = signed_post()
    params = signature_params(request).replace('"content-type" ', "")
    assert_fails(SignatureInvalidError, resign(request, params))


def test_covered_content_type_must_be_present() -> None:
    request = signed_post().with_headers(Content_Type=None)
    assert_fails(SignatureInvalidError, request)


def test_empty_body_may_cover_content_type() -> None:
    request = sign(Request("POST", INBOX, b"", {"Content-Type": "application/json"}))
    params = signature_params(request).replace('"@target-uri"', '"@target-uri" "content-type"')
    assert verify(resign(request, params)).nonce == NONCE


# --- Time ----------------------------------------------------------------------------------


def test_created_in_the_future() -> None:
    skew = DEFAULT_LIMITS.clock_skew
    request = signed_post(now=NOW + skew + 1)
    assert_fails(SignatureNotYetValidError, request)
    assert verify(signed_post(now=NOW + skew)).created == NOW + skew


def test_expired() -> None:
    skew, window = DEFAULT_LIMITS.clock_skew, DEFAULT_LIMITS.http_signature_window
    assert_fails(SignatureExpiredError, signed_post(), now=NOW + window + skew + 1)
    assert verify(signed_post(), now=NOW + window + skew).expires == NOW + window


@pytest.mark.parametrize("window", [0, -1, 301, 3600])
def test_window_outside_the_limit(window: int) -> None:
    request = signed_post(limits=Limits(http_signature_window=window))
    assert_fails(SignatureInvalidError, request)


def test_longer_window_allowed_by_limits() -> None:
    limits = Limits(http_signature_window=3600, max_http_signature_window=3600)
    assert verify(signed_post(limits=limits), limits=limits).expires == NOW + 3600


# --- Keys and tampering --------------------------------------------------------------------


def test_signed_by_another_key() -> None:
    error = assert_fails(SignatureInvalidError, signed_post(CLINIC), COMMUNITY)
    assert CLINIC.kid in error.detail


def test_keyid_of_the_verifier_but_signed_by_another_key() -> None:
    request = signed_post(SCHOOL)
    params = signature_params(request).replace(SCHOOL.kid, COMMUNITY.kid)
    assert_fails(SignatureInvalidError, resign(request, params, SCHOOL))


def test_key_object_with_the_right_kid_but_another_key() -> None:
    impostor = NodeKey("sig", COMMUNITY.kid, CLINIC.okp)
    assert_fails(SignatureInvalidError, signed_post(), impostor)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda r: replace(r, method="PUT"),
        lambda r: replace(r, url="https://clinic.example/federation/v1/inbox2"),
        lambda r: replace(r, url="https://evil.example/federation/v1/inbox"),
        lambda r: replace(r, url=INBOX + "?a=1"),
        lambda r: r.with_headers(Content_Type="text/plain"),
        lambda r: r.with_headers(
            Content_Digest="sha-256=:"
            + base64.b64encode(hashlib.sha256(b"x").digest()).decode()
            + ":"
        ),
        flip_signature_bit,
        lambda r: r.with_headers(
            Signature="exchange=:" + base64.b64encode(b"\0" * 64).decode() + ":"
        ),
        lambda r: r.with_headers(Signature="exchange=:AAAA:"),
    ],
    ids=[
        "method",
        "path",
        "host",
        "query",
        "content-type",
        "digest",
        "sig-bit",
        "sig-zero",
        "sig-short",
    ],
)
def test_tampered_request(tamper: Callable[[Request], Request]) -> None:
    assert_fails(SignatureInvalidError, tamper(signed_post()))


@pytest.mark.parametrize("body", [JSON_BODY + b" ", b"", JSON_BODY[:-1]])
def test_tampered_body(body: bytes) -> None:
    assert_fails(DigestMismatchError, replace(signed_post(), body=body))


def test_body_added_to_a_get() -> None:
    request = replace(signed_get(), body=b"{}", headers=signed_get().headers)
    assert_fails(SignatureInvalidError, request)  # a body must sign its Content-Type


# --- Content-Digest ------------------------------------------------------------------------


def test_missing_content_digest() -> None:
    assert_fails(DigestMismatchError, signed_post().with_headers(Content_Digest=None))
    assert_fails(DigestMismatchError, signed_get().with_headers(Content_Digest=None))


@pytest.mark.parametrize(
    "digest",
    [
        "sha-256=:AAAA:",  # wrong length
        "nonsense",
        "sha-256=abc",
        "md5=:" + base64.b64encode(hashlib.md5(JSON_BODY).digest()).decode() + ":",  # noqa: S324
        "sha-256=:" + base64.b64encode(hashlib.sha256(b"other").digest()).decode() + ":",
    ],
)
def test_signed_but_wrong_content_digest(digest: str) -> None:
    request = signed_post().with_headers(Content_Digest=digest)
    assert_fails(DigestMismatchError, resign(request, signature_params(request)))


def test_content_digest_must_be_exactly_sha256() -> None:
    # A signed sha-512 digest is well formed RFC 9530, but outside the profile.
    request = signed_post()
    digest = hashlib.sha512(request.body).digest()
    sha512 = f"sha-512=:{base64.b64encode(digest).decode()}:"
    resigned = resign(request.with_headers(Content_Digest=sha512), signature_params(request))
    assert_fails(DigestMismatchError, resigned)


# --- Check order ---------------------------------------------------------------------------


def test_check_order_is_fixed() -> None:
    post = signed_post()
    unsigned_big = Request("GET", CAPACITY, b"", {"X-Padding": "a" * 9000})
    assert_fails(OversizedError, unsigned_big)  # size before presence
    broken = post.with_headers(Signature_Input="exchange=(")
    assert_fails(SignatureInvalidError, replace(broken, body=b"other"))  # parse before digest
    future = signed_post(CLINIC, now=NOW + 3600)
    assert_fails(SignatureNotYetValidError, future, COMMUNITY)  # time before keyid
    assert_fails(SignatureExpiredError, post.with_headers(Content_Digest=None), now=NOW + 3600)
    wrong_key = replace(signed_post(CLINIC), body=b"other")
    assert_fails(SignatureInvalidError, wrong_key, COMMUNITY)  # keyid before digest
    both = replace(post, method="PUT", body=b"other")
    assert_fails(SignatureInvalidError, both)  # signature before digest


# --- Property: nothing but ProtocolError escapes ------------------------------------------

BASE = signed_post()
HEADER_NAMES = [*BASE.headers, "signature-input", "SIGNATURE", "content-digest", "X-Other"]


@st.composite
def mutated_text(draw: st.DrawFn, original: str) -> str:
    """``original`` with a slice replaced by arbitrary text, or arbitrary text altogether."""
    if draw(st.booleans()):
        return draw(st.text(max_size=300))
    start = draw(st.integers(0, len(original)))
    end = draw(st.integers(start, min(len(original), start + 20)))
    return original[:start] + draw(st.text(max_size=8)) + original[end:]


@st.composite
def mutated_requests(draw: st.DrawFn) -> Request:
    headers = dict(BASE.headers)
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(HEADER_NAMES))
        if draw(st.integers(0, 5)) == 0:
            headers.pop(name, None)
        else:
            headers[name] = draw(mutated_text(headers.get(name, "")))
    method = draw(
        st.one_of(st.just(BASE.method), st.sampled_from(["GET", "put", ""]), st.text(max_size=8))
    )
    url = draw(st.one_of(st.just(BASE.url), mutated_text(BASE.url)))
    body = draw(st.one_of(st.just(BASE.body), st.binary(max_size=64)))
    return Request(method, url, body, headers)


PROPERTY_SETTINGS = settings(
    max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(mutated_requests())
def test_mutated_requests_raise_only_protocol_errors(request_: Request) -> None:
    for key in (COMMUNITY, CLINIC):
        with contextlib.suppress(ProtocolError):
            verify(request_, key)
    with contextlib.suppress(ProtocolError):
        read_signature_keyid(request_.headers)


@PROPERTY_SETTINGS
@given(
    st.dictionaries(
        st.one_of(st.sampled_from(HEADER_NAMES), st.text(max_size=20)), st.text(max_size=200)
    ),
    st.binary(max_size=64),
)
def test_random_headers_raise_only_protocol_errors(headers: dict[str, str], body: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        verify(Request("POST", INBOX, body, headers))
    with contextlib.suppress(ProtocolError):
        read_signature_keyid(headers)
