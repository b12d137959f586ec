"""The node's data key: AES-256-GCM keys that seal personal data before it is stored.

Values are sealed here and only their sealed form reaches the database, so neither the
SQLite file nor PostgreSQL rows ever hold personal data in plain text. This module does
not decide what is personal data or where it is stored: the services that store it call
:meth:`DataKeyRing.seal` and :meth:`DataKeyRing.open` with the place it lives as
``context``.

A sealed value is bytes::

    version (1 byte, 0x01) | key id (8 bytes) | nonce (12 bytes, random) | ciphertext | tag (16)

The AES-256-GCM associated data is the first 9 bytes (version and key id) followed by
``context`` in UTF-8 (for example ``referrals/42/person``), so a value copied to another
row or column does not open. A sealed value is 37 bytes longer than its plaintext. The
newest key seals; every key in the ring opens. A random 96-bit nonce per value keeps one
key safe for well beyond 2**30 values (NIST SP 800-38D); rotate long before that.

The keys live in the home folder as ``data.key`` (mode 0600): a JWK Set of ``oct`` keys
(``kid``: the key id in hex, ``alg``: ``A256GCM``, ``created_at``: Unix seconds), in the
order they were made, the newest last. With ``EXCHANGE_KEY_PASSPHRASE`` set the set is
stored as a JWE (``PBES2-HS512+A256KW`` / ``A256GCM``, ``cty: jwk-set+json``), exactly as
``keys.jwk`` is. Writes go to a temporary file in the same folder, are synced, then
renamed; the first key is put in place with a hard link, which fails if another process
got there first, so concurrent first use makes one key.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import secrets
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from exchange_node.errors import ConfigurationError, ExchangeError
from exchange_node.protocol.errors import MalformedError, PassphraseError
from exchange_node.protocol.keys import MIN_PASSPHRASE_LENGTH, open_key_set, seal_key_set
from exchange_node.protocol.limits import DEFAULT_LIMITS, Limits

__all__ = [
    "FORMAT_VERSION",
    "KEY_ID_BYTES",
    "NONCE_BYTES",
    "OVERHEAD",
    "DataKey",
    "DataKeyError",
    "DataKeyRing",
]

FORMAT_VERSION = 1
KEY_ID_BYTES = 8
NONCE_BYTES = 12
TAG_BYTES = 16
KEY_BYTES = 32
_HEADER_BYTES = 1 + KEY_ID_BYTES
#: Bytes a sealed value adds to its plaintext.
OVERHEAD = _HEADER_BYTES + NONCE_BYTES + TAG_BYTES
_ALGORITHM = "A256GCM"
_MISSING_HINT = (
    "restore it from a backup of the home folder; values sealed under it cannot be "
    "opened without it"
)


class DataKeyError(ExchangeError):
    """A sealed value that cannot be opened (or a value that cannot be sealed).

    The detail says why in general terms; it never holds the value or key material.
    """

    code = "data_key"
    title = "Sealed data cannot be opened"


@dataclass(frozen=True)
class DataKey:
    """One AES-256-GCM key: its 8-byte id, its secret and when it was made."""

    key_id: bytes
    secret: bytes = field(repr=False)
    created_at: int

    @property
    def kid(self) -> str:
        return self.key_id.hex()

    @classmethod
    def generate(cls, now: int) -> DataKey:
        return cls(secrets.token_bytes(KEY_ID_BYTES), AESGCM.generate_key(256), now)

    def to_jwk(self) -> dict[str, Any]:
        secret = base64.urlsafe_b64encode(self.secret).rstrip(b"=").decode("ascii")
        return {
            "kty": "oct",
            "kid": self.kid,
            "alg": _ALGORITHM,
            "k": secret,
            "created_at": self.created_at,
        }

    @classmethod
    def from_jwk(cls, jwk: Any) -> DataKey:
        """Raises ValueError (without key material) when ``jwk`` is not a data key."""
        if not isinstance(jwk, Mapping) or jwk.get("kty") != "oct":
            raise ValueError("an entry is not an 'oct' JWK")
        if jwk.get("alg") != _ALGORITHM:
            raise ValueError(f"a key's alg is not {_ALGORITHM}")
        kid, secret, created_at = jwk.get("kid"), jwk.get("k"), jwk.get("created_at")
        if not isinstance(kid, str) or len(kid) != 2 * KEY_ID_BYTES:
            raise ValueError(f"a key's kid is not {2 * KEY_ID_BYTES} hex digits")
        if not isinstance(secret, str):
            raise ValueError(f"key {kid} has no 'k'")
        if not isinstance(created_at, int) or isinstance(created_at, bool):
            raise ValueError(f"key {kid} has no created_at time")
        try:
            key_id = bytes.fromhex(kid)
            raw = base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))
        except (ValueError, binascii.Error) as e:
            raise ValueError(f"key {kid} is not hex and base64url") from e
        if len(raw) != KEY_BYTES:
            raise ValueError(f"key {kid} does not hold {KEY_BYTES} bytes")
        return cls(key_id, raw, created_at)


class DataKeyRing:
    """The data keys in ``path``: the newest seals, every one opens. Safe to share by threads."""

    def __init__(
        self,
        path: Path,
        passphrase: str | None,
        keys: Sequence[DataKey],
        *,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        if not keys:
            raise ConfigurationError(f"{path} holds no data key; {_MISSING_HINT}")
        self.path = path
        self._passphrase = passphrase
        self._limits = limits
        self._lock = threading.Lock()
        self._set(keys)

    # -- files ---------------------------------------------------------------------------

    @classmethod
    def create(
        cls, path: Path, passphrase: str | None, now: int, *, limits: Limits = DEFAULT_LIMITS
    ) -> DataKeyRing:
        """Make the first data key and write ``path``; refuses to replace an existing file.

        Raises:
            ConfigurationError: ``path`` exists, the passphrase is too short, or the
                file cannot be written.
        """
        try:
            return cls._create(path, passphrase, now, limits)
        except FileExistsError:
            raise ConfigurationError(
                f"{path} already exists; refusing to replace the data key"
            ) from None

    @classmethod
    def load(
        cls, path: Path, passphrase: str | None, *, limits: Limits = DEFAULT_LIMITS
    ) -> DataKeyRing:
        """The ring stored in ``path``.

        Raises:
            ConfigurationError: the file is missing, unreadable, corrupt, or encrypted
                under another passphrase (or none given); the message says what to do.
        """
        return cls(path, passphrase, _read_keys(path, passphrase), limits=limits)

    @classmethod
    def load_or_create(
        cls, path: Path, passphrase: str | None, now: int, *, limits: Limits = DEFAULT_LIMITS
    ) -> tuple[DataKeyRing, bool]:
        """The ring in ``path``, made first if there is none; True when this call made it.

        When several processes race, one makes the key and the others load it.
        """
        if not path.exists():
            try:
                return cls._create(path, passphrase, now, limits), True
            except FileExistsError:
                pass  # another process or thread made it first
        return cls.load(path, passphrase, limits=limits), False

    def rotate(self, now: int) -> DataKey:
        """Add a new key, which seals from now on (the older ones still open), and store it.

        Keys another process added to the file since it was read are kept.
        """
        with self._lock:
            keys = self._merged(_read_keys(self.path, self._passphrase))
            new = DataKey.generate(now)
            while any(key.key_id == new.key_id for key in keys):  # 2**-64, but cheap to rule out
                new = DataKey.generate(now)
            self._write([*keys, new], exclusive=False)  # stored before it may seal anything
            self._set([*keys, new])
        return new

    @property
    def keys(self) -> tuple[DataKey, ...]:
        """Every key, oldest first; the last one seals."""
        return self._keys

    @property
    def sealing_key(self) -> DataKey:
        return self._keys[-1]

    # -- sealing -------------------------------------------------------------------------

    def seal(self, plaintext: bytes, *, context: str) -> bytes:
        """``plaintext`` encrypted under the newest key, bound to ``context``."""
        key = self._keys[-1]
        header = bytes([FORMAT_VERSION]) + key.key_id
        nonce = secrets.token_bytes(NONCE_BYTES)
        ciphertext = AESGCM(key.secret).encrypt(nonce, plaintext, header + _encode(context))
        return header + nonce + ciphertext

    def open(self, sealed: bytes, *, context: str) -> bytes:
        """The plaintext of a value sealed by :meth:`seal` with the same ``context``.

        Raises:
            DataKeyError: not a sealed value of this format, a key this ring does not
                hold, or a value that was changed, truncated or sealed for another context.
        """
        associated = _encode(context)
        if len(sealed) < OVERHEAD:
            raise DataKeyError(
                f"sealed value is truncated ({len(sealed)} of at least {OVERHEAD} bytes)"
            )
        if sealed[0] != FORMAT_VERSION:
            raise DataKeyError(f"sealed value has unknown format version {sealed[0]}")
        header, nonce = sealed[:_HEADER_BYTES], sealed[_HEADER_BYTES : _HEADER_BYTES + NONCE_BYTES]
        key = self._key(header[1:])
        try:
            return AESGCM(key.secret).decrypt(
                nonce, sealed[_HEADER_BYTES + NONCE_BYTES :], header + associated
            )
        except InvalidTag:
            raise DataKeyError(
                f"sealed value does not open under data key {key.kid}: it was changed, "
                "truncated or sealed for another place"
            ) from None

    def seal_json(self, value: Any, *, context: str) -> bytes:
        """:meth:`seal` of ``value`` as compact UTF-8 JSON."""
        try:
            text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise DataKeyError(f"value cannot be sealed as JSON: {type(e).__name__}") from None
        return self.seal(text.encode("utf-8"), context=context)

    def open_json(self, sealed: bytes, *, context: str) -> Any:
        """The value sealed by :meth:`seal_json`. Raises :class:`DataKeyError` as :meth:`open`."""
        plaintext = self.open(sealed, context=context)
        try:
            return json.loads(plaintext.decode("utf-8"))
        except ValueError:  # UnicodeDecodeError and JSONDecodeError alike
            raise DataKeyError("sealed value opens but does not hold JSON") from None

    # -- internals -----------------------------------------------------------------------

    @classmethod
    def _create(cls, path: Path, passphrase: str | None, now: int, limits: Limits) -> DataKeyRing:
        """:meth:`create`, raising FileExistsError when ``path`` is (or just became) there."""
        ring = cls(path, passphrase, [DataKey.generate(now)], limits=limits)
        ring._write(ring.keys, exclusive=True)
        ring._set(ring.keys)  # the file's time, now that it exists
        return ring

    def _merged(self, on_disk: Sequence[DataKey]) -> list[DataKey]:
        """The keys in the file, in its order, then any held here that it lacks."""
        stored = {key.key_id for key in on_disk}
        return [*on_disk, *(key for key in self._keys if key.key_id not in stored)]

    def _set(self, keys: Sequence[DataKey]) -> None:
        self._keys = tuple(keys)
        self._by_id = {key.key_id: key for key in self._keys}
        self._mtime = _mtime(self.path)

    def _key(self, key_id: bytes) -> DataKey:
        """The key ``key_id``, reading the file again if another process rotated since."""
        key = self._by_id.get(key_id)
        if key is None and _mtime(self.path) != self._mtime:
            with self._lock, contextlib.suppress(ConfigurationError):
                self._set(self._merged(_read_keys(self.path, self._passphrase)))
            key = self._by_id.get(key_id)
        if key is None:
            raise DataKeyError(
                f"sealed value names data key {key_id.hex()}, which {self.path.name} does not "
                "hold (restore data.key from a backup if this node ever had it)"
            )
        return key

    def _write(self, keys: Sequence[DataKey], *, exclusive: bool) -> None:
        data = _dump_keys(self.path, keys, self._passphrase, self._limits)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if exclusive and self.path.exists():
            raise FileExistsError(self.path)
        descriptor, temporary = tempfile.mkstemp(prefix=".data.key.", dir=self.path.parent)
        try:
            with os.fdopen(descriptor, "wb") as handle:  # mkstemp made it mode 0600
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            if exclusive:
                os.link(temporary, self.path)  # fails if the file appeared meanwhile
            else:
                os.replace(temporary, self.path)
        except FileExistsError:
            raise
        except OSError as e:
            raise ConfigurationError(f"cannot write {self.path}: {e.strerror}") from e
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
        _fsync_folder(self.path.parent)


def _encode(context: str) -> bytes:
    if not isinstance(context, str) or not context:
        raise DataKeyError("context must be non-empty text naming where the value lives")
    try:
        return context.encode("utf-8")
    except UnicodeEncodeError:
        raise DataKeyError("context is not valid Unicode text") from None


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _dump_keys(
    path: Path, keys: Sequence[DataKey], passphrase: str | None, limits: Limits
) -> bytes:
    document = json.dumps({"keys": [key.to_jwk() for key in keys]}, sort_keys=True).encode()
    if passphrase is not None:
        _check_passphrase(passphrase, path)
    return seal_key_set(document, passphrase, limits=limits)


def _read_keys(path: Path, passphrase: str | None) -> list[DataKey]:
    try:
        data = path.read_bytes().strip()
    except FileNotFoundError:
        raise ConfigurationError(f"the data key file {path} is missing; {_MISSING_HINT}") from None
    except OSError as e:
        raise ConfigurationError(f"cannot read the data key file {path}: {e.strerror}") from e
    if data[:1] != b"{":
        data = _decrypt(path, data, passphrase)
    try:
        entries = json.loads(data)["keys"]
    except (ValueError, KeyError, TypeError):
        entries = None
    if not isinstance(entries, list) or not entries:
        raise ConfigurationError(
            f"the data key file {path} is corrupt (not a JWK Set of keys); {_MISSING_HINT}"
        )
    try:
        keys = [DataKey.from_jwk(entry) for entry in entries]
    except ValueError as e:
        raise ConfigurationError(
            f"the data key file {path} is corrupt ({e}); {_MISSING_HINT}"
        ) from None
    if len({key.key_id for key in keys}) != len(keys):
        raise ConfigurationError(f"the data key file {path} lists a key twice; {_MISSING_HINT}")
    return keys


def _decrypt(path: Path, token: bytes, passphrase: str | None) -> bytes:
    if passphrase is None:
        raise ConfigurationError(
            f"the data key file {path} is encrypted: set EXCHANGE_KEY_PASSPHRASE"
        )
    _check_passphrase(passphrase, path)
    try:
        return open_key_set(token, passphrase)
    except PassphraseError:
        raise ConfigurationError(
            f"the data key file {path} cannot be decrypted with this passphrase "
            "(check EXCHANGE_KEY_PASSPHRASE)"
        ) from None
    except MalformedError:
        raise ConfigurationError(
            f"the data key file {path} is corrupt (neither a JWK Set nor an encrypted one); "
            f"{_MISSING_HINT}"
        ) from None


def _check_passphrase(passphrase: str, path: Path) -> None:
    if len(passphrase.encode("utf-8")) < MIN_PASSPHRASE_LENGTH:
        raise ConfigurationError(
            f"cannot use {path}: EXCHANGE_KEY_PASSPHRASE must be at least "
            f"{MIN_PASSPHRASE_LENGTH} characters"
        )
