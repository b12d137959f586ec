from __future__ import annotations

from typing import Any

import pytest

from exchange_node.protocol import entity
from exchange_node.protocol.errors import (
    ExpiredError,
    InvalidClaimError,
    RollbackError,
    SchemaError,
    UntrustedKeyError,
    WrongIssuerError,
)
from tests.conftest import ExampleNode


def claims_for(node: ExampleNode, now: int, **overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "entity_id": node.entity_id,
        "organization_name": "Northside Health Clinic",
        "organization_kind": "clinic",
        "signing_keys": [node.signing_key, node.next_signing_key],
        "encryption_keys": [node.encryption_key],
        "languages": ["en", "ar"],
        "now": now,
    }
    return entity.build_entity_configuration_claims(**(arguments | overrides))


def test_build_sign_verify(clinic: ExampleNode, now: int) -> None:
    token = entity.sign_entity_configuration(claims_for(clinic, now), clinic.signing_key)
    verified = entity.verify_entity_configuration(
        token, entity_id=clinic.entity_id, trusted_thumbprints={clinic.signing_key.kid}, now=now
    )
    assert verified.organization_kind == "clinic"
    assert verified.inbox_endpoint == "https://clinic.example/federation/v1/inbox"
    assert verified.signing_thumbprints == {clinic.signing_key.kid, clinic.next_signing_key.kid}
    assert [key.kid for key in verified.encryption_keys] == [clinic.encryption_key.kid]
    assert all(not key.is_private for key in (*verified.signing_keys, *verified.encryption_keys))
    assert verified.languages == ("en", "ar")
    assert verified.signed_by == clinic.signing_key.kid


def test_rotation_chains_from_a_trusted_key(clinic: ExampleNode, now: int) -> None:
    claims = claims_for(clinic, now)
    first = entity.verify_entity_configuration(
        entity.sign_entity_configuration(claims, clinic.signing_key),
        entity_id=clinic.entity_id,
        trusted_thumbprints={clinic.signing_key.kid},
        now=now,
    )
    # After the switch the clinic signs with the pre-published key and drops the old one.
    later = claims_for(clinic, now + 3600, signing_keys=[clinic.next_signing_key])
    rotated = entity.sign_entity_configuration(later, clinic.next_signing_key)
    verified = entity.verify_entity_configuration(
        rotated,
        entity_id=clinic.entity_id,
        trusted_thumbprints=first.signing_thumbprints,
        now=now + 3600,
    )
    assert verified.signing_thumbprints == {clinic.next_signing_key.kid}
    # A verifier that only ever pinned the old key and never saw the next one must re-pin.
    with pytest.raises(UntrustedKeyError):
        entity.verify_entity_configuration(
            rotated,
            entity_id=clinic.entity_id,
            trusted_thumbprints={clinic.signing_key.kid},
            now=now,
        )


def test_no_trusted_thumbprints_is_refused_not_trivially_valid(
    clinic: ExampleNode, now: int
) -> None:
    token = entity.sign_entity_configuration(claims_for(clinic, now), clinic.signing_key)
    with pytest.raises(UntrustedKeyError, match="no trusted thumbprint"):
        entity.verify_entity_configuration(
            token, entity_id=clinic.entity_id, trusted_thumbprints=(), now=now
        )


def test_signing_key_must_be_published(clinic: ExampleNode, school: ExampleNode, now: int) -> None:
    with pytest.raises(UntrustedKeyError):
        entity.sign_entity_configuration(claims_for(clinic, now), school.signing_key)


def test_pinned_kid_whose_key_is_missing_from_jwks(clinic: ExampleNode, now: int) -> None:
    claims = claims_for(clinic, now, signing_keys=[clinic.next_signing_key])
    claims["jwks"]["keys"].append(clinic.signing_key.public_jwk())
    token = entity.sign_entity_configuration(claims, clinic.signing_key)
    claims["jwks"]["keys"].pop()
    from exchange_node.protocol import _jose

    stripped = _jose.sign_compact(
        _jose.encode_json(claims), clinic.signing_key, entity.ENTITY_CONFIGURATION_TYP
    )
    assert token != stripped
    with pytest.raises(UntrustedKeyError):
        entity.verify_entity_configuration(
            stripped,
            entity_id=clinic.entity_id,
            trusted_thumbprints={clinic.signing_key.kid},
            now=now,
        )


def test_expired_and_wrong_entity(clinic: ExampleNode, now: int) -> None:
    token = entity.sign_entity_configuration(
        claims_for(clinic, now, lifetime=600), clinic.signing_key
    )
    trusted = {clinic.signing_key.kid}
    with pytest.raises(ExpiredError):
        entity.verify_entity_configuration(
            token, entity_id=clinic.entity_id, trusted_thumbprints=trusted, now=now + 700
        )
    with pytest.raises(WrongIssuerError):
        entity.verify_entity_configuration(
            token, entity_id="https://other.example", trusted_thumbprints=trusted, now=now
        )


@pytest.mark.parametrize(
    "entity_id",
    [
        "http://clinic.example",
        "https://clinic.example/",
        "https://clinic.example?x=1",
        "https://user:pw@clinic.example",
        "ftp://clinic.example",
        "https://",
    ],
)
def test_entity_identifier_rules(clinic: ExampleNode, now: int, entity_id: str) -> None:
    with pytest.raises(InvalidClaimError):
        claims_for(clinic, now, entity_id=entity_id)


def test_loopback_http_is_allowed_for_local_nodes(clinic: ExampleNode, now: int) -> None:
    claims = claims_for(clinic, now, entity_id="http://127.0.0.1:8041")
    assert (
        claims["metadata"]["exchange_node"]["capacity_endpoint"]
        == "http://127.0.0.1:8041/federation/v1/capacity"
    )


def test_invalid_metadata_is_refused_with_the_field(clinic: ExampleNode, now: int) -> None:
    with pytest.raises(SchemaError) as caught:
        claims_for(clinic, now, languages=["not a language tag"])
    assert "/metadata/exchange_node/languages/0" in caught.value.fields
    with pytest.raises(InvalidClaimError, match="organization kind"):
        claims_for(clinic, now, organization_kind="bank")


def test_endpoint_on_another_origin_is_refused(clinic: ExampleNode, now: int) -> None:
    claims = claims_for(clinic, now)
    claims["metadata"]["exchange_node"]["inbox_endpoint"] = "https://attacker.example/inbox"
    token = entity.sign_entity_configuration(claims, clinic.signing_key)
    with pytest.raises(InvalidClaimError, match="inbox_endpoint"):
        entity.verify_entity_configuration(
            token, entity_id=clinic.entity_id, trusted_thumbprints={clinic.signing_key.kid}, now=now
        )


def test_older_document_than_the_one_held_is_refused(clinic: ExampleNode, now: int) -> None:
    # The old document still lists a key the clinic has since retired; replaying it must fail.
    old = entity.sign_entity_configuration(claims_for(clinic, now), clinic.signing_key)
    newer = claims_for(clinic, now + 600, signing_keys=[clinic.next_signing_key])
    held = entity.verify_entity_configuration(
        entity.sign_entity_configuration(newer, clinic.next_signing_key),
        entity_id=clinic.entity_id,
        trusted_thumbprints={clinic.signing_key.kid, clinic.next_signing_key.kid},
        now=now + 600,
    )
    with pytest.raises(RollbackError):
        entity.verify_entity_configuration(
            old,
            entity_id=clinic.entity_id,
            trusted_thumbprints={clinic.signing_key.kid, clinic.next_signing_key.kid},
            now=now + 600,
            held_issued_at=held.issued_at,
        )
