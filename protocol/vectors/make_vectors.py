"""Write the JOSE conformance vectors of protocol/vectors/ from the fixed keys in keys.json.

Run from the repository root: ``python protocol/vectors/make_vectors.py``.
Signatures are deterministic (Ed25519), encryption is not (fresh ephemeral keys
and IVs), so re-running rewrites the sealed tokens; any run's output is valid.
Negative vectors are built by hand where the library would refuse to build them
(other algorithms, tampered bytes), with raw ``cryptography`` signing.

The builders live next to this script: ``document_vectors.py`` (entity configurations,
capacity documents), ``message_vectors.py`` (sealed messages, statements), on the keys
and token tools of ``vector_tokens.py`` and the example bodies of ``vector_data.py``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from document_vectors import capacity_vectors, entity_vectors  # noqa: E402
from message_vectors import message_vectors, statement_vectors  # noqa: E402


def main() -> None:
    files = {
        "entity-configuration.json": ("entity-configuration", entity_vectors()),
        "capacity-document.json": ("capacity-document", capacity_vectors()),
        "messages.json": ("message", message_vectors()),
        "statements.json": ("statement", statement_vectors()),
    }
    for name, (kind, vectors) in files.items():
        document = {
            "description": f"Conformance vectors: {kind}. Keys by node name are in keys.json; "
            "see README.md in this folder for how to run them.",
            "kind": kind,
            "vectors": vectors,
        }
        (HERE / name).write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        print(f"{name}: {len(vectors)} vectors")


if __name__ == "__main__":
    main()
