from __future__ import annotations

import pytest

from exchange_node.protocol import statements
from exchange_node.protocol.errors import (
    AudienceError,
    ExpiredError,
    InvalidClaimError,
    NotYetValidError,
    UntrustedKeyError,
    WrongTypeError,
)
from tests.conftest import ExampleNode

ENVELOPE = "a.b.c.d.e"
JTI = "MessageJti0000000001"


def receipt(clinic: ExampleNode, community: ExampleNode, now: int, **kwargs: str) -> str:
    return statements.issue_receipt(
        envelope=ENVELOPE,
        message_jti=JTI,
        issuer=clinic.entity_id,
        audience=community.entity_id,
        signing_key=clinic.signing_key,
        now=now,
        **kwargs,
    )


def test_receipt_round_trip_and_no_expiry(
    clinic: ExampleNode, community: ExampleNode, now: int
) -> None:
    token = receipt(clinic, community, now)
    for later in (now, now + 30 * 86_400):
        verified = statements.verify_receipt(
            token,
            issuer=clinic.entity_id,
            issuer_keys=clinic.public_signing_keys,
            audience=community.entity_id,
            envelope=ENVELOPE.encode(),
            message_jti=JTI,
            now=later,
        )
        assert verified.envelope_sha256 == statements.envelope_sha256(ENVELOPE)
        assert verified.token == token


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"envelope": "a.b.c.d.f"}, InvalidClaimError),
        ({"message_jti": "AnotherMessageJti001"}, InvalidClaimError),
        ({"audience": "https://school.example"}, AudienceError),
        ({"now": 1_798_761_600 - 3600}, NotYetValidError),
    ],
)
def test_receipt_refusals(
    changes: dict[str, object],
    error: type[Exception],
    clinic: ExampleNode,
    community: ExampleNode,
    now: int,
) -> None:
    arguments: dict[str, object] = {
        "issuer": clinic.entity_id,
        "issuer_keys": clinic.public_signing_keys,
        "audience": community.entity_id,
        "envelope": ENVELOPE,
        "message_jti": JTI,
        "now": now,
    } | changes
    with pytest.raises(error):
        statements.verify_receipt(receipt(clinic, community, now), **arguments)  # type: ignore[arg-type]


def test_receipt_from_another_key(
    clinic: ExampleNode, community: ExampleNode, school: ExampleNode, now: int
) -> None:
    with pytest.raises(UntrustedKeyError):
        statements.verify_receipt(
            receipt(clinic, community, now),
            issuer=clinic.entity_id,
            issuer_keys=school.public_signing_keys,
            audience=community.entity_id,
            envelope=ENVELOPE,
            message_jti=JTI,
            now=now,
        )


def test_peering_request(school: ExampleNode, community: ExampleNode, now: int) -> None:
    token = statements.sign_peering_request(
        issuer=school.entity_id,
        audience=community.entity_id,
        signing_key=school.signing_key,
        now=now,
        message="Please add us.",
    )
    request = statements.verify_peering_request(
        token,
        issuer=school.entity_id,
        issuer_keys=school.public_signing_keys,
        audience=community.entity_id,
        now=now,
    )
    assert request.message == "Please add us."
    assert request.signed_by == school.signing_key.kid
    with pytest.raises(ExpiredError):
        statements.verify_peering_request(
            token,
            issuer=school.entity_id,
            issuer_keys=school.public_signing_keys,
            audience=community.entity_id,
            now=now + 3600,
        )
    # A receipt is not a peering request, even from the same key.
    with pytest.raises(WrongTypeError):
        statements.verify_peering_request(
            receipt(school, community, now),
            issuer=school.entity_id,
            issuer_keys=school.public_signing_keys,
            audience=community.entity_id,
            now=now,
        )
