"""The claims inside the conformance vectors of ``protocol/vectors/*.json``, by schema.

Finds every ``claims`` member next to a JOSE ``header`` whose ``typ`` names a wire schema,
and whether the vector marks it valid. Data only, no tests.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from exchange_node.protocol import capacity, entity, messages, statements
from tests.schemas.engines import ROOT

VECTOR_DIR = ROOT / "protocol" / "vectors"

#: The JOSE ``typ`` of each token, to find the schema of a vector's claims.
SCHEMA_BY_TYP = {
    entity.ENTITY_CONFIGURATION_TYP: "entity-configuration.schema.json",
    capacity.CAPACITY_TYP: "capacity-document.schema.json",
    statements.RECEIPT_TYP: "receipt.schema.json",
    statements.PEERING_REQUEST_TYP: "peering-request.schema.json",
    **{kind.typ: f"{name}.schema.json" for name, kind in messages.MESSAGE_TYPES.items()},
}


def vector_claims() -> Iterator[tuple[str, str, dict[str, Any], bool]]:
    """(schema name, id, claims, marked valid) for each ``claims`` member in the vectors."""
    for path in sorted(VECTOR_DIR.glob("*.json")):
        yield from _find_claims(json.loads(path.read_text()), path.name)


def _find_claims(node: Any, where: str) -> Iterator[tuple[str, str, dict[str, Any], bool]]:
    if isinstance(node, list):
        for index, item in enumerate(node):
            label = item.get("name") if isinstance(item, dict) else None
            yield from _find_claims(item, f"{where}:{label or index}")
    elif isinstance(node, dict):
        header = node.get("header")
        typ = header.get("typ") if isinstance(header, dict) else None
        if isinstance(node.get("claims"), dict) and typ in SCHEMA_BY_TYP:
            yield SCHEMA_BY_TYP[typ], where, node["claims"], node.get("valid") is True
        for key, value in node.items():
            yield from _find_claims(value, f"{where}/{key}")


VECTORS = list(vector_claims())
