"""Malformed and hostile compact tokens: each refused with its own error, before any crypto."""

from __future__ import annotations

import base64
import json

import pytest

from exchange_node.protocol import _jose
from exchange_node.protocol.errors import (
    BadSignatureError,
    DecryptionError,
    MalformedError,
    OversizedError,
    ProtocolError,
    UnsupportedAlgorithmError,
    UntrustedKeyError,
    WrongTypeError,
)
from exchange_node.protocol.keys import generate_key
from exchange_node.protocol.limits import DEFAULT_LIMITS, Limits

TYP = "exchange-capacity+jwt"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def header(**members: object) -> str:
    return b64(json.dumps(members).encode())


@pytest.fixture
def signer():  # type: ignore[no-untyped-def]
    return generate_key("sig")


@pytest.fixture
def token(signer) -> str:  # type: ignore[no-untyped-def]
    return _jose.sign_compact(b'{"iss":"x"}', signer, TYP)


def verify(token: str | bytes, signer, limits: Limits = DEFAULT_LIMITS):  # type: ignore[no-untyped-def]
    return _jose.verify_compact(token, {signer.kid: signer.public()}, TYP, limits)


def test_round_trip_gives_exact_payload_bytes(token: str, signer) -> None:  # type: ignore[no-untyped-def]
    verified = verify(token, signer)
    assert verified.payload == b'{"iss":"x"}'
    assert verified.header == {"alg": "Ed25519", "typ": TYP, "kid": signer.kid}


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda t, k: t + "." + "x", MalformedError),
        (lambda t, k: t.replace(".", "", 1), MalformedError),
        (lambda t, k: "é" + t, MalformedError),
        (lambda t, k: ("é" + t).encode("utf-8"), MalformedError),
        (lambda t, k: "a+b." + t.split(".", 1)[1], MalformedError),
        (lambda t, k: "a." + t.split(".", 1)[1], MalformedError),
        (lambda t, k: b64(b"[1]") + "." + t.split(".", 1)[1], MalformedError),
        (lambda t, k: b64(b"\xff\xfe") + "." + t.split(".", 1)[1], MalformedError),
        (
            lambda t, k: header(alg="none", typ=TYP, kid=k.kid) + "." + t.split(".")[1] + ".",
            UnsupportedAlgorithmError,
        ),
        (
            lambda t, k: header(alg="HS256", typ=TYP, kid=k.kid) + "." + t.split(".", 1)[1],
            UnsupportedAlgorithmError,
        ),
        (
            lambda t, k: header(alg="EdDSA", typ=TYP, kid=k.kid) + "." + t.split(".", 1)[1],
            UnsupportedAlgorithmError,
        ),
        (
            lambda t, k: header(typ=TYP, kid=k.kid) + "." + t.split(".", 1)[1],
            UnsupportedAlgorithmError,
        ),
        (
            lambda t, k: header(alg="Ed25519", typ="JWT", kid=k.kid) + "." + t.split(".", 1)[1],
            WrongTypeError,
        ),
        (lambda t, k: header(alg="Ed25519", typ=TYP) + "." + t.split(".", 1)[1], MalformedError),
        (
            lambda t, k: (
                header(alg="Ed25519", typ=TYP, kid=k.kid, jku="https://evil")
                + "."
                + t.split(".", 1)[1]
            ),
            MalformedError,
        ),
        (
            lambda t, k: header(alg="Ed25519", typ=TYP, kid="other") + "." + t.split(".", 1)[1],
            UntrustedKeyError,
        ),
        (
            lambda t, k: header(alg="Ed25519", typ=TYP, kid=k.kid) + "." + t.split(".", 1)[1],
            BadSignatureError,
        ),
        (lambda t, k: t[:-4] + ("AAAA" if not t.endswith("AAAA") else "BBBB"), BadSignatureError),
        (lambda t, k: t.rsplit(".", 1)[0] + ".", BadSignatureError),
        (lambda t, k: t + "A" * 2_000_000, OversizedError),
        (
            lambda t, k: header(alg="Ed25519", typ=TYP, kid=k.kid, pad="x" * 5000) + ".e30.",
            OversizedError,
        ),
    ],
)
def test_malformed_tokens(make, error, token, signer) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error):
        verify(make(token, signer), signer)


def test_decrypt_refusals(signer) -> None:  # type: ignore[no-untyped-def]
    receiver = generate_key("enc")
    sealed = _jose.encrypt_compact(_jose.sign_compact(b"{}", signer, TYP), receiver.public())
    keys = {receiver.kid: receiver}
    assert _jose.decrypt_compact(sealed, keys, DEFAULT_LIMITS).count(".") == 2
    head, rest = sealed.split(".", 1)
    parsed = json.loads(_jose.b64url_decode(head))
    cases = [
        (header(**{**parsed, "enc": "A128CBC-HS256"}) + "." + rest, UnsupportedAlgorithmError),
        (header(**{**parsed, "zip": "DEF"}) + "." + rest, MalformedError),
        (header(**{**parsed, "cty": "json"}) + "." + rest, MalformedError),
        (header(**{**parsed, "kid": "someone-else"}) + "." + rest, DecryptionError),
        (header(**{**parsed, "apu": "eA"}) + "." + rest, DecryptionError),
        (sealed.rsplit(".", 1)[0], MalformedError),
        ("A" * (DEFAULT_LIMITS.max_envelope_bytes + 1), OversizedError),
    ]
    for bad, error in cases:
        with pytest.raises(error):
            _jose.decrypt_compact(bad, keys, DEFAULT_LIMITS)
    with pytest.raises(DecryptionError):
        _jose.decrypt_compact(sealed, {receiver.kid: receiver.public()}, DEFAULT_LIMITS)


def test_errors_carry_stable_codes_and_one_problem_shape() -> None:
    error = UnsupportedAlgorithmError("JWS alg 'none' is not allowed")
    assert error.to_problem("/federation/v1/inbox") == {
        "type": "urn:exchange-node:problem:unsupported_algorithm",
        "title": "Algorithm not allowed",
        "status": 400,
        "detail": "JWS alg 'none' is not allowed",
        "code": "unsupported_algorithm",
        "instance": "/federation/v1/inbox",
    }
    codes = [cls.code for cls in _all_subclasses(ProtocolError)]
    assert all(code.replace("_", "").isalpha() and code.islower() for code in codes)


def _all_subclasses(cls: type) -> list[type]:
    return [sub for direct in cls.__subclasses__() for sub in (direct, *_all_subclasses(direct))]


def test_surrounding_whitespace_is_tolerated_consistently(token: str, signer) -> None:  # type: ignore[no-untyped-def]
    # A document served with a trailing newline is the same document, not a forgery.
    assert verify(token + "\n", signer).payload == b'{"iss":"x"}'
    assert verify(("  " + token + "\r\n").encode(), signer).payload == b'{"iss":"x"}'


def test_repeated_json_member_names_are_refused(signer) -> None:  # type: ignore[no-untyped-def]
    # Parsers disagree on which repeated member wins; refuse rather than pick one.
    token = _jose.sign_compact(b'{"iss":"a","iss":"b"}', signer, TYP)
    verified = verify(token, signer)
    with pytest.raises(MalformedError, match="repeated"):
        _jose.decode_json_object(verified.payload, "claims")


@pytest.mark.parametrize("kid", [["a"], {"a": 1}, 7, None])
def test_jwe_kid_of_another_type_is_refused_cleanly(kid: object, signer) -> None:  # type: ignore[no-untyped-def]
    receiver = generate_key("enc")
    sealed = _jose.encrypt_compact(_jose.sign_compact(b"{}", signer, TYP), receiver.public())
    head, rest = sealed.split(".", 1)
    parsed = json.loads(_jose.b64url_decode(head)) | {"kid": kid}
    with pytest.raises(DecryptionError):
        _jose.decrypt_compact(
            header(**parsed) + "." + rest, {receiver.kid: receiver}, DEFAULT_LIMITS
        )


def test_trailing_newline_in_base64url_is_refused() -> None:
    with pytest.raises(MalformedError):
        _jose.b64url_decode("eyJ9\n")


@pytest.mark.parametrize("bad", ["+", "/", "=", "!", "é"])
def test_every_part_is_strict_base64url(bad: str, token: str, signer) -> None:  # type: ignore[no-untyped-def]
    head, payload, signature = token.split(".")
    with pytest.raises(MalformedError):
        verify(f"{head}.{payload[:5]}{bad}{payload[6:]}.{signature}", signer)
    with pytest.raises(MalformedError):
        verify(f"{head}.{payload}.{signature[:5]}{bad}{signature[6:]}", signer)
    receiver = generate_key("enc")
    parts = _jose.encrypt_compact(token, receiver.public()).split(".")
    for index in (1, 2, 3, 4):
        changed = parts.copy()
        changed[index] = changed[index][:3] + bad + changed[index][4:]
        with pytest.raises(MalformedError):
            _jose.decrypt_compact(".".join(changed), {receiver.kid: receiver}, DEFAULT_LIMITS)
