"""Tests for exchange_node.protocol.httpsig: the RFC 9421 ``exchange`` request-signature profile."""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from http_message_signatures import signatures as library_signatures
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange_node.protocol.errors import (
    DigestMismatchError,
    HTTPSignatureError,
    KeyFormatError,
    MalformedError,
    OversizedError,
    ProtocolError,
    SignatureExpiredError,
    SignatureInvalidError,
    SignatureMissingError,
    SignatureNotYetValidError,
)
from exchange_node.protocol.httpsig import (
    COVERED_COMPONENTS,
    VerifiedRequest,
    read_signature_keyid,
    sign_request,
    verify_request,
)
from exchange_node.protocol.keys import NodeKey, generate_key, import_jwk
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


# --- Round trips -------------------------------------------------------------------------


def test_get_round_trip_with_empty_body() -> None:
    request = signed_get(CLINIC)
    assert set(request.headers) == {"Content-Digest", "Signature-Input", "Signature"}
    assert verify(request, CLINIC) == VerifiedRequest(CLINIC.kid, NOW, NOW + 60, NONCE)


def test_post_round_trip_with_json_body() -> None:
    request = signed_post()
    assert verify(request) == VerifiedRequest(COMMUNITY.kid, NOW, NOW + 60, NONCE)


def test_verifies_with_the_public_key_alone() -> None:
    assert verify(signed_post(), COMMUNITY.public()).keyid == COMMUNITY.kid


def test_round_trip_with_a_generated_key() -> None:
    key = generate_key("sig")
    assert verify(signed_post(key), key.public()).keyid == key.kid


def test_signature_input_follows_the_profile() -> None:
    assert signature_params(signed_post()) == (
        '("@method" "@target-uri" "content-type" "content-digest");'
        f'created={NOW};keyid="{COMMUNITY.kid}";alg="ed25519";expires={NOW + 60};'
        f'nonce="{NONCE}";tag="exchange-node"'
    )
    assert signature_params(signed_get()).startswith('("@method" "@target-uri" "content-digest");')


def test_content_digest_is_sha256_also_for_an_empty_body() -> None:
    empty = base64.b64encode(hashlib.sha256(b"").digest()).decode()
    full = base64.b64encode(hashlib.sha256(JSON_BODY).digest()).decode()
    assert signed_get().headers["Content-Digest"] == f"sha-256=:{empty}:"
    assert signed_post().headers["Content-Digest"] == f"sha-256=:{full}:"


def test_default_nonce_is_16_random_bytes_base64url() -> None:
    nonces = {verify(signed_get(nonce=None)).nonce for _ in range(3)}
    assert len(nonces) == 3
    for nonce in nonces:
        assert "=" not in nonce
        assert len(base64.urlsafe_b64decode(nonce + "==")) == 16


def test_window_defaults_to_the_limits() -> None:
    limits = Limits(http_signature_window=300)
    assert verify(signed_post(limits=limits)).expires == NOW + 300


def test_sign_replaces_existing_digest_and_signature_headers() -> None:
    stale = Request("POST", INBOX, JSON_BODY, {"Content-Type": "application/json"})
    stale = stale.with_headers(content_digest="sha-256=:AAAA:", signature="x=:AAAA:")
    added = sign_request(stale.method, stale.url, stale.headers, stale.body, key=COMMUNITY, now=NOW)
    headers = {"Content-Type": "application/json"} | added
    assert verify(replace(stale, headers=headers)).keyid == COMMUNITY.kid


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        (Request("POST", INBOX, JSON_BODY), MalformedError),  # a body needs a Content-Type
        (Request("post", INBOX, b""), MalformedError),
        (Request("GET", "not a url", b""), MalformedError),
        (Request("GET", "https://clinic.example/a b", b""), MalformedError),
    ],
)
def test_sign_refuses_bad_requests(request_: Request, error: type[ProtocolError]) -> None:
    with pytest.raises(error):
        sign(request_)


@pytest.mark.parametrize(
    "nonce", ["short", "has=padding=====================", "a" * 129, "ä" * 22]
)
def test_sign_refuses_bad_nonces(nonce: str) -> None:
    with pytest.raises(MalformedError):
        signed_get(nonce=nonce)


def test_sign_refuses_a_public_key() -> None:
    with pytest.raises(KeyFormatError):
        signed_get(COMMUNITY.public())


def test_real_clock_is_never_consulted(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_clock(*_: object) -> datetime.datetime:
        raise AssertionError("the library read the wall clock")

    fake = SimpleNamespace(
        datetime=SimpleNamespace(now=no_clock, fromtimestamp=datetime.datetime.fromtimestamp),
        timezone=datetime.timezone,
        timedelta=datetime.timedelta,
    )
    monkeypatch.setattr(library_signatures, "datetime", fake)
    for now in (1_000_000_000, NOW, 4_000_000_000):
        assert verify(signed_post(now=now), now=now).created == now


# --- Header names, sizes -----------------------------------------------------------------


@pytest.mark.parametrize("case", [str.lower, str.upper, str.title])
def test_header_names_in_any_case(case: type[str]) -> None:
    request = signed_post()
    request = replace(request, headers={case(k): v for k, v in request.headers.items()})
    assert verify(request).nonce == NONCE
    assert read_signature_keyid(request.headers) == COMMUNITY.kid


def test_signing_accepts_lowercase_content_type() -> None:
    request = sign(Request("POST", INBOX, JSON_BODY, {"content-type": "application/json"}))
    assert verify(request).keyid == COMMUNITY.kid


def test_other_signatures_next_to_ours_are_ignored() -> None:
    request = signed_post()
    request = request.with_headers(
        Signature_Input=request.headers["Signature-Input"] + ', proxy=("@method");created=1',
        Signature=request.headers["Signature"] + ", proxy=:AAAA:",
    )
    assert verify(request).keyid == COMMUNITY.kid


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


def flip_signature_bit(request: Request) -> Request:
    raw = bytearray(base64.b64decode(request.headers["Signature"].split(":")[1]))
    raw[10] ^= 0x01
    return request.with_headers(Signature=f"exchange=:{base64.b64encode(raw).decode()}:")


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


def test_errors_are_http_signature_errors_with_stable_codes() -> None:
    expected = {
        SignatureMissingError: "signature_missing",
        SignatureInvalidError: "signature_invalid",
        SignatureExpiredError: "signature_expired",
        SignatureNotYetValidError: "signature_not_yet_valid",
        DigestMismatchError: "digest_mismatch",
    }
    for error, code in expected.items():
        assert issubclass(error, HTTPSignatureError)
        assert error.code == code
        assert error.status == 401
    assert OversizedError.code == "too_large"


def test_covered_components_constant() -> None:
    assert COVERED_COMPONENTS == ("@method", "@target-uri", "content-type", "content-digest")


# --- read_signature_keyid ------------------------------------------------------------------


def test_read_signature_keyid_does_not_verify() -> None:
    request = flip_signature_bit(signed_post(CLINIC))
    assert read_signature_keyid(request.headers) == CLINIC.kid


def test_read_signature_keyid_checks_the_profile() -> None:
    request = signed_post()
    params = signature_params(request).replace(';tag="exchange-node"', "")
    with pytest.raises(SignatureInvalidError):
        read_signature_keyid(request.with_headers(Signature_Input=f"exchange={params}").headers)


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


def test_content_digest_must_be_exactly_sha256() -> None:
    # A signed sha-512 digest is well formed RFC 9530, but outside the profile.
    request = signed_post()
    digest = hashlib.sha512(request.body).digest()
    sha512 = f"sha-512=:{base64.b64encode(digest).decode()}:"
    resigned = resign(request.with_headers(Content_Digest=sha512), signature_params(request))
    assert_fails(DigestMismatchError, resigned)
