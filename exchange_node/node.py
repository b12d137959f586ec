"""The node: settings, storage, keys, the federation client and the clock, wired once.

The web app, the worker and the command line each build one :class:`Node` and
hand it (with a database session) to the services. Nothing reads globals.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from exchange_node.db import Database
from exchange_node.db.migrate import check_migrated
from exchange_node.errors import NotInitializedError, StorageError
from exchange_node.federation_client import FederationClient
from exchange_node.keystore import KeyRing, KeyStore
from exchange_node.services import identity
from exchange_node.settings import Settings
from exchange_node.transport import RequestsTransport, Transport


def system_clock() -> int:
    return int(time.time())


def _is_loopback(url: str) -> bool:
    """A node on a loopback URL is a local trial or test: its peers are local too."""
    return (urlsplit(url).hostname or "") in ("localhost", "127.0.0.1", "::1")


@dataclass
class Node:
    settings: Settings
    database: Database
    keystore: KeyStore
    client: FederationClient
    clock: Callable[[], int] = system_clock
    _published: tuple[tuple[str, ...], int, str] | None = field(default=None, repr=False)

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

    def ring(self, session: Session) -> KeyRing:
        return self.keystore.ring(session, self.now())

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
