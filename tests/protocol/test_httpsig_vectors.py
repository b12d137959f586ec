"""The HTTP-signature conformance vectors: our implementation, and RFC 9421 checked by hand."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from exchange_node.protocol.errors import ProtocolError
from exchange_node.protocol.httpsig import verify_request
from exchange_node.protocol.keys import NodeKey, import_jwk

VECTORS_DIR = Path(__file__).resolve().parents[2] / "protocol" / "vectors"
DOCUMENT = json.loads((VECTORS_DIR / "http-signatures.json").read_text(encoding="utf-8"))
NODES = json.loads((VECTORS_DIR / "keys.json").read_text(encoding="utf-8"))["nodes"]
VECTORS = DOCUMENT["vectors"]
VALID = [vector for vector in VECTORS if vector["expected"]["valid"]]


def public_key(node: str) -> NodeKey:
    jwk = {name: value for name, value in NODES[node]["signing_key"].items() if name != "d"}
    return import_jwk(jwk, "sig")


def body_of(vector: dict[str, Any]) -> bytes:
    return base64.b64decode(vector["request"]["body_base64"])


def b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


@pytest.mark.parametrize("vector", VECTORS, ids=[vector["name"] for vector in VECTORS])
def test_vector(vector: dict[str, Any]) -> None:
    request, expected = vector["request"], vector["expected"]
    args = (request["method"], request["url"], request["headers"], body_of(vector))
    key = public_key(vector["verify_with"])
    if expected["valid"]:
        verified = verify_request(*args, key=key, now=vector["now"])
        assert verified.keyid == expected["keyid"] == key.kid
        assert verified.nonce == expected["nonce"]
        assert (verified.created, verified.expires) == (expected["created"], expected["expires"])
    else:
        with pytest.raises(ProtocolError) as info:
            verify_request(*args, key=key, now=vector["now"])
        assert info.value.code == expected["error"]


def test_vectors_cover_every_failure_class() -> None:
    errors = {vector["expected"].get("error") for vector in VECTORS}
    assert errors >= {
        "digest_mismatch",
        "signature_invalid",
        "signature_expired",
        "signature_not_yet_valid",
        "signature_missing",
    }
    names = {vector["name"] for vector in VECTORS}
    assert {"post-inbox-window-too-long", "post-inbox-missing-nonce"} <= names
    assert {vector["request"]["method"] for vector in VALID} == {"GET", "POST"}


def load_generator() -> ModuleType:
    path = VECTORS_DIR / "make_http_signature_vectors.py"
    spec = importlib.util.spec_from_file_location("make_http_signature_vectors", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_vectors_file_is_reproducible() -> None:
    text = (VECTORS_DIR / "http-signatures.json").read_text(encoding="utf-8")
    assert load_generator().render() == text


# --- Independent check: RFC 9421 by hand, with plain `cryptography` -----------------------


def hand_signature_base(vector: dict[str, Any]) -> bytes:
    """RFC 9421 section 2.5, for the components this profile uses, without any library."""
    request = vector["request"]
    headers = {name.lower(): value for name, value in request["headers"].items()}
    label, _, params = headers["signature-input"].partition("=")
    assert label == "exchange"
    inner_list = re.fullmatch(r"\(([^)]*)\)(;.*)", params)
    assert inner_list is not None
    values = {"@method": request["method"], "@target-uri": request["url"]}
    lines = []
    for component in inner_list.group(1).split(" "):
        name = component.strip('"')
        lines.append(f"{component}: {values[name] if name.startswith('@') else headers[name]}")
    lines.append(f'"@signature-params": {params}')
    return "\n".join(lines).encode("ascii")


def hand_thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638: SHA-256 of the required members in lexicographic order, no whitespace."""
    canonical = f'{{"crv":"{jwk["crv"]}","kty":"{jwk["kty"]}","x":"{jwk["x"]}"}}'
    digest = hashlib.sha256(canonical.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@pytest.mark.parametrize("vector", VALID, ids=[vector["name"] for vector in VALID])
def test_valid_vectors_are_plain_rfc9421(vector: dict[str, Any]) -> None:
    headers = vector["request"]["headers"]
    jwk = NODES[vector["signer"]]["signing_key"]
    public = Ed25519PublicKey.from_public_bytes(b64url_decode(jwk["x"]))
    label, _, signature = headers["Signature"].partition("=")
    assert label == "exchange"
    assert signature.startswith(":")
    assert signature.endswith(":")
    public.verify(base64.b64decode(signature[1:-1], validate=True), hand_signature_base(vector))

    digest = base64.b64encode(hashlib.sha256(body_of(vector)).digest()).decode("ascii")
    assert headers["Content-Digest"] == f"sha-256=:{digest}:"
    assert f'keyid="{hand_thumbprint(jwk)}"' in headers["Signature-Input"]
    assert f'alg="ed25519";expires={vector["expected"]["expires"]}' in headers["Signature-Input"]


def test_post_signature_base_as_text() -> None:
    vector = next(vector for vector in VECTORS if vector["name"] == "post-inbox-valid")
    headers = vector["request"]["headers"]
    kid = NODES["community"]["signing_key"]["kid"]
    assert hand_signature_base(vector).decode("ascii") == (
        '"@method": POST\n'
        '"@target-uri": https://clinic.example/federation/v1/inbox\n'
        '"content-type": application/jose\n'
        f'"content-digest": {headers["Content-Digest"]}\n'
        '"@signature-params": ("@method" "@target-uri" "content-type" "content-digest")'
        f';created=1798761600;keyid="{kid}";alg="ed25519";expires=1798761660'
        f';nonce="{vector["expected"]["nonce"]}";tag="exchange-node"'
    )
