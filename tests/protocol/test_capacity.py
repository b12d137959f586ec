from __future__ import annotations

from typing import Any

import pytest

from exchange_node.protocol import capacity
from exchange_node.protocol.errors import (
    BadSignatureError,
    ExpiredError,
    InvalidClaimError,
    OversizedError,
    RollbackError,
    SchemaError,
    UntrustedKeyError,
)
from exchange_node.protocol.limits import Limits
from tests.conftest import ExampleNode


def entry(service_id: str = "svc-1", **capacity_fields: Any) -> dict[str, Any]:
    return {
        "service": {
            "id": service_id,
            "name": "Legal clinic",
            "status": "active",
            "description": "Free advice.",
        },
        "capacity": {
            "status": "waitlist",
            "accepting_referrals": True,
            "wait_days": 14,
            "intake_fields": ["given_name", "phone", "legal_matter_summary"],
            "updated_at": "2026-12-30T09:00:00Z",
        }
        | capacity_fields,
    }


def signed(
    node: ExampleNode, now: int, version: int = 5, services: list[dict[str, Any]] | None = None
) -> str:
    claims = capacity.build_capacity_claims(
        issuer=node.entity_id,
        version=version,
        services=services or [entry()],
        now=now,
        lifetime=3600,
    )
    return capacity.sign_capacity_document(claims, node.signing_key)


def verify(node: ExampleNode, token: str, now: int, **kwargs: Any) -> capacity.CapacityDocument:
    return capacity.verify_capacity_document(
        token, issuer=node.entity_id, issuer_keys=node.public_signing_keys, now=now, **kwargs
    )


def test_round_trip_keeps_the_hsds_record(clinic: ExampleNode, now: int) -> None:
    document = verify(clinic, signed(clinic, now), now)
    service = document.service("svc-1")
    assert service is not None
    assert document.version == 5
    assert service.status == "waitlist"
    assert service.wait_days == 14
    assert service.service["description"] == "Free advice."
    assert service.intake_fields == ("given_name", "phone", "legal_matter_summary")
    assert document.service("missing") is None


def test_version_rollback_is_refused_but_equal_is_not(clinic: ExampleNode, now: int) -> None:
    token = signed(clinic, now, version=5)
    assert verify(clinic, token, now, held_version=5).version == 5
    with pytest.raises(RollbackError, match="older"):
        verify(clinic, token, now, held_version=6)


def test_expired_is_told_apart_from_forged(
    clinic: ExampleNode, school: ExampleNode, now: int
) -> None:
    with pytest.raises(ExpiredError):
        verify(clinic, signed(clinic, now), now + 3600 + 61)
    with pytest.raises(UntrustedKeyError):
        verify(clinic, signed(school, now), now)
    forged = signed(clinic, now).split(".")
    forged[2] = forged[2][::-1]
    with pytest.raises(BadSignatureError):
        verify(clinic, ".".join(forged), now)


def test_duplicate_service_ids_and_bad_entries(clinic: ExampleNode, now: int) -> None:
    with pytest.raises(InvalidClaimError, match="twice"):
        signed(clinic, now, services=[entry(), entry()])
    with pytest.raises(SchemaError) as caught:
        signed(clinic, now, services=[entry(status="open")])
    assert caught.value.fields == {
        "/services/0/capacity/status": [
            "Must be one of: capacity, no-capacity, waitlist, additional-assessment-required."
        ]
    }
    with pytest.raises(SchemaError):
        signed(clinic, now, services=[entry(intake_fields=["shoe_size"])])


def test_too_many_services(clinic: ExampleNode, now: int) -> None:
    token = signed(clinic, now, services=[entry(f"svc-{n}") for n in range(3)])
    with pytest.raises(OversizedError):
        capacity.verify_capacity_document(
            token,
            issuer=clinic.entity_id,
            issuer_keys=clinic.public_signing_keys,
            now=now,
            limits=Limits(max_services=2),
        )


def test_large_directory_fits_the_token_limit(clinic: ExampleNode, now: int) -> None:
    services = [entry(f"svc-{n}", notes="n" * 500) for n in range(200)]
    document = verify(clinic, signed(clinic, now, services=services), now)
    assert len(document.services) == 200


def described(n: int) -> dict[str, Any]:
    """An entry of about 4 KiB, like a fully described HSDS service."""
    service = entry(f"svc-{n}")
    service["service"]["description"] = "d" * 3_900
    return service


def test_a_capacity_document_may_exceed_the_general_token_limit(
    clinic: ExampleNode, now: int
) -> None:
    token = signed(clinic, now, services=[described(n) for n in range(400)])
    assert Limits().max_token_bytes < len(token) <= Limits().max_capacity_bytes
    assert len(verify(clinic, token, now).services) == 400
    tight = Limits(max_capacity_bytes=len(token) - 1)
    with pytest.raises(OversizedError):
        verify(clinic, token, now, limits=tight)


def test_signing_refuses_a_document_peers_would_refuse(clinic: ExampleNode, now: int) -> None:
    claims = capacity.build_capacity_claims(
        issuer=clinic.entity_id, version=1, services=[described(n) for n in range(3)], now=now
    )
    with pytest.raises(OversizedError, match=r"would be [\d,]+ bytes, over the 10,000"):
        capacity.sign_capacity_document(
            claims, clinic.signing_key, Limits(max_capacity_bytes=10_000)
        )
