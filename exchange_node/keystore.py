"""This node's own keys: private parts in the home folder, lifecycle in the database.

The key file (``keys.jwk``) is a JWK Set, encrypted under ``EXCHANGE_KEY_PASSPHRASE``
when one is set, mode 0600 either way. The ``own_keys`` table says, for every
key, when it is published, when it becomes the active one, and when it is
retired, so every process (several web workers, separate workers) agrees on
which key signs without coordinating. Rotation pre-publishes a new key for one
overlap period before it signs, and keeps the old one published for another.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from exchange_node.db.models import OwnKey
from exchange_node.errors import ConfigurationError
from exchange_node.protocol.errors import ProtocolError
from exchange_node.protocol.keys import (
    KeyUse,
    NodeKey,
    dump_private_keys,
    generate_key,
    load_private_keys,
)
from exchange_node.services import audit


@dataclass(frozen=True)
class KeyRing:
    """The keys in force at one moment."""

    #: The key that signs now.
    signing_key: NodeKey
    #: Signing keys to publish: active, pre-published next, retiring previous.
    published_signing: tuple[NodeKey, ...]
    #: Encryption keys to publish, the active one first (peers encrypt to the first).
    published_encryption: tuple[NodeKey, ...]
    #: Private encryption keys that may still open envelopes (not retired).
    decryption_keys: tuple[NodeKey, ...]


@dataclass(frozen=True)
class KeyStatus:
    kid: str
    use: str
    state: str
    published_at: int
    active_from: int
    retire_at: int | None


#: The lifecycle columns of every key (read as plain rows: no ORM objects needed).
_OWN_KEYS = select(
    OwnKey.kid, OwnKey.use, OwnKey.published_at, OwnKey.active_from, OwnKey.retire_at
)


class KeyStore:
    """Reads and writes the key file; answers which keys are in force from the table."""

    def __init__(self, path: Path, passphrase: str | None) -> None:
        self.path = path
        self._passphrase = passphrase
        self._cache: tuple[float, dict[str, NodeKey]] | None = None
        #: Changes whenever this process writes keys: a ring cached before is stale.
        self.generation = 0

    def create(self, session: Session, now: int) -> KeyRing:
        """Generate the first signing and encryption keys of a new node."""
        if self.path.exists():
            raise ConfigurationError(f"{self.path} already exists; refusing to replace keys")
        keys = [generate_key("sig"), generate_key("enc")]
        self._write(keys)
        for key in keys:
            session.add(OwnKey(kid=key.kid, use=key.use, published_at=now, active_from=now))
        session.flush()
        self.generation += 1
        return self.ring(session, now)

    def rotate(
        self, session: Session, now: int, overlap: int, *, actor: str = "cli"
    ) -> list[NodeKey]:
        """Pre-publish new keys now, make them active after ``overlap``, retire the old ones
        one ``overlap`` later, and audit it (``keys.rotated``). Returns the new keys."""
        records = session.scalars(select(OwnKey)).all()
        if any(record.active_from > now for record in records):
            raise ConfigurationError("a rotation is already under way; wait until it switches")
        new = [generate_key("sig"), generate_key("enc")]
        self._write([*self.load().values(), *new])
        for record in records:
            if record.retire_at is None:
                record.retire_at = now + 2 * overlap
        for key in new:
            session.add(
                OwnKey(kid=key.kid, use=key.use, published_at=now, active_from=now + overlap)
            )
        session.flush()
        self.generation += 1
        audit.record(
            session,
            actor=actor,
            action="keys.rotated",
            subject=new[0].kid,
            details={"encryption_kid": new[1].kid, "active_from": now + overlap},
            now=now,
        )
        return new

    def ring(self, session: Session | Connection, now: int) -> KeyRing:
        """The keys in force at ``now``."""
        return self.ring_span(session, now)[0]

    def ring_span(self, session: Session | Connection, now: int) -> tuple[KeyRing, int, int | None]:
        """The keys in force at ``now``, and the times between which they stay so.

        The ring only changes when a key is published, becomes active or retires: it is
        the same from the last of those times at or before ``now`` until (excluding) the
        first one after it (None: no change is planned), as long as the table is unchanged.
        """
        records = sorted(
            session.execute(_OWN_KEYS).all(), key=lambda r: r.active_from, reverse=True
        )
        keys = self.load()
        live = [
            r
            for r in records
            if r.published_at <= now and (r.retire_at is None or r.retire_at > now)
        ]
        missing = [r.kid for r in live if r.kid not in keys]
        if missing:
            keys = self.load(force=True)
            if any(kid not in keys for kid in missing):
                raise ConfigurationError(
                    f"keys {missing} are in the database but not in {self.path}"
                )

        def published(use: KeyUse) -> tuple[NodeKey, ...]:
            ordered = [r for r in live if r.use == use]
            active = [r for r in ordered if r.active_from <= now]
            pending = [r for r in ordered if r.active_from > now]
            return tuple(keys[r.kid] for r in (*active, *pending))

        signing, encryption = published("sig"), published("enc")
        if not signing or not encryption:
            raise ConfigurationError("no active keys: run 'exchange-node init' for a new node")
        ring = KeyRing(
            signing_key=signing[0],
            published_signing=tuple(key.public() for key in signing),
            published_encryption=tuple(key.public() for key in encryption),
            decryption_keys=encryption,
        )
        changes = {
            time
            for r in records
            for time in (r.published_at, r.active_from, r.retire_at)
            if time is not None
        }
        since = max((time for time in changes if time <= now), default=now)
        until = min((time for time in changes if time > now), default=None)
        return ring, since, until

    def statuses(self, session: Session, now: int) -> list[KeyStatus]:
        """Every key with its state at ``now``: next, active, retiring or retired."""
        records = sorted(
            session.scalars(select(OwnKey)).all(), key=lambda r: (r.use, r.active_from)
        )
        active = {
            use: max(
                (r for r in records if r.use == use and r.active_from <= now),
                key=lambda r: r.active_from,
            ).kid
            for use in ("sig", "enc")
            if any(r.use == use and r.active_from <= now for r in records)
        }

        def state(record: OwnKey) -> str:
            if record.retire_at is not None and record.retire_at <= now:
                return "retired"
            if record.active_from > now:
                return "next"
            return "active" if active.get(record.use) == record.kid else "retiring"

        return [
            KeyStatus(r.kid, r.use, state(r), r.published_at, r.active_from, r.retire_at)
            for r in records
        ]

    def version(self) -> tuple[int, int | None]:
        """What changes when keys are written: by this process, or in the key file by any.

        A rotation writes the key file before the table, so a change of either
        tells a cached ring apart from the current one.
        """
        try:
            mtime: int | None = self.path.stat().st_mtime_ns
        except OSError:
            mtime = None
        return self.generation, mtime

    def load(self, *, force: bool = False) -> dict[str, NodeKey]:
        """The private keys in the key file, by kid (cached until the file changes)."""
        try:
            mtime = self.path.stat().st_mtime
            if not force and self._cache is not None and self._cache[0] == mtime:
                return self._cache[1]
            data = self.path.read_bytes()
        except OSError as e:
            raise ConfigurationError(f"cannot read the key file {self.path}: {e.strerror}") from e
        try:
            keys = {key.kid: key for key in load_private_keys(data, self._passphrase)}
        except ProtocolError as e:
            hint = " (check EXCHANGE_KEY_PASSPHRASE)" if e.code == "bad_passphrase" else ""
            raise ConfigurationError(f"cannot load {self.path}: {e.detail}{hint}") from e
        self._cache = (mtime, keys)
        return keys

    def _write(self, keys: list[NodeKey]) -> None:
        try:
            data = dump_private_keys(keys, self._passphrase)
        except ProtocolError as e:
            raise ConfigurationError(f"cannot store keys: {e.detail}") from e
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, self.path)
        self._cache = None
