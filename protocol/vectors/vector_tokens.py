"""The fixed keys of keys.json, and the tokens and vector records built from them.

Shared by the vector builders of ``make_vectors.py``: sign and seal with the example
nodes' keys, hand-build a JWS with raw Ed25519 where the library would refuse (other
algorithms, missing claims), tamper with one bit, decode a token for its expected
result, and shape a valid or invalid vector. Writes no files.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from exchange_node.protocol import _jose, envelope
from exchange_node.protocol.keys import NodeKey, import_jwk
from exchange_node.protocol.limits import DEFAULT_LIMITS

HERE = Path(__file__).resolve().parent
NOW = 1_798_761_600  # 2027-01-01T00:00:00Z
SKEW = DEFAULT_LIMITS.clock_skew
NODES = json.loads((HERE / "keys.json").read_text())["nodes"]


def key(node: str, which: str = "signing_key") -> NodeKey:
    use = "enc" if which == "encryption_key" else "sig"
    return import_jwk(NODES[node][which], use, private=True)  # type: ignore[arg-type]


def entity_id(node: str) -> str:
    return str(NODES[node]["entity_id"])


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_jws(header: dict[str, Any], claims: dict[str, Any], signer: NodeKey | None) -> str:
    """A compact JWS signed with raw Ed25519 over exactly these header and payload bytes."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(_jose.encode_json(claims))}"
    signature = b"" if signer is None else signer.ed25519_private().sign(signing_input.encode())
    return f"{signing_input}.{b64(signature)}"


def tamper(token: str, part: int) -> str:
    """Flip one bit in the middle of one part of a compact serialization."""
    parts = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(parts[part] + "=" * (-len(parts[part]) % 4)))
    raw[len(raw) // 2] ^= 0x01
    parts[part] = b64(bytes(raw))
    return ".".join(parts)


def decoded(token: str) -> dict[str, Any]:
    header, payload, _ = token.split(".")
    return {
        "header": json.loads(_jose.b64url_decode(header)),
        "claims": json.loads(_jose.b64url_decode(payload)),
    }


def valid(
    name: str, description: str, token: str, now: int, inputs: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "description": description,
        "token": token,
        "now": now,
        **inputs,
        "expected": {"valid": True, **extra},
    }


def invalid(
    name: str,
    description: str,
    token: str | None,
    now: int,
    inputs: dict[str, Any],
    error: str,
    **extra: Any,
) -> dict[str, Any]:
    vector = {
        "name": name,
        "description": description,
        "token": token,
        "now": now,
        **inputs,
        "expected": {"valid": False, "error": error},
    }
    vector.update(extra)
    return vector


def seal(kind: str, sender: str, receiver: str, body: dict[str, Any], **kw: Any) -> str:
    return envelope.seal_message(
        kind,
        body,
        issuer=entity_id(sender),
        audience=kw.pop("audience", entity_id(receiver)),
        signing_key=kw.pop("signing_key", key(sender)),
        recipient_key=key(receiver, "encryption_key").public(),
        now=NOW,
        **kw,
    ).token


def seal_raw(claims: dict[str, Any], header: dict[str, Any], signer: NodeKey, receiver: str) -> str:
    """Seal a hand-built inner JWS, for negatives the library refuses to build."""
    return _jose.encrypt_compact(
        raw_jws(header, claims, signer), key(receiver, "encryption_key").public()
    )


def inner(token: str, receiver: str) -> str:
    return _jose.decrypt_compact(
        token, {k.kid: k for k in [key(receiver, "encryption_key")]}, DEFAULT_LIMITS
    )


def replace_jwe_header(token: str, **members: str) -> str:
    """Set members of a JWE's protected header, leaving the rest of the token as it was."""
    head, rest = token.split(".", 1)
    header = json.loads(_jose.b64url_decode(head))
    header.update(members)
    return b64(json.dumps(header).encode()) + "." + rest
