"""The sans-IO protocol core of exchange-node.

Keys, signed documents (entity configuration, capacity), sealed messages,
signed statements (receipts, peering requests), RFC 9421 request signatures,
the referral state machine, limits and errors. Nothing here performs I/O,
reads the environment or the clock: callers pass bytes, keys and ``now``
(Unix seconds) in, and get typed objects or a :class:`ProtocolError` out.
The normative description is ``protocol/SPEC.md`` in the repository.
"""

from exchange_node.protocol.capacity import (
    CapacityDocument,
    ServiceCapacity,
    build_capacity_claims,
    sign_capacity_document,
    verify_capacity_document,
)
from exchange_node.protocol.entity import (
    EntityConfiguration,
    build_entity_configuration_claims,
    sign_entity_configuration,
    verify_entity_configuration,
)
from exchange_node.protocol.envelope import Message, SealedMessage, open_message, seal_message
from exchange_node.protocol.errors import ProtocolError
from exchange_node.protocol.keys import (
    NodeKey,
    dump_private_keys,
    generate_key,
    import_jwk,
    load_private_keys,
    thumbprint,
)
from exchange_node.protocol.limits import DEFAULT_LIMITS, Limits
from exchange_node.protocol.statements import (
    issue_receipt,
    sign_peering_request,
    verify_peering_request,
    verify_receipt,
)
from exchange_node.protocol.states import ReferralStatus, Side, check_transition

__all__ = [
    "DEFAULT_LIMITS",
    "CapacityDocument",
    "EntityConfiguration",
    "Limits",
    "Message",
    "NodeKey",
    "ProtocolError",
    "ReferralStatus",
    "SealedMessage",
    "ServiceCapacity",
    "Side",
    "build_capacity_claims",
    "build_entity_configuration_claims",
    "check_transition",
    "dump_private_keys",
    "generate_key",
    "import_jwk",
    "issue_receipt",
    "load_private_keys",
    "open_message",
    "seal_message",
    "sign_capacity_document",
    "sign_entity_configuration",
    "sign_peering_request",
    "thumbprint",
    "verify_capacity_document",
    "verify_entity_configuration",
    "verify_peering_request",
    "verify_receipt",
]
