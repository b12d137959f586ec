"""Run the conformance vectors of ``protocol/vectors/`` against this implementation.

Each vector file holds one kind of document; a vector names its inputs (node
names from ``keys.json``, ``now``, pinned thumbprints...) and the expected
outcome: valid, or the error code. :func:`check_vectors` runs every file in a
folder and reports per vector. Used by ``exchange-node conformance`` and the
test suite. This module reads files; the protocol core it exercises does not.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exchange_node.protocol import capacity, entity, envelope, httpsig, statements
from exchange_node.protocol.errors import ProtocolError
from exchange_node.protocol.keys import KeyUse, NodeKey, import_jwk

Vector = dict[str, Any]


@dataclass(frozen=True)
class VectorResult:
    file: str
    name: str
    expected: str
    actual: str

    @property
    def passed(self) -> bool:
        return self.expected == self.actual


class Nodes:
    """The fixed example nodes of ``keys.json``, by name."""

    def __init__(self, keys_file: Path) -> None:
        self._nodes: dict[str, Any] = json.loads(keys_file.read_text(encoding="utf-8"))["nodes"]

    def entity_id(self, node: str) -> str:
        return str(self._nodes[node]["entity_id"])

    def private(self, node: str, which: str) -> NodeKey:
        use: KeyUse = "enc" if which == "encryption_key" else "sig"
        return import_jwk(self._nodes[node][which], use, private=True)

    def signing_keys(self, node: str) -> list[NodeKey]:
        """The node's current and next signing keys, public parts only."""
        return [self.private(node, k).public() for k in ("signing_key", "next_signing_key")]


def _token(vector: Vector) -> str:
    if vector["token"] is not None:
        return str(vector["token"])
    fill = vector["token_fill"]
    return str(fill["char"]) * int(fill["length"])


def _entity(vector: Vector, nodes: Nodes) -> str:
    return entity.verify_entity_configuration(
        _token(vector),
        entity_id=vector["entity_id"],
        trusted_thumbprints=vector["trusted_thumbprints"],
        now=vector["now"],
    ).entity_id


def _capacity(vector: Vector, nodes: Nodes) -> str:
    return capacity.verify_capacity_document(
        _token(vector),
        issuer=vector["issuer"],
        issuer_keys=[key for node in vector["issuer_keys"] for key in nodes.signing_keys(node)],
        now=vector["now"],
        held_version=vector.get("held_version"),
    ).issuer


def _message(vector: Vector, nodes: Nodes) -> str:
    receiver, sender = vector["receiver"], vector["sender"]
    return envelope.open_message(
        _token(vector),
        audience=nodes.entity_id(receiver),
        decryption_keys=[nodes.private(receiver, "encryption_key")],
        sender=nodes.entity_id(sender),
        sender_keys=nodes.signing_keys(sender),
        now=vector["now"],
    ).issuer


def _statement(vector: Vector, nodes: Nodes) -> str:
    common: dict[str, Any] = {
        "issuer": nodes.entity_id(vector["issuer"]),
        "issuer_keys": nodes.signing_keys(vector["issuer"]),
        "audience": nodes.entity_id(vector["audience"]),
        "now": vector["now"],
    }
    if vector["kind"] == "receipt":
        return statements.verify_receipt(
            _token(vector), envelope=vector["envelope"], message_jti=vector["message_jti"], **common
        ).issuer
    return statements.verify_peering_request(_token(vector), **common).issuer


def _http_signature(vector: Vector, nodes: Nodes) -> str:
    request = vector["request"]
    return httpsig.verify_request(
        request["method"],
        request["url"],
        request["headers"],
        base64.b64decode(request["body_base64"]),
        key=nodes.signing_keys(vector["verify_with"])[0],
        now=vector["now"],
    ).keyid


RUNNERS: dict[str, Callable[[Vector, Nodes], str]] = {
    "entity-configuration.json": _entity,
    "capacity-document.json": _capacity,
    "messages.json": _message,
    "statements.json": _statement,
    "http-signatures.json": _http_signature,
}


def run_vector(file: str, vector: Vector, nodes: Nodes) -> VectorResult:
    """Run one vector; ``actual`` is ``"valid"`` or the error code raised."""
    expected = "valid" if vector["expected"]["valid"] else str(vector["expected"]["error"])
    try:
        RUNNERS[file](vector, nodes)
    except ProtocolError as e:
        return VectorResult(file, vector["name"], expected, e.code)
    return VectorResult(file, vector["name"], expected, "valid")


def load_vectors(folder: Path) -> Iterator[tuple[str, Vector]]:
    """Every vector of every known file in ``folder``, as (file name, vector)."""
    for file in RUNNERS:
        document = json.loads((folder / file).read_text(encoding="utf-8"))
        for vector in document["vectors"]:
            yield file, vector


def check_vectors(folder: Path) -> list[VectorResult]:
    """Run every vector in ``folder`` (which also holds ``keys.json``)."""
    nodes = Nodes(folder / "keys.json")
    return [run_vector(file, vector, nodes) for file, vector in load_vectors(folder)]
