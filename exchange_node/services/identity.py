"""This node's identity document: its entity configuration, built from settings and keys."""

from __future__ import annotations

from exchange_node.errors import ConfigurationError
from exchange_node.keystore import KeyRing
from exchange_node.protocol.entity import (
    build_entity_configuration_claims,
)
from exchange_node.protocol.entity import (
    sign_entity_configuration as sign_claims,
)
from exchange_node.protocol.errors import ProtocolError
from exchange_node.settings import Settings


def sign_entity_configuration(settings: Settings, ring: KeyRing, now: int) -> str:
    """The node's entity configuration, signed with the active key, listing every published key.

    Raises:
        ConfigurationError: the settings (name, URL, languages) do not make a valid document.
    """
    try:
        claims = build_entity_configuration_claims(
            entity_id=settings.url,
            organization_name=settings.name,
            organization_kind=settings.kind,
            signing_keys=ring.published_signing,
            encryption_keys=ring.published_encryption,
            languages=settings.languages,
            now=now,
            limits=settings.limits,
        )
        return sign_claims(claims, ring.signing_key)
    except ProtocolError as e:
        raise ConfigurationError(
            f"the node's settings do not make a valid entity configuration: {e.detail}"
        ) from e
