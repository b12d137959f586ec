"""Tests for exchange_node.protocol.httpsig: the RFC 9421 ``exchange`` request-signature profile.

Round trips, what signing writes and refuses, header names in any case, the error codes,
and ``read_signature_keyid``. Requests the verifier refuses are in ``test_httpsig_refusals``.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
from dataclasses import replace
from types import SimpleNamespace

import pytest
from http_message_signatures import signatures as library_signatures

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
)
from exchange_node.protocol.keys import generate_key
from exchange_node.protocol.limits import Limits
from tests.protocol.httpsig_requests import (
    CLINIC,
    COMMUNITY,
    INBOX,
    JSON_BODY,
    NONCE,
    NOW,
    Request,
    flip_signature_bit,
    sign,
    signature_params,
    signed_get,
    signed_post,
    verify,
)

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


# --- Header names ------------------------------------------------------------------------


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


# --- Error codes -------------------------------------------------------------------------


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
