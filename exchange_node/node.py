"""The node: settings, storage, keys, the federation client and the clock, wired once.

The web app, the worker and the command line each build one :class:`Node` and
hand it (with a database session) to the services. Nothing reads globals.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from exchange_node.data_key import DataKeyRing
from exchange_node.db import Database
from exchange_node.db.migrate import check_migrated
from exchange_node.db.models import OutboxMessage, Referral, ReferralEvent
from exchange_node.errors import ConfigurationError, NotInitializedError, StorageError
from exchange_node.federation_client import FederationClient
from exchange_node.keystore import KeyRing, KeyStore
from exchange_node.services import identity
from exchange_node.settings import Settings
from exchange_node.transport import RequestsTransport, Transport

log = logging.getLogger("exchange_node.node")

#: The longest a key ring read from the database is reused (see :meth:`Node.ring`).
RING_CACHE_SECONDS = 5.0

#: Every column that holds values sealed under the data key.
_SEALED_COLUMNS = (Referral.sealed, ReferralEvent.sealed_text, OutboxMessage.sealed_body)


def system_clock() -> int:
    return int(time.time())


def _is_loopback(url: str) -> bool:
    """A node on a loopback URL is a local trial or test: its peers are local too."""
    return (urlsplit(url).hostname or "") in ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class _CachedRing:
    """A ring, the span of node times it holds for, and what it was read under."""

    ring: KeyRing
    since: int
    until: int | None
    #: ``time.monotonic()`` after which the ring is read again.
    expires: float
    version: tuple[int, int | None]

    def holds(self, now: int, version: tuple[int, int | None]) -> bool:
        return (
            self.since <= now
            and (self.until is None or now < self.until)
            and time.monotonic() < self.expires
            and version == self.version
        )


@dataclass
class Node:
    settings: Settings
    database: Database
    keystore: KeyStore
    client: FederationClient
    clock: Callable[[], int] = system_clock
    _published: tuple[tuple[str, ...], int, str] | None = field(default=None, repr=False)
    _data_key: DataKeyRing | None = field(default=None, repr=False)
    _data_key_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _ring: _CachedRing | None = field(default=None, repr=False)
    #: Set when a message was queued, so an in-process worker delivers it without waiting.
    outbox_signal: threading.Event = field(default_factory=threading.Event, repr=False)

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        transport: Transport | None = None,
        clock: Callable[[], int] = system_clock,
        check_schema: bool = True,
    ) -> Node:
        """The node in ``settings.home``, refusing a home that was never initialized.

        Raises:
            NotInitializedError: no node.toml in the home folder.
            StorageError: the database is unreachable or not migrated.
        """
        if not settings.is_initialized:
            raise NotInitializedError(
                f"no node in {settings.home}: run 'exchange-node init' (or pass --home)"
            )
        database = Database(settings.database_url)
        if check_schema:
            try:
                check_migrated(database)
            except StorageError:
                database.dispose()  # else its pooled connection outlives the refusal
                raise
        return cls(
            settings=settings,
            database=database,
            keystore=KeyStore(settings.keys_path, settings.key_passphrase),
            client=FederationClient(
                transport
                or RequestsTransport(
                    settings.http_timeout_seconds,
                    allow_private=settings.allow_private_peers or _is_loopback(settings.url),
                ),
                settings.limits,
            ),
            clock=clock,
        )

    def now(self) -> int:
        return self.clock()

    def notify_outbox(self) -> None:
        """Wake this process's worker: a message was queued (call after committing it)."""
        self.outbox_signal.set()

    @property
    def data_key(self) -> DataKeyRing:
        """The keys that seal personal data at rest, read once (made on first use if missing).

        A node initialized before data keys existed has no ``data.key``: the first use
        makes one and logs it. Thread-safe; across processes one of them makes the key.

        Raises:
            ConfigurationError: ``data.key`` cannot be read, decrypted or written.
        """
        ring = self._data_key
        if ring is not None:
            return ring
        with self._data_key_lock:
            if self._data_key is None:
                settings = self.settings
                if not settings.data_key_path.exists():
                    self._refuse_new_data_key_over_sealed_values()
                ring, created = DataKeyRing.load_or_create(
                    settings.data_key_path,
                    settings.key_passphrase,
                    self.now(),
                    limits=settings.limits,
                )
                if created:
                    log.warning(
                        "made the data key %s in %s (this node had none): back it up with keys.jwk",
                        ring.sealing_key.kid,
                        settings.data_key_path,
                    )
                self._data_key = ring
            return self._data_key

    def _refuse_new_data_key_over_sealed_values(self) -> None:
        """A missing ``data.key`` is only made anew when nothing sealed under one is stored.

        Otherwise the file was lost or moved: a new key would open none of those values,
        and new ones would be sealed under a key the backups do not have.
        """
        with self.database.session() as session:
            sealed = any(
                session.scalar(select(column).where(column.is_not(None)).limit(1)) is not None
                for column in (
                    Referral.sealed,
                    ReferralEvent.sealed_text,
                    OutboxMessage.sealed_body,
                )
            )
        if sealed:
            raise ConfigurationError(
                f"{self.settings.data_key_path} is missing, but the database holds personal data "
                "sealed under a data key: restore data.key from the backup made with keys.jwk "
                "(a new key could not open it)"
            )

    def ring(self, session: Session | Connection) -> KeyRing:
        """The keys in force now, read from the database at most every few seconds.

        Every federation request needs the ring, and reading it costs more than the rest
        of a small request's queries. A cached ring is used only at node times within the
        span it holds for (so a key that becomes active or retires at a planned time does
        so on time, on the test clock too), only while neither this process nor the key
        file changed, and for at most :data:`RING_CACHE_SECONDS` (never more than a
        quarter of ``key_overlap_seconds``). That is safe because a rotation by another
        process publishes new keys ``key_overlap_seconds`` before they sign or are
        encrypted to: a ring read just before the rotation misses only keys that nobody
        uses yet, and it is read again long before they are used.
        """
        now, version = self.now(), self.keystore.version()
        cached = self._ring
        if cached is not None and cached.holds(now, version):
            return cached.ring
        lifetime = min(RING_CACHE_SECONDS, self.settings.key_overlap_seconds / 4)
        expires = time.monotonic() + lifetime
        ring, since, until = self.keystore.ring_span(session, now)
        self._ring = _CachedRing(ring, since, until, expires, version)
        return ring

    def entity_configuration(self, session: Session) -> str:
        """The signed entity configuration, re-signed when keys change or half its life is gone."""
        now, ring = self.now(), self.ring(session)
        kids = tuple(
            key.kid
            for key in (ring.signing_key, *ring.published_signing, *ring.published_encryption)
        )
        lifetime = self.settings.limits.entity_configuration_lifetime
        cached = self._published
        if cached is not None and cached[0] == kids and now - cached[1] < lifetime // 2:
            return cached[2]
        token = identity.sign_entity_configuration(self.settings, ring, now)
        self._published = (kids, now, token)
        return token
