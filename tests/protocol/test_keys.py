from __future__ import annotations

import json

import pytest

from exchange_node.protocol import keys
from exchange_node.protocol.errors import KeyFormatError, PassphraseError
from exchange_node.protocol.limits import Limits

FAST = Limits(key_storage_iterations=1000)


def test_rfc7638_thumbprint_of_rfc8037_example_key() -> None:
    # RFC 8037 appendix A.3: the thumbprint of the example Ed25519 key.
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    assert keys.thumbprint(jwk) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


@pytest.mark.parametrize("use", ["sig", "enc"])
def test_generated_key_is_named_by_its_thumbprint(use: keys.KeyUse) -> None:
    key = keys.generate_key(use)
    public = key.public_jwk()
    assert key.kid == keys.thumbprint(public) == public["kid"]
    assert public["crv"] == ("Ed25519" if use == "sig" else "X25519")
    assert "d" not in public
    assert not key.public().is_private


def test_import_recomputes_kid_and_refuses_a_false_one() -> None:
    public = keys.generate_key("sig").public_jwk()
    assert keys.import_jwk(public, "sig").kid == public["kid"]
    with pytest.raises(KeyFormatError, match="thumbprint"):
        keys.import_jwk({**public, "kid": "not-the-thumbprint"}, "sig")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kty": "EC"}, "OKP"),
        ({"crv": "X25519"}, "Ed25519"),
        ({"x": "c2hvcnQ"}, "32 bytes"),
        ({"x": "!!!"}, "base64url"),
        ({"use": "enc"}, "use"),
        ({"alg": "EdDSA"}, "alg"),
        ({"d": "A" * 43}, "must not hold"),
    ],
)
def test_import_refuses_wrong_keys(change: dict[str, str], message: str) -> None:
    public = keys.generate_key("sig").public_jwk()
    with pytest.raises(KeyFormatError, match=message):
        keys.import_jwk({**public, **change}, "sig")


def test_private_import_refuses_mismatched_public_part() -> None:
    private = keys.generate_key("sig").private_jwk()
    other = keys.generate_key("sig").public_jwk()
    with pytest.raises(KeyFormatError):
        keys.import_jwk({**private, "x": other["x"], "kid": other["kid"]}, "sig", private=True)


def test_jwks_limits_and_duplicates() -> None:
    key = keys.generate_key("enc")
    assert [k.kid for k in keys.import_jwks(keys.export_jwks([key]), "enc")] == [key.kid]
    with pytest.raises(KeyFormatError, match="twice"):
        keys.import_jwks({"keys": [key.public_jwk()] * 2}, "enc")
    with pytest.raises(KeyFormatError, match="allowed 1 to"):
        keys.import_jwks({"keys": []}, "enc")
    with pytest.raises(KeyFormatError, match="JWK Set"):
        keys.import_jwks(["not", "a", "set"], "enc")


def test_private_keys_round_trip_under_a_passphrase() -> None:
    stored = [keys.generate_key("sig"), keys.generate_key("enc")]
    data = keys.dump_private_keys(stored, "correct horse battery staple", limits=FAST)
    assert b'"d"' not in data
    assert stored[0].private_jwk()["d"].encode() not in data
    loaded = keys.load_private_keys(data, "correct horse battery staple")
    assert [(k.use, k.kid, k.is_private) for k in loaded] == [(k.use, k.kid, True) for k in stored]


def test_wrong_missing_or_short_passphrase() -> None:
    data = keys.dump_private_keys(
        [keys.generate_key("sig")], "correct horse battery staple", limits=FAST
    )
    with pytest.raises(PassphraseError, match="cannot be decrypted"):
        keys.load_private_keys(data, "wrong horse battery staple")
    with pytest.raises(PassphraseError, match="required"):
        keys.load_private_keys(data, None)
    with pytest.raises(PassphraseError, match="at least"):
        keys.dump_private_keys([keys.generate_key("sig")], "short", limits=FAST)


def test_plain_storage_without_passphrase() -> None:
    key = keys.generate_key("sig")
    data = keys.dump_private_keys([key], None)
    assert json.loads(data)["keys"][0]["kid"] == key.kid
    assert keys.load_private_keys(data, None)[0].kid == key.kid
    with pytest.raises(KeyFormatError):
        keys.load_private_keys(b'{"keys": [{"use": "sig"}]}', None)
    with pytest.raises(KeyFormatError):
        keys.load_private_keys(b"{not json", None)


def test_native_keys_only_for_signing() -> None:
    signing, encryption = keys.generate_key("sig"), keys.generate_key("enc")
    message = b"signed bytes"
    signing.ed25519_public().verify(signing.ed25519_private().sign(message), message)
    with pytest.raises(KeyFormatError):
        encryption.ed25519_private()
    with pytest.raises(KeyFormatError):
        signing.public().ed25519_private()
    with pytest.raises(KeyFormatError):
        signing.public().private_jwk()
