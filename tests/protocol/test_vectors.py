"""The conformance vectors of protocol/vectors/, checked two ways.

1. This implementation gives the expected result (claims or error code) for every vector.
2. jwcrypto, an independent JOSE implementation, verifies and decrypts every valid
   vector with the published keys and gets the same claims: the vectors are
   plain standard JOSE, not an artefact of joserfc.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jwcrypto import jwe as jc_jwe
from jwcrypto import jwk as jc_jwk
from jwcrypto import jws as jc_jws

from exchange_node import conformance

VECTORS = Path(__file__).resolve().parents[2] / "protocol" / "vectors"
NODES = json.loads((VECTORS / "keys.json").read_text())["nodes"]
NODES_BY_NAME = conformance.Nodes(VECTORS / "keys.json")
FILES = (
    "entity-configuration.json",
    "capacity-document.json",
    "messages.json",
    "statements.json",
)


def load(name: str) -> list[dict[str, Any]]:
    return json.loads((VECTORS / name).read_text())["vectors"]


ALL = [(name, vector) for name in FILES for vector in load(name)]
VALID = [(name, vector) for name, vector in ALL if vector["expected"]["valid"]]


def test_every_file_has_valid_and_invalid_vectors() -> None:
    for name in FILES:
        verdicts = {vector["expected"]["valid"] for vector in load(name)}
        assert verdicts == {True, False}, name


EVERY = list(conformance.load_vectors(VECTORS))


@pytest.mark.parametrize(("file", "vector"), EVERY, ids=[f"{f}:{v['name']}" for f, v in EVERY])
def test_vector_with_this_implementation(file: str, vector: dict[str, Any]) -> None:
    result = conformance.run_vector(file, vector, NODES_BY_NAME)
    assert result.passed, result


# --- The independent implementation -------------------------------------------


def jc_key(node: str, which: str) -> jc_jwk.JWK:
    return jc_jwk.JWK(**NODES[node][which])


def jc_verify(token: str, node: str) -> dict[str, Any]:
    """Verify a compact JWS with jwcrypto, trying the node's current and next signing keys."""
    for which in ("signing_key", "next_signing_key"):
        signed = jc_jws.JWS()
        signed.deserialize(token)
        try:
            signed.verify(jc_key(node, which).public(), alg="Ed25519")
        except jc_jws.InvalidJWSSignature:
            continue
        return json.loads(signed.payload)
    raise AssertionError(f"jwcrypto could not verify the token with {node}'s keys")


def signer_of(file: str, vector: dict[str, Any]) -> str:
    if file == "messages.json":
        return vector["sender"]
    if file == "statements.json":
        return vector["issuer"]
    if file == "capacity-document.json":
        return vector["issuer_keys"][0]
    return next(n for n, data in NODES.items() if data["entity_id"] == vector["entity_id"])


@pytest.mark.parametrize(("file", "vector"), VALID, ids=[f"{f}:{v['name']}" for f, v in VALID])
def test_valid_vector_with_jwcrypto(file: str, vector: dict[str, Any]) -> None:
    token = vector["token"]
    if file == "messages.json":
        sealed = jc_jwe.JWE()
        sealed.deserialize(token, key=jc_key(vector["receiver"], "encryption_key"))
        assert sealed.jose_header["alg"] == "ECDH-ES+A256KW"
        assert sealed.jose_header["enc"] == "A256GCM"
        token = sealed.payload.decode("ascii")
        assert token == vector["expected"]["inner_jws"]
    assert jc_verify(token, signer_of(file, vector)) == vector["expected"]["claims"]
