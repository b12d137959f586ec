"""The four node-to-node message types: their typed bodies and the rules between fields.

``referral``, ``referral-status``, ``consent-withdrawal`` and ``deletion-receipt``
travel sealed (see :mod:`envelope`). This module maps each type to its JOSE
``typ``, its claims schema and its typed body, and holds the referral's
consent rules, which a sender checks before sealing and a receiver after opening.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final

from marshmallow import Schema

from exchange_node.protocol import intake, wire
from exchange_node.protocol.errors import ConsentError, SchemaError


@dataclass(frozen=True)
class ConsentRecord:
    """What the person agreed to share, with whom, why, until when, and how it was recorded."""

    consent_id: str
    given_by: str
    recipient: str
    service_id: str
    data_categories: tuple[str, ...]
    purpose: str
    method: str
    captured_by: str
    captured_at: str
    expires_at: str


@dataclass(frozen=True)
class ContactWindow:
    days: tuple[str, ...]
    start: str
    end: str


@dataclass(frozen=True)
class SafeContact:
    """How, when and how discreetly the person may be contacted."""

    channels: tuple[str, ...]
    voicemail_allowed: bool
    may_name_organization: bool
    windows: tuple[ContactWindow, ...] = ()
    time_zone: str | None = None
    do_not_disclose: tuple[str, ...] = ()
    notes: str | None = None


@dataclass(frozen=True)
class Referral:
    referral_id: str
    service_id: str
    person: Mapping[str, str]
    consent: ConsentRecord
    safe_contact: SafeContact
    capacity_version: int | None = None
    override_reason: str | None = None


@dataclass(frozen=True)
class ReferralStatusChange:
    referral_id: str
    status: str
    sequence: int
    changed_at: str
    reason_code: str | None = None
    reason_text: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class ConsentWithdrawal:
    referral_id: str
    consent_id: str
    withdrawn_at: str


@dataclass(frozen=True)
class DeletionReceipt:
    referral_id: str
    consent_id: str
    withdrawal_jti: str
    deleted_at: str


MessageBody = Referral | ReferralStatusChange | ConsentWithdrawal | DeletionReceipt


@dataclass(frozen=True)
class MessageType:
    """How one message type looks on the wire and becomes a typed body."""

    name: str
    typ: str
    claims_schema: type[Schema]
    to_body: Callable[[Mapping[str, Any]], MessageBody]


def _referral(body: Mapping[str, Any]) -> Referral:
    safe = body["safe_contact"]
    return Referral(
        referral_id=body["referral_id"],
        service_id=body["service_id"],
        person=MappingProxyType(dict(body["person"])),
        consent=ConsentRecord(
            **{**body["consent"], "data_categories": tuple(body["consent"]["data_categories"])}
        ),
        safe_contact=SafeContact(
            channels=tuple(safe["channels"]),
            voicemail_allowed=safe["voicemail_allowed"],
            may_name_organization=safe["may_name_organization"],
            windows=tuple(
                ContactWindow(tuple(w["days"]), w["start"], w["end"])
                for w in safe.get("windows", ())
            ),
            time_zone=safe.get("time_zone"),
            do_not_disclose=tuple(safe.get("do_not_disclose", ())),
            notes=safe.get("notes"),
        ),
        capacity_version=body.get("capacity_version"),
        override_reason=body.get("override", {}).get("reason"),
    )


def _status_change(body: Mapping[str, Any]) -> ReferralStatusChange:
    reason = body.get("reason", {})
    return ReferralStatusChange(
        referral_id=body["referral_id"],
        status=body["status"],
        sequence=body["sequence"],
        changed_at=body["changed_at"],
        reason_code=reason.get("code"),
        reason_text=reason.get("text"),
        note=body.get("note"),
    )


MESSAGE_TYPES: Final[Mapping[str, MessageType]] = {
    t.name: t
    for t in (
        MessageType("referral", "exchange-referral+jwt", wire.ReferralClaimsSchema, _referral),
        MessageType(
            "referral-status",
            "exchange-referral-status+jwt",
            wire.ReferralStatusClaimsSchema,
            _status_change,
        ),
        MessageType(
            "consent-withdrawal",
            "exchange-consent-withdrawal+jwt",
            wire.ConsentWithdrawalClaimsSchema,
            lambda body: ConsentWithdrawal(**body),
        ),
        MessageType(
            "deletion-receipt",
            "exchange-deletion-receipt+jwt",
            wire.DeletionReceiptClaimsSchema,
            lambda body: DeletionReceipt(**body),
        ),
    )
}
MESSAGE_TYPE_BY_TYP: Final = {t.typ: t for t in MESSAGE_TYPES.values()}


def check_referral_consent(referral: Referral, *, audience: str, now: int, skew: int) -> None:
    """A referral's consent must name its receiver, its service and every data category sent.

    Raises:
        ConsentError: naming the fields or the rule the referral breaks.
    """
    consent = referral.consent
    if consent.recipient != audience:
        raise ConsentError(
            "consent was given for another recipient", {"consent": {"recipient": [audience]}}
        )
    if consent.service_id != referral.service_id:
        raise ConsentError("consent was given for another service", {"consent": {"service_id": []}})
    uncovered = intake.uncovered_fields(referral.person, consent.data_categories)
    if uncovered:
        raise ConsentError(
            f"consent does not cover the data categories of: {', '.join(uncovered)}",
            {"person": {name: ["not covered by consent"] for name in uncovered}},
        )
    if parse_timestamp(consent.expires_at, "consent.expires_at") <= now - skew:
        raise ConsentError("consent has expired", {"consent": {"expires_at": ["in the past"]}})
    if parse_timestamp(consent.captured_at, "consent.captured_at") > now + skew:
        raise ConsentError("consent is dated in the future", {"consent": {"captured_at": []}})


def unrequested_fields(referral: Referral, intake_fields: Collection[str]) -> list[str]:
    """Person fields the target service did not ask for in its capacity document, sorted."""
    return sorted(set(referral.person) - set(intake_fields))


def parse_timestamp(value: str, where: str) -> int:
    """An RFC 3339 UTC timestamp (already pattern-checked) as Unix seconds."""
    try:
        return int(datetime.fromisoformat(value).astimezone(UTC).timestamp())
    except ValueError as e:
        raise SchemaError(f"{where} is not a real date and time", {where: [value]}) from e


def format_timestamp(unix_seconds: int) -> str:
    """Unix seconds as the RFC 3339 UTC form used in message bodies."""
    return datetime.fromtimestamp(unix_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


__all__ = [
    "MESSAGE_TYPES",
    "MESSAGE_TYPE_BY_TYP",
    "ConsentRecord",
    "ConsentWithdrawal",
    "ContactWindow",
    "DeletionReceipt",
    "MessageBody",
    "MessageType",
    "Referral",
    "ReferralStatusChange",
    "SafeContact",
    "check_referral_consent",
    "format_timestamp",
    "parse_timestamp",
    "unrequested_fields",
]
