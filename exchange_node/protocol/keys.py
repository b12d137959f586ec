"""Node keys: Ed25519 for signing, X25519 for encryption, as JWKs named by thumbprint.

A node's ``kid`` is always the RFC 7638 thumbprint of the public key, computed
here and never taken on trust from a document. Private keys are stored as a
JWK Set, encrypted under a passphrase with PBES2 (RFC 7517 section 7) when one
is given. This module does not read or write files; callers do.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import OctKey, OKPKey

from exchange_node.protocol.errors import KeyFormatError, MalformedError, PassphraseError
from exchange_node.protocol.limits import (
    DEFAULT_LIMITS,
    JWE_KEY_ALGORITHM,
    JWS_ALGORITHMS,
    KEY_STORAGE_ALGORITHM,
    Limits,
)

KeyUse = Literal["sig", "enc"]

_CURVE_FOR_USE: dict[str, str] = {"sig": "Ed25519", "enc": "X25519"}
_ALG_FOR_USE: dict[str, str] = {"sig": JWS_ALGORITHMS[0], "enc": JWE_KEY_ALGORITHM}
_STORAGE_CTY = "jwk-set+json"
_PUBLIC_MEMBERS = ("kty", "crv", "x")
_B64URL = re.compile(r"^[A-Za-z0-9_-]+$")
#: Shortest passphrase accepted for key storage (joserfc wants >= 112 bits of key).
MIN_PASSPHRASE_LENGTH = 14


@dataclass(frozen=True)
class NodeKey:
    """One Ed25519 (``use="sig"``) or X25519 (``use="enc"``) key, public or private."""

    use: KeyUse
    kid: str
    okp: OKPKey = field(repr=False, compare=False)

    @property
    def is_private(self) -> bool:
        return bool(self.okp.is_private)

    def public_jwk(self) -> dict[str, str]:
        """The public JWK as published: ``kty``, ``crv``, ``x``, ``kid``, ``use``, ``alg``."""
        data = {member: str(self.okp.dict_value[member]) for member in _PUBLIC_MEMBERS}
        data.update(kid=self.kid, use=self.use, alg=_ALG_FOR_USE[self.use])
        return data

    def private_jwk(self) -> dict[str, str]:
        """The private JWK, for storage only. Raises :class:`KeyFormatError` on a public key."""
        if not self.is_private:
            raise KeyFormatError(f"key {self.kid} holds no private part")
        data = self.public_jwk()
        data["d"] = str(self.okp.dict_value["d"])
        return data

    def public(self) -> NodeKey:
        """This key without its private part."""
        public: dict[str, Any] = self.public_jwk()
        return NodeKey(self.use, self.kid, OKPKey.import_key(public))

    def ed25519_private(self) -> Ed25519PrivateKey:
        """The native signing key, for RFC 9421 request signatures."""
        native = self.okp.private_key
        if self.use != "sig" or not isinstance(native, Ed25519PrivateKey):
            raise KeyFormatError(f"key {self.kid} is not a private Ed25519 signing key")
        return native

    def ed25519_public(self) -> Ed25519PublicKey:
        """The native verification key, for RFC 9421 request signatures."""
        native = self.okp.public_key
        if self.use != "sig" or not isinstance(native, Ed25519PublicKey):
            raise KeyFormatError(f"key {self.kid} is not an Ed25519 signing key")
        return native


def generate_key(use: KeyUse) -> NodeKey:
    """A fresh private key for ``use`` (``"sig"``: Ed25519, ``"enc"``: X25519)."""
    okp = OKPKey.generate_key(_CURVE_FOR_USE[use], private=True)  # type: ignore[arg-type]
    return NodeKey(use, okp.thumbprint(), okp)


def thumbprint(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of an OKP JWK (only ``crv``, ``kty``, ``x`` count).

    Raises:
        KeyFormatError: ``jwk`` is not an OKP key with string ``crv`` and ``x``.
    """
    try:
        members = {name: jwk[name] for name in ("crv", "kty", "x")}
    except (KeyError, TypeError) as e:
        raise KeyFormatError("JWK lacks crv, kty or x") from e
    if not all(isinstance(value, str) for value in members.values()) or members["kty"] != "OKP":
        raise KeyFormatError("JWK is not an OKP key")
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    digest = hashlib.sha256(canonical).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def import_jwk(jwk: Mapping[str, Any], use: KeyUse, *, private: bool = False) -> NodeKey:
    """Load one JWK as a key for ``use``, checking type, curve, ``kid`` and ``alg``.

    A ``kid``, ``use`` or ``alg`` member, when present, must agree with the key;
    a public import refuses a JWK that carries a private part.

    Raises:
        KeyFormatError: the JWK is not a valid key of the expected kind.
    """
    if not isinstance(jwk, Mapping):
        raise KeyFormatError("JWK must be a JSON object")
    expected_crv = _CURVE_FOR_USE[use]
    if jwk.get("kty") != "OKP" or jwk.get("crv") != expected_crv:
        raise KeyFormatError(f"expected an OKP {expected_crv} key for use {use!r}")
    if private != ("d" in jwk):
        raise KeyFormatError(
            "expected a private key" if private else "a public JWK must not hold 'd'"
        )
    for member, expected in (("use", use), ("alg", _ALG_FOR_USE[use])):
        if member in jwk and jwk[member] != expected:
            raise KeyFormatError(f"JWK {member} is {jwk[member]!r}, expected {expected!r}")
    _check_raw_length(jwk, "x")
    if private:
        _check_raw_length(jwk, "d")
    members = {name: jwk[name] for name in ("kty", "crv", "x", "d") if name in jwk}
    try:
        okp = OKPKey.import_key(members)
    except (JoseError, ValueError, TypeError) as e:
        raise KeyFormatError(f"JWK does not hold a valid {expected_crv} key") from e
    kid = okp.thumbprint()
    if "kid" in jwk and jwk["kid"] != kid:
        raise KeyFormatError("JWK kid is not the RFC 7638 thumbprint of the key")
    if private and _derived_x(okp) != jwk["x"]:
        raise KeyFormatError("JWK 'x' does not match its private part 'd'")
    return NodeKey(use, kid, okp)


def import_jwks(jwks: Any, use: KeyUse, *, limits: Limits = DEFAULT_LIMITS) -> list[NodeKey]:
    """Load the public keys of a JWK Set (``{"keys": [...]}``), all for ``use``.

    Raises:
        KeyFormatError: not a JWK Set, too many keys, a duplicate or an invalid key.
    """
    if not isinstance(jwks, Mapping) or not isinstance(jwks.get("keys"), list):
        raise KeyFormatError("expected a JWK Set: an object with a 'keys' list")
    entries = jwks["keys"]
    if not 1 <= len(entries) <= limits.max_jwks_keys:
        raise KeyFormatError(
            f"JWK Set holds {len(entries)} keys, allowed 1 to {limits.max_jwks_keys}"
        )
    keys = [import_jwk(entry, use) for entry in entries]
    if len({key.kid for key in keys}) != len(keys):
        raise KeyFormatError("JWK Set lists the same key twice")
    return keys


def export_jwks(keys: Iterable[NodeKey]) -> dict[str, list[dict[str, str]]]:
    """The public JWK Set of ``keys``."""
    return {"keys": [key.public_jwk() for key in keys]}


def dump_private_keys(
    keys: Sequence[NodeKey], passphrase: str | None, *, limits: Limits = DEFAULT_LIMITS
) -> bytes:
    """Serialize private keys for storage, encrypted under ``passphrase`` when one is given.

    With a passphrase the result is a JWE compact serialization
    (``PBES2-HS512+A256KW`` / ``A256GCM``, ``cty: jwk-set+json``); without one it
    is the plain JWK Set JSON, which the caller must protect with file permissions.
    """
    document = json.dumps({"keys": [key.private_jwk() for key in keys]}, sort_keys=True).encode()
    return seal_key_set(document, passphrase, limits=limits)


def seal_key_set(
    document: bytes, passphrase: str | None, *, limits: Limits = DEFAULT_LIMITS
) -> bytes:
    """A JWK Set document as stored: encrypted under ``passphrase`` when one is given
    (JWE ``PBES2-HS512+A256KW`` / ``A256GCM``, ``cty: jwk-set+json``), else as it is.

    Raises:
        PassphraseError: the passphrase is too short.
    """
    if passphrase is None:
        return document
    _check_passphrase(passphrase)
    header = {
        "alg": KEY_STORAGE_ALGORITHM,
        "enc": "A256GCM",
        "cty": _STORAGE_CTY,
        "p2c": limits.key_storage_iterations,
    }
    password = OctKey.import_key(passphrase.encode("utf-8"))
    token = jwe.encrypt_compact(
        header, document, password, algorithms=[KEY_STORAGE_ALGORITHM, "A256GCM"]
    )
    return token.encode("ascii")


def open_key_set(data: bytes, passphrase: str | None) -> bytes:
    """The JWK Set document in ``data`` written by :func:`seal_key_set` (not yet parsed).

    Raises:
        PassphraseError: encrypted, and the passphrase is missing, too short or wrong.
        MalformedError: neither a JWK Set nor an encrypted one.
    """
    stripped = data.strip()
    if stripped[:1] == b"{":
        return stripped
    if passphrase is None:
        raise PassphraseError("the stored keys are encrypted; a passphrase is required")
    return _decrypt_stored_keys(stripped, passphrase)


def load_private_keys(data: bytes, passphrase: str | None) -> list[NodeKey]:
    """Load keys written by :func:`dump_private_keys`.

    Raises:
        PassphraseError: the keys are encrypted and the passphrase is missing or wrong.
        KeyFormatError: the stored document does not hold valid keys.
    """
    try:
        document = json.loads(open_key_set(data, passphrase))
        entries = document["keys"]
    except (ValueError, KeyError, TypeError) as e:
        raise KeyFormatError("stored keys are not a JWK Set") from e
    keys = []
    for entry in entries:
        use = entry.get("use") if isinstance(entry, Mapping) else None
        if use not in _CURVE_FOR_USE:
            raise KeyFormatError("stored key has no valid 'use'")
        keys.append(import_jwk(entry, use, private=True))
    return keys


def _check_passphrase(passphrase: str) -> None:
    if len(passphrase.encode("utf-8")) < MIN_PASSPHRASE_LENGTH:
        raise PassphraseError(f"the passphrase must be at least {MIN_PASSPHRASE_LENGTH} characters")


def _decrypt_stored_keys(token: bytes, passphrase: str) -> bytes:
    _check_passphrase(passphrase)
    password = OctKey.import_key(passphrase.encode("utf-8"))
    try:
        result = jwe.decrypt_compact(token, password, algorithms=[KEY_STORAGE_ALGORITHM, "A256GCM"])
    except JoseError as e:
        raise PassphraseError("the stored keys cannot be decrypted with this passphrase") from e
    except (ValueError, TypeError) as e:
        raise MalformedError("stored keys are neither a JWK Set nor an encrypted one") from e
    if result.plaintext is None:
        raise PassphraseError("the stored keys cannot be decrypted with this passphrase")
    return bytes(result.plaintext)


def _derived_x(okp: OKPKey) -> str:
    """The public key computed from the private part, base64url, as a JWK 'x'."""
    private = okp.private_key
    if private is None:
        raise KeyFormatError("private JWK does not hold a usable key")
    raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _check_raw_length(jwk: Mapping[str, Any], member: str) -> None:
    value = jwk.get(member)
    if not isinstance(value, str) or not _B64URL.match(value):
        raise KeyFormatError(f"JWK '{member}' must be unpadded base64url")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as e:
        raise KeyFormatError(f"JWK '{member}' is not base64url") from e
    if len(raw) != 32:
        raise KeyFormatError(f"JWK '{member}' must hold 32 bytes, holds {len(raw)}")


__all__ = [
    "MIN_PASSPHRASE_LENGTH",
    "KeyUse",
    "NodeKey",
    "dump_private_keys",
    "export_jwks",
    "generate_key",
    "import_jwk",
    "import_jwks",
    "load_private_keys",
    "open_key_set",
    "seal_key_set",
    "thumbprint",
]
