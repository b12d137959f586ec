"""Creating a node: home folder, settings file, database schema, first keys and data key."""

from __future__ import annotations

from exchange_node.data_key import DataKeyRing
from exchange_node.db import Database
from exchange_node.db.migrate import upgrade
from exchange_node.errors import ConfigurationError
from exchange_node.keystore import KeyRing, KeyStore
from exchange_node.protocol._claims import check_entity_id
from exchange_node.protocol.errors import ProtocolError
from exchange_node.protocol.keys import generate_key
from exchange_node.services import identity
from exchange_node.settings import IDENTITY, Settings, write_config


def initialize_node(settings: Settings, now: int, persist: tuple[str, ...] = IDENTITY) -> KeyRing:
    """Create the node described by ``settings``; returns its first keys.

    The data key (``data.key``) is made with the signing and encryption keys, after them,
    so a passphrase they refuse writes neither.

    ``persist`` names the settings written to node.toml (by default the identity only:
    what came from the environment stays there). Everything is checked before anything
    is written, so a refused ``init`` can simply be run again.

    Raises:
        ConfigurationError: the home already holds a node, or the settings are not valid.
        StorageError: the database cannot be created or migrated.
    """
    try:
        check_entity_id(settings.url, "url")
    except ProtocolError as e:
        raise ConfigurationError(e.detail) from e
    if settings.is_initialized:
        raise ConfigurationError(f"{settings.home} already holds a node; choose another --home")
    if settings.data_key_path.exists():
        raise ConfigurationError(
            f"{settings.data_key_path} already exists; refusing to replace the data key"
        )
    _check_publishable(settings, now)
    settings.home.mkdir(parents=True, exist_ok=True)
    settings.home.chmod(0o700)
    database = Database(settings.database_url)
    try:
        upgrade(database)
        with database.session() as session:
            ring = KeyStore(settings.keys_path, settings.key_passphrase).create(session, now)
        DataKeyRing.create(
            settings.data_key_path, settings.key_passphrase, now, limits=settings.limits
        )
    finally:
        database.dispose()
    write_config(settings, persist)
    return ring


def _check_publishable(settings: Settings, now: int) -> None:
    """Refuse settings that cannot make an entity configuration (a bad language tag, say)."""
    signing, encryption = generate_key("sig"), generate_key("enc")
    ring = KeyRing(signing, (signing.public(),), (encryption.public(),), (encryption,))
    identity.sign_entity_configuration(settings, ring, now)
