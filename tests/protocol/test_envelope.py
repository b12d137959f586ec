from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from exchange_node.protocol import envelope
from exchange_node.protocol.errors import (
    AudienceError,
    ConsentError,
    DecryptionError,
    ExpiredError,
    InvalidClaimError,
    KeyFormatError,
    MalformedError,
    SchemaError,
    UnrequestedFieldError,
    UntrustedKeyError,
    WrongTypeError,
)
from exchange_node.protocol.messages import (
    ConsentWithdrawal,
    DeletionReceipt,
    Referral,
    ReferralStatusChange,
    check_requested_fields,
)
from tests.conftest import ExampleNode
from tests.protocol import factories


def seal(
    kind: str,
    body: dict[str, Any],
    sender: ExampleNode,
    receiver: ExampleNode,
    now: int,
    **kwargs: Any,
) -> envelope.SealedMessage:
    return envelope.seal_message(
        kind,
        body,
        issuer=sender.entity_id,
        audience=receiver.entity_id,
        signing_key=sender.signing_key,
        recipient_key=receiver.encryption_key.public(),
        now=now,
        **kwargs,
    )


def open_(
    token: str, sender: ExampleNode, receiver: ExampleNode, now: int, **kwargs: Any
) -> envelope.Message:
    return envelope.open_message(
        token,
        audience=receiver.entity_id,
        decryption_keys=[receiver.encryption_key],
        sender=sender.entity_id,
        sender_keys=sender.public_signing_keys,
        now=now,
        **kwargs,
    )


def test_referral_round_trip_is_typed(
    community: ExampleNode, clinic: ExampleNode, now: int
) -> None:
    sealed = seal("referral", factories.referral(clinic.entity_id), community, clinic, now)
    message = open_(sealed.token, community, clinic, now + 1)
    assert message.jti == sealed.jti
    assert message.message_type == "referral"
    assert message.expires_at == sealed.expires_at == now + 600
    referral = message.body
    assert isinstance(referral, Referral)
    assert referral.person["pronouns"] == "they/them"
    assert referral.consent.data_categories == ("identity", "contact", "gender_identity")
    assert referral.safe_contact.voicemail_allowed is False
    assert referral.safe_contact.do_not_disclose == ("gender identity",)
    check_requested_fields(referral, ["preferred_name", "phone", "pronouns", "email"])
    with pytest.raises(UnrequestedFieldError) as caught:
        check_requested_fields(referral, ["preferred_name", "phone"])
    assert caught.value.fields == {"/body/person/pronouns": ["not requested by the service"]}
    assert caught.value.code == "field_not_requested"


def test_sealed_envelope_hides_everything(
    community: ExampleNode, clinic: ExampleNode, now: int
) -> None:
    sealed = seal("referral", factories.referral(clinic.entity_id), community, clinic, now)
    import base64

    visible = b"".join(
        base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)) for part in sealed.token.split(".")
    )
    for secret in (b"Sam", b"900123", b"they/them", b"community.example", b"ref-1"):
        assert secret not in visible


@pytest.mark.parametrize(
    ("kind", "body", "expected"),
    [
        ("referral-status", factories.status_change(), ReferralStatusChange),
        (
            "referral-status",
            factories.status_change(
                status="rejected", reason={"code": "other", "text": "Out of area"}
            ),
            ReferralStatusChange,
        ),
        (
            "consent-withdrawal",
            {
                "referral_id": "ref-1",
                "consent_id": "consent-1",
                "withdrawn_at": "2027-01-01T00:00:00Z",
            },
            ConsentWithdrawal,
        ),
        (
            "deletion-receipt",
            {
                "referral_id": "ref-1",
                "consent_id": "consent-1",
                "withdrawal_jti": "A" * 22,
                "deleted_at": "2027-01-01T00:00:00Z",
            },
            DeletionReceipt,
        ),
    ],
)
def test_other_message_types(
    kind: str,
    body: dict[str, Any],
    expected: type,
    community: ExampleNode,
    clinic: ExampleNode,
    now: int,
) -> None:
    message = open_(seal(kind, body, clinic, community, now).token, clinic, community, now)
    assert isinstance(message.body, expected)
    assert message.message_type == kind


@pytest.mark.parametrize(
    ("status_body", "field"),
    [
        (factories.status_change(status="rejected"), "reason"),
        (factories.status_change(status="failed", reason={"code": "other"}), "reason"),
        (factories.status_change(status="requested"), "status"),
        (factories.status_change(sequence=0), "sequence"),
    ],
)
def test_status_rules(
    status_body: dict[str, Any], field: str, community: ExampleNode, clinic: ExampleNode, now: int
) -> None:
    with pytest.raises(SchemaError) as caught:
        seal("referral-status", status_body, clinic, community, now)
    assert field in str(caught.value.fields)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"consent": factories.consent("https://school.example")}, "another recipient"),
        (
            {"consent": factories.consent("https://clinic.example", service_id="other")},
            "another service",
        ),
        (
            {
                "consent": factories.consent(
                    "https://clinic.example", data_categories=["identity", "contact"]
                )
            },
            "pronouns",
        ),
        (
            {
                "consent": factories.consent(
                    "https://clinic.example", expires_at="2026-12-01T00:00:00Z"
                )
            },
            "expired",
        ),
        (
            {
                "consent": factories.consent(
                    "https://clinic.example", captured_at="2027-02-01T00:00:00Z"
                )
            },
            "future",
        ),
    ],
)
def test_consent_rules_block_sealing(
    change: dict[str, Any], message: str, community: ExampleNode, clinic: ExampleNode, now: int
) -> None:
    with pytest.raises(ConsentError, match=message):
        seal("referral", factories.referral(clinic.entity_id) | change, community, clinic, now)


def test_sensitive_categories_are_named_one_by_one(
    community: ExampleNode, clinic: ExampleNode, now: int
) -> None:
    body = factories.referral(clinic.entity_id, person={"health_summary": "asthma"})
    body["consent"]["data_categories"] = ["identity", "gender_identity", "sexual_orientation"]
    with pytest.raises(ConsentError, match="health_summary"):
        seal("referral", body, community, clinic, now)


def test_impossible_date_is_a_schema_error(
    community: ExampleNode, clinic: ExampleNode, now: int
) -> None:
    body = factories.referral(clinic.entity_id)
    body["consent"]["expires_at"] = "2027-02-30T00:00:00Z"
    with pytest.raises(SchemaError, match="not a real date"):
        seal("referral", body, community, clinic, now)


@pytest.mark.parametrize(
    ("kind", "body", "pointer"),
    [
        (
            "referral-status",
            factories.status_change(changed_at="2027-13-01T00:00:00Z"),
            "/body/changed_at",
        ),
        (
            "consent-withdrawal",
            {"referral_id": "r", "consent_id": "c", "withdrawn_at": "2027-02-29T00:00:00Z"},
            "/body/withdrawn_at",
        ),
    ],
)
def test_impossible_dates_in_any_body(
    kind: str,
    body: dict[str, Any],
    pointer: str,
    community: ExampleNode,
    clinic: ExampleNode,
    now: int,
) -> None:
    with pytest.raises(SchemaError) as caught:
        seal(kind, body, clinic, community, now)
    assert caught.value.fields == {pointer: ["no such date"]}


def test_unknown_person_field_is_refused(
    community: ExampleNode, clinic: ExampleNode, now: int
) -> None:
    body = factories.referral(clinic.entity_id, person={"religion": "none"})
    with pytest.raises(SchemaError) as caught:
        seal("referral", body, community, clinic, now)
    assert caught.value.fields == {"/body/person/religion": ["Unknown field."]}


def test_open_refusals(
    community: ExampleNode, clinic: ExampleNode, school: ExampleNode, now: int
) -> None:
    token = seal("referral", factories.referral(clinic.entity_id), community, clinic, now).token
    with pytest.raises(DecryptionError):
        open_(token, community, school, now)
    with pytest.raises(UntrustedKeyError):
        open_(token, school, clinic, now)
    with pytest.raises(ExpiredError):
        open_(token, community, clinic, now + 601 + 60)
    with pytest.raises(WrongTypeError):
        open_(token, community, clinic, now, expected_types={"referral-status"})


def test_wrong_audience_with_the_right_key(
    community: ExampleNode, clinic: ExampleNode, school: ExampleNode, now: int
) -> None:
    # A message for the school, encrypted to a key the clinic also holds (shared by mistake).
    body = factories.referral(school.entity_id)
    sealed = envelope.seal_message(
        "referral",
        body,
        issuer=community.entity_id,
        audience=school.entity_id,
        signing_key=community.signing_key,
        recipient_key=clinic.encryption_key.public(),
        now=now,
    )
    with pytest.raises(AudienceError):
        open_(sealed.token, community, clinic, now)


def test_seal_argument_errors(community: ExampleNode, clinic: ExampleNode, now: int) -> None:
    body = factories.referral(clinic.entity_id)
    with pytest.raises(WrongTypeError, match="known"):
        seal("gossip", body, community, clinic, now)
    with pytest.raises(InvalidClaimError, match="maximum"):
        seal("referral", body, community, clinic, now, lifetime=7200)
    with pytest.raises(InvalidClaimError, match="jti"):
        seal("referral", body, community, clinic, now, jti="short")
    with pytest.raises(KeyFormatError):
        envelope.seal_message(
            "referral",
            body,
            issuer=community.entity_id,
            audience=clinic.entity_id,
            signing_key=community.signing_key,
            recipient_key=clinic.signing_key.public(),
            now=now,
        )


def test_an_ephemeral_key_on_an_unknown_curve_is_malformed(
    community: ExampleNode, clinic: ExampleNode, now: int
) -> None:
    """Found by hypothesis: joserfc raised KeyError for an epk with crv "P25519"."""
    token = seal("referral", factories.referral(clinic.entity_id), community, clinic, now).token
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    header["epk"]["crv"] = "P25519"
    encoded = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    with pytest.raises(MalformedError):
        open_(encoded + token[token.index(".") :], community, clinic, now)
