"""Every size cap, time window and algorithm allow-list of the protocol, in one place.

Callers that need different numbers (tests, a node with unusually large
directories) pass their own :class:`Limits`; nothing reads limits from
anywhere else. Sizes are checked *before* anything is parsed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

#: JWS algorithms accepted anywhere in the protocol (RFC 9864 fully-specified EdDSA).
JWS_ALGORITHMS: Final = ("Ed25519",)
#: JWE key management algorithm for envelopes (RFC 7518 section 4.6, with X25519 per RFC 8037).
JWE_KEY_ALGORITHM: Final = "ECDH-ES+A256KW"
#: JWE content encryption algorithm for envelopes.
JWE_CONTENT_ALGORITHM: Final = "A256GCM"
JWE_ALGORITHMS: Final = (JWE_KEY_ALGORITHM, JWE_CONTENT_ALGORITHM)
#: RFC 9421 algorithm identifier for request signatures.
HTTP_SIGNATURE_ALGORITHM: Final = "ed25519"
#: Key-wrapping algorithm for private keys stored under a passphrase (RFC 7517 section 7).
KEY_STORAGE_ALGORITHM: Final = "PBES2-HS512+A256KW"


@dataclass(frozen=True, slots=True)
class Limits:
    """Size caps (bytes), time windows (seconds) and counts used by every verifier."""

    #: Largest compact token of any kind but the capacity document.
    max_token_bytes: int = 1_048_576
    #: Largest capacity document (compact JWS): 2000 services of about 4 KiB each.
    max_capacity_bytes: int = 8_388_608
    #: Largest sealed message envelope (JWE compact) accepted by an inbox.
    max_envelope_bytes: int = 262_144
    #: Largest JOSE protected header (decoded).
    max_header_bytes: int = 2_048
    #: Largest single HTTP header value the signature code will parse.
    max_http_header_bytes: int = 8_192
    #: Largest request body a federation endpoint reads.
    max_body_bytes: int = 262_144
    #: Keys in one JWK Set.
    max_jwks_keys: int = 8
    #: Services in one capacity document.
    max_services: int = 2_000

    #: Clock difference tolerated between nodes when checking iat/exp/created.
    clock_skew: int = 60
    #: Longest lifetime (exp - iat) a sealed message may declare.
    max_message_lifetime: int = 3_600
    #: Default lifetime given to messages this node seals.
    message_lifetime: int = 600
    #: Longest lifetime an entity configuration may declare.
    max_entity_configuration_lifetime: int = 30 * 86_400
    #: Default lifetime of the entity configuration this node signs.
    entity_configuration_lifetime: int = 86_400
    #: Longest lifetime a capacity document may declare.
    max_capacity_lifetime: int = 7 * 86_400
    #: Default lifetime of the capacity document this node signs.
    capacity_lifetime: int = 86_400
    #: Longest window (expires - created) an HTTP request signature may declare.
    max_http_signature_window: int = 300
    #: Default window given to requests this node signs.
    http_signature_window: int = 60

    #: PBKDF2 iterations for stored private keys (joserfc caps PBES2 at 300,000).
    key_storage_iterations: int = 210_000


DEFAULT_LIMITS: Final = Limits()

__all__ = [
    "DEFAULT_LIMITS",
    "HTTP_SIGNATURE_ALGORITHM",
    "JWE_ALGORITHMS",
    "JWE_CONTENT_ALGORITHM",
    "JWE_KEY_ALGORITHM",
    "JWS_ALGORITHMS",
    "KEY_STORAGE_ALGORITHM",
    "Limits",
]
