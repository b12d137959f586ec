"""Write ``http-signatures.json``: RFC 9421 conformance vectors for the ``exchange`` profile.

Run from the repository root::

    .venv/bin/python -m protocol.vectors.make_http_signature_vectors

Every input is fixed (the keys in ``keys.json``, ``now``, the nonces, the bodies) and
Ed25519 signatures are deterministic, so the output is byte-for-byte reproducible;
``tests/protocol/test_httpsig_vectors.py`` checks that it is.
"""

from __future__ import annotations

import base64
import datetime
import json
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from http_message_signatures import HTTPMessageSigner, MappingKeyResolver
from http_message_signatures.algorithms import ED25519

from exchange_node.protocol import httpsig
from exchange_node.protocol.errors import ProtocolError
from exchange_node.protocol.keys import NodeKey, import_jwk
from exchange_node.protocol.limits import DEFAULT_LIMITS, Limits

VECTORS_DIR = Path(__file__).resolve().parent
KEYS_FILE = VECTORS_DIR / "keys.json"
OUTPUT_FILE = VECTORS_DIR / "http-signatures.json"

NOW = 1798761600
INBOX_URL = "https://clinic.example/federation/v1/inbox"
CAPACITY_URL = "https://community.example/federation/v1/capacity"
ENVELOPE_TYPE = "application/jose"
#: Stands in for a sealed envelope: the signature covers the bytes, whatever they are.
ENVELOPE = (
    b"eyJhbGciOiJFQ0RILUVTK0EyNTZLVyIsImVuYyI6IkEyNTZHQ00ifQ"
    b".ZXhhbXBsZS1rZXk.ZXhhbXBsZS1pdg.ZXhhbXBsZS1jaXBoZXJ0ZXh0.ZXhhbXBsZS10YWc"
)


def fixed_nonce(name: str) -> str:
    """A 16-byte nonce derived from the vector name, base64url without padding."""
    raw = name.encode("ascii")[:16].ljust(16, b"-")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


@cache
def load_signing_keys() -> dict[str, NodeKey]:
    nodes = json.loads(KEYS_FILE.read_text(encoding="utf-8"))["nodes"]
    return {
        name: import_jwk(node["signing_key"], "sig", private=True) for name, node in nodes.items()
    }


def signed_post(key: NodeKey, name: str, *, limits: Limits = DEFAULT_LIMITS) -> dict[str, str]:
    headers = {"Content-Type": ENVELOPE_TYPE}
    signed = httpsig.sign_request(
        "POST",
        INBOX_URL,
        headers,
        ENVELOPE,
        key=key,
        now=NOW,
        nonce=fixed_nonce(name),
        limits=limits,
    )
    return headers | signed


def library_signed_post(key: NodeKey, *, nonce: str | None, tag: str) -> dict[str, str]:
    """Sign outside the profile (no nonce, another tag) with the same library and components."""
    message = SimpleNamespace(method="POST", url=INBOX_URL, headers={"Content-Type": ENVELOPE_TYPE})
    resolver = MappingKeyResolver(public_keys={}, private_keys={key.kid: key.ed25519_private()})
    HTTPMessageSigner(signature_algorithm=ED25519, key_resolver=resolver).sign(
        message,
        key_id=key.kid,
        created=datetime.datetime.fromtimestamp(NOW, tz=datetime.UTC),
        expires=datetime.datetime.fromtimestamp(NOW + 60, tz=datetime.UTC),
        nonce=nonce,
        label=httpsig.SIGNATURE_LABEL,
        tag=tag,
        covered_component_ids=httpsig.COVERED_COMPONENTS,
        body=ENVELOPE,
    )
    return dict(message.headers)


def vector(
    name: str,
    description: str,
    *,
    signer: str,
    verify_with: str,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    now: int = NOW,
    error: str | None = None,
) -> dict[str, Any]:
    """One vector; fails unless the implementation gives ``error`` (``None``: valid)."""
    key = load_signing_keys()[verify_with]
    try:
        verified = httpsig.verify_request(method, url, headers, body, key=key, now=now)
    except ProtocolError as e:
        if e.code != error:
            raise AssertionError(f"{name}: expected {error}, got {e.code}: {e}") from e
        expected: dict[str, Any] = {"valid": False, "error": error}
    else:
        if error is not None:
            raise AssertionError(f"{name}: expected {error}, but the request verifies")
        expected = {
            "valid": True,
            "keyid": verified.keyid,
            "nonce": verified.nonce,
            "created": verified.created,
            "expires": verified.expires,
        }
    return {
        "name": name,
        "description": description,
        "signer": signer,
        "verify_with": verify_with,
        "now": now,
        "request": {
            "method": method,
            "url": url,
            "headers": headers,
            "body_base64": base64.b64encode(body).decode("ascii"),
        },
        "expected": expected,
    }


def post_vector(
    name: str,
    description: str,
    headers: dict[str, str],
    *,
    verify_with: str = "community",
    url: str = INBOX_URL,
    body: bytes = ENVELOPE,
    now: int = NOW,
    error: str | None = None,
) -> dict[str, Any]:
    """A POST of a sealed envelope from the community node to the clinic's inbox."""
    return vector(
        name,
        description,
        signer="community",
        verify_with=verify_with,
        method="POST",
        url=url,
        headers=headers,
        body=body,
        now=now,
        error=error,
    )


def get_vector(
    name: str, description: str, headers: dict[str, str], *, error: str | None = None
) -> dict[str, Any]:
    """A GET of the community node's capacity feed by the clinic."""
    return vector(
        name,
        description,
        signer="clinic",
        verify_with="clinic",
        method="GET",
        url=CAPACITY_URL,
        headers=headers,
        body=b"",
        error=error,
    )


def build_vectors() -> list[dict[str, Any]]:
    keys = load_signing_keys()
    community, clinic = keys["community"], keys["clinic"]
    post = signed_post(community, "post-inbox-valid")
    get = httpsig.sign_request(
        "GET", CAPACITY_URL, {}, b"", key=clinic, now=NOW, nonce=fixed_nonce("get-capacity-valid")
    )
    signature = base64.b64decode(post["Signature"].split(":")[1])
    flipped = bytes([signature[0] ^ 1]) + signature[1:]
    tampered_signature = f"{httpsig.SIGNATURE_LABEL}=:{base64.b64encode(flipped).decode()}:"
    no_digest = {name: value for name, value in post.items() if name != "Content-Digest"}
    long_window = signed_post(community, "post-window", limits=Limits(http_signature_window=3600))
    no_nonce = library_signed_post(community, nonce=None, tag=httpsig.SIGNATURE_TAG)
    wrong_tag = library_signed_post(community, nonce=fixed_nonce("wrong-tag"), tag="other")
    return [
        post_vector(
            "post-inbox-valid",
            "A sealed message POSTed to a peer's inbox, signed with the sender's key.",
            post,
        ),
        get_vector(
            "get-capacity-valid",
            "A GET of a peer's capacity feed: empty body, Content-Digest of no bytes, "
            "Content-Type not covered.",
            get,
        ),
        post_vector(
            "post-inbox-tampered-body",
            "The valid POST with one byte of the body changed after signing.",
            post,
            body=ENVELOPE[:-1] + b"X",
            error="digest_mismatch",
        ),
        post_vector(
            "post-inbox-wrong-key",
            "The valid POST verified with another node's key: the keyid does not match.",
            post,
            verify_with="school",
            error="signature_invalid",
        ),
        post_vector(
            "post-inbox-tampered-signature",
            "The valid POST with one bit of the signature flipped.",
            post | {"Signature": tampered_signature},
            error="signature_invalid",
        ),
        post_vector(
            "post-inbox-tampered-url",
            "The valid POST delivered to another target URI than the one signed.",
            post,
            url=INBOX_URL + "?x=1",
            error="signature_invalid",
        ),
        post_vector(
            "post-inbox-expired",
            "The valid POST checked an hour later: expires is past, beyond the clock skew.",
            post,
            now=NOW + 3600,
            error="signature_expired",
        ),
        post_vector(
            "post-inbox-not-yet-valid",
            "The valid POST checked an hour earlier: created is in the future.",
            post,
            now=NOW - 3600,
            error="signature_not_yet_valid",
        ),
        get_vector(
            "get-capacity-unsigned",
            "A GET with a Content-Digest but no Signature-Input or Signature.",
            {"Content-Digest": get["Content-Digest"]},
            error="signature_missing",
        ),
        post_vector(
            "post-inbox-window-too-long",
            "Correctly signed, but expires - created is 3600 s, over the 300 s maximum.",
            long_window,
            error="signature_invalid",
        ),
        post_vector(
            "post-inbox-missing-nonce",
            "Correctly signed, but without the required nonce parameter.",
            no_nonce,
            error="signature_invalid",
        ),
        post_vector(
            "post-inbox-wrong-tag",
            "Correctly signed, but with another application's tag.",
            wrong_tag,
            error="signature_invalid",
        ),
        post_vector(
            "post-inbox-no-content-digest",
            "The valid POST with its Content-Digest header removed.",
            no_digest,
            error="digest_mismatch",
        ),
    ]


def build_document() -> dict[str, Any]:
    limits = DEFAULT_LIMITS
    return {
        "description": (
            "RFC 9421 HTTP message signature vectors for exchange-node federation requests. "
            "Keys are those of protocol/vectors/keys.json (member signing_key). Verify each "
            "request with the key of node verify_with at time now (Unix seconds) and expect "
            "either the verified parameters or the error code. Generated by "
            "make_http_signature_vectors.py."
        ),
        "profile": {
            "algorithm": "ed25519",
            "label": httpsig.SIGNATURE_LABEL,
            "tag": httpsig.SIGNATURE_TAG,
            "keyid": "RFC 7638 SHA-256 thumbprint of the Ed25519 signing key",
            "parameters": ["created", "keyid", "alg", "expires", "nonce", "tag"],
            "covered_components": list(httpsig.COVERED_COMPONENTS),
            "covered_components_empty_body": list(httpsig.COVERED_COMPONENTS_NO_CONTENT_TYPE),
            "content_digest": "sha-256 (RFC 9530), sent also for an empty body",
            "nonce": "16 random bytes, base64url without padding",
            "default_window_seconds": limits.http_signature_window,
            "max_window_seconds": limits.max_http_signature_window,
            "clock_skew_seconds": limits.clock_skew,
            "check_order": [
                "size",
                "presence",
                "parse",
                "params",
                "time",
                "keyid",
                "signature",
                "digest",
            ],
        },
        "vectors": build_vectors(),
    }


def render() -> str:
    return json.dumps(build_document(), indent=2, ensure_ascii=True) + "\n"


def main() -> None:
    OUTPUT_FILE.write_text(render(), encoding="utf-8")
    print(f"wrote {OUTPUT_FILE}")


if __name__ == "__main__":
    main()
