"""Property tests: whatever arrives, the protocol core answers with its own errors only.

Random text, random JSON and mutations of valid tokens go through every
verifier; anything other than a :class:`ProtocolError` (a ``ValueError``,
``KeyError``, a joserfc or marshmallow exception) fails the test. A mutated
token that still verifies must carry exactly the original claims.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange_node.protocol import capacity, entity, envelope, keys, statements
from exchange_node.protocol.errors import ProtocolError
from tests.conftest import NOW, ExampleNode
from tests.protocol import factories

COMMUNITY = ExampleNode("https://community.example")
CLINIC = ExampleNode("https://clinic.example")

ENTITY_TOKEN = entity.sign_entity_configuration(
    entity.build_entity_configuration_claims(
        entity_id=CLINIC.entity_id,
        organization_name="Clinic",
        organization_kind="clinic",
        signing_keys=[CLINIC.signing_key],
        encryption_keys=[CLINIC.encryption_key],
        languages=["en"],
        now=NOW,
    ),
    CLINIC.signing_key,
)
CAPACITY_TOKEN = capacity.sign_capacity_document(
    capacity.build_capacity_claims(
        issuer=CLINIC.entity_id,
        version=3,
        now=NOW,
        services=[
            {
                "service": {"id": "s1", "name": "Drop-in", "status": "active"},
                "capacity": {
                    "status": "capacity",
                    "accepting_referrals": True,
                    "intake_fields": ["phone"],
                    "updated_at": "2026-12-31T00:00:00Z",
                },
            }
        ],
    ),
    CLINIC.signing_key,
)
SEALED = envelope.seal_message(
    "referral",
    factories.referral(CLINIC.entity_id),
    issuer=COMMUNITY.entity_id,
    audience=CLINIC.entity_id,
    signing_key=COMMUNITY.signing_key,
    recipient_key=CLINIC.encryption_key.public(),
    now=NOW,
)
RECEIPT = statements.issue_receipt(
    envelope=SEALED.token,
    message_jti=SEALED.jti,
    issuer=CLINIC.entity_id,
    audience=COMMUNITY.entity_id,
    signing_key=CLINIC.signing_key,
    now=NOW,
)


def open_entity(token: str | bytes) -> Any:
    return entity.verify_entity_configuration(
        token, entity_id=CLINIC.entity_id, trusted_thumbprints={CLINIC.signing_key.kid}, now=NOW
    ).entity_id


def open_capacity(token: str | bytes) -> Any:
    return capacity.verify_capacity_document(
        token, issuer=CLINIC.entity_id, issuer_keys=[CLINIC.signing_key.public()], now=NOW
    ).version


def open_sealed(token: str | bytes) -> Any:
    return envelope.open_message(
        token,
        audience=CLINIC.entity_id,
        decryption_keys=[CLINIC.encryption_key],
        sender=COMMUNITY.entity_id,
        sender_keys=[COMMUNITY.signing_key.public()],
        now=NOW,
    ).body


def open_receipt(token: str | bytes) -> Any:
    return statements.verify_receipt(
        token,
        issuer=CLINIC.entity_id,
        issuer_keys=[CLINIC.signing_key.public()],
        audience=COMMUNITY.entity_id,
        envelope=SEALED.token,
        message_jti=SEALED.jti,
        now=NOW,
    ).jti


VERIFIERS = [
    (open_entity, ENTITY_TOKEN),
    (open_capacity, CAPACITY_TOKEN),
    (open_sealed, SEALED.token),
    (open_receipt, RECEIPT),
]
BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def outcome(verify: Any, token: str | bytes) -> Any:
    try:
        return verify(token)
    except ProtocolError as e:
        return e.code


@st.composite
def mutations(draw: st.DrawFn) -> tuple[int, str]:
    index = draw(st.integers(0, len(VERIFIERS) - 1))
    token = VERIFIERS[index][1]
    kind = draw(st.sampled_from(["replace", "delete", "insert", "truncate", "swap-parts", "dots"]))
    at = draw(st.integers(0, len(token) - 1))
    if kind == "replace":
        token = token[:at] + draw(st.sampled_from(BASE64URL + ".=+/ \x00é")) + token[at + 1 :]
    elif kind == "delete":
        token = token[:at] + token[at + draw(st.integers(1, 50)) :]
    elif kind == "insert":
        token = token[:at] + draw(st.text(min_size=1, max_size=20)) + token[at:]
    elif kind == "truncate":
        token = token[:at]
    elif kind == "swap-parts":
        parts = token.split(".")
        parts = draw(st.permutations(parts))
        token = ".".join(parts)
    else:
        token = token.replace(".", draw(st.sampled_from(["", "..", ". "])), 1)
    return index, token


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations())
def test_mutated_tokens_only_raise_protocol_errors(case: tuple[int, str]) -> None:
    index, token = case
    verify, original = VERIFIERS[index]
    result = outcome(verify, token)
    if not isinstance(result, str) or token == original:
        # Still valid: only possible when the bytes that count are unchanged.
        assert result == verify(original)


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(st.text(max_size=300), st.binary(max_size=300)), st.integers(0, len(VERIFIERS) - 1)
)
def test_random_input_only_raises_protocol_errors(data: str | bytes, index: int) -> None:
    assert isinstance(outcome(VERIFIERS[index][0], data), str)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        JSON,
        st.fixed_dictionaries(
            {
                "kty": st.just("OKP"),
                "crv": st.sampled_from(["Ed25519", "X25519"]),
                "x": st.text(max_size=50),
            },
            optional={"d": st.text(max_size=50), "kid": st.text(max_size=5)},
        ),
    )
)
def test_random_jwks_only_raise_key_errors(value: Any) -> None:
    for use in ("sig", "enc"):
        for private in (False, True):
            with contextlib.suppress(ProtocolError):
                keys.import_jwk(value, use, private=private)
    with contextlib.suppress(ProtocolError):
        keys.load_private_keys(json.dumps(value).encode(), None)
