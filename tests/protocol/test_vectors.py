"""The conformance vectors of protocol/vectors/, checked two ways.

1. This implementation gives the expected result (claims or error code) for every vector.
2. jwcrypto, an independent JOSE implementation, verifies and decrypts every valid
   vector with the published keys and gets the same claims: the vectors are
   plain standard JOSE, not an artefact of joserfc.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jwcrypto import jwe as jc_jwe
from jwcrypto import jwk as jc_jwk
from jwcrypto import jws as jc_jws

from exchange_node.protocol import capacity, entity, envelope, statements
from exchange_node.protocol.errors import ProtocolError
from exchange_node.protocol.keys import NodeKey, import_jwk

VECTORS = Path(__file__).resolve().parents[2] / "protocol" / "vectors"
NODES = json.loads((VECTORS / "keys.json").read_text())["nodes"]
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


def node_key(node: str, which: str = "signing_key") -> NodeKey:
    use = "enc" if which == "encryption_key" else "sig"
    return import_jwk(NODES[node][which], use, private=True)


def signing_keys(node: str) -> list[NodeKey]:
    return [node_key(node).public(), node_key(node, "next_signing_key").public()]


def entity_id(node: str) -> str:
    return NODES[node]["entity_id"]


def token_of(vector: dict[str, Any]) -> str:
    if vector["token"] is not None:
        return vector["token"]
    fill = vector["token_fill"]
    return fill["char"] * fill["length"]


def run_entity(vector: dict[str, Any]) -> dict[str, Any]:
    result = entity.verify_entity_configuration(
        token_of(vector),
        entity_id=vector["entity_id"],
        trusted_thumbprints=vector["trusted_thumbprints"],
        now=vector["now"],
    )
    return {"iss": result.entity_id, "signed_by": result.signed_by}


def run_capacity(vector: dict[str, Any]) -> dict[str, Any]:
    keys = [key for node in vector["issuer_keys"] for key in signing_keys(node)]
    result = capacity.verify_capacity_document(
        token_of(vector),
        issuer=vector["issuer"],
        issuer_keys=keys,
        now=vector["now"],
        held_version=vector.get("held_version"),
    )
    return {"iss": result.issuer, "version": result.version}


def run_message(vector: dict[str, Any]) -> dict[str, Any]:
    receiver, sender = vector["receiver"], vector["sender"]
    result = envelope.open_message(
        token_of(vector),
        audience=entity_id(receiver),
        decryption_keys=[node_key(receiver, "encryption_key")],
        sender=entity_id(sender),
        sender_keys=signing_keys(sender),
        now=vector["now"],
    )
    return {"iss": result.issuer, "jti": result.jti, "message_type": result.message_type}


def run_statement(vector: dict[str, Any]) -> dict[str, Any]:
    common = {
        "issuer": entity_id(vector["issuer"]),
        "issuer_keys": signing_keys(vector["issuer"]),
        "audience": entity_id(vector["audience"]),
        "now": vector["now"],
    }
    if vector["kind"] == "receipt":
        receipt = statements.verify_receipt(
            token_of(vector),
            envelope=vector["envelope"],
            message_jti=vector["message_jti"],
            **common,
        )
        return {"iss": receipt.issuer, "jti": receipt.jti}
    request = statements.verify_peering_request(token_of(vector), **common)
    return {"iss": request.issuer, "jti": request.jti}


RUNNERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "entity-configuration.json": run_entity,
    "capacity-document.json": run_capacity,
    "messages.json": run_message,
    "statements.json": run_statement,
}


def test_every_file_has_valid_and_invalid_vectors() -> None:
    for name in FILES:
        verdicts = {vector["expected"]["valid"] for vector in load(name)}
        assert verdicts == {True, False}, name


@pytest.mark.parametrize(("file", "vector"), ALL, ids=[f"{f}:{v['name']}" for f, v in ALL])
def test_vector_with_this_implementation(file: str, vector: dict[str, Any]) -> None:
    expected = vector["expected"]
    if expected["valid"]:
        result = RUNNERS[file](vector)
        assert result["iss"] == expected["claims"]["iss"]
        if "jti" in result:
            assert result["jti"] == expected["claims"]["jti"]
        return
    with pytest.raises(ProtocolError) as caught:
        RUNNERS[file](vector)
    assert caught.value.code == expected["error"], caught.value


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
