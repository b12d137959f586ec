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
from exchange_node.protocol.errors import ConsentError, SchemaError, UnrequestedFieldError


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

    @property
    def schema_file(self) -> str:
        """The normative JSON Schema of this message's claims, in ``schemas/``."""
        return f"{self.name}.schema.json"


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
    parse_timestamp(body["changed_at"], "/body/changed_at")
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


def _withdrawal(body: Mapping[str, Any]) -> ConsentWithdrawal:
    parse_timestamp(body["withdrawn_at"], "/body/withdrawn_at")
    return ConsentWithdrawal(body["referral_id"], body["consent_id"], body["withdrawn_at"])


def _deletion_receipt(body: Mapping[str, Any]) -> DeletionReceipt:
    parse_timestamp(body["deleted_at"], "/body/deleted_at")
    return DeletionReceipt(
        body["referral_id"], body["consent_id"], body["withdrawal_jti"], body["deleted_at"]
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
            _withdrawal,
        ),
        MessageType(
            "deletion-receipt",
            "exchange-deletion-receipt+jwt",
            wire.DeletionReceiptClaimsSchema,
            _deletion_receipt,
        ),
    )
}
MESSAGE_TYPE_BY_TYP: Final = {t.typ: t for t in MESSAGE_TYPES.values()}


def check_referral_consent(referral: Referral, *, audience: str, now: int, skew: int) -> None:
    """A referral's consent must name its receiver, its service and every data category sent.

    Raises:
        ConsentError: ``fields`` maps the JSON Pointer of each offending member to the rule.
    """
    consent = referral.consent
    if consent.recipient != audience:
        raise ConsentError(
            "consent was given for another recipient",
            {"/body/consent/recipient": ["not the receiving node"]},
        )
    if consent.service_id != referral.service_id:
        raise ConsentError(
            "consent was given for another service",
            {"/body/consent/service_id": ["not the referred service"]},
        )
    uncovered = intake.uncovered_fields(referral.person, consent.data_categories)
    if uncovered:
        raise ConsentError(
            f"consent does not cover the data categories of: {', '.join(uncovered)}",
            {
                f"/body/person/{name}": [f"category {intake.category_of(name)} not consented"]
                for name in uncovered
            },
        )
    if parse_timestamp(consent.expires_at, "/body/consent/expires_at") <= now - skew:
        raise ConsentError("consent has expired", {"/body/consent/expires_at": ["in the past"]})
    if parse_timestamp(consent.captured_at, "/body/consent/captured_at") > now + skew:
        raise ConsentError(
            "consent is dated in the future", {"/body/consent/captured_at": ["in the future"]}
        )


def check_requested_fields(referral: Referral, intake_fields: Collection[str]) -> None:
    """A referral carries only the intake fields its service asked for (minimum data).

    Raises:
        UnrequestedFieldError: naming each field the service did not ask for.
    """
    extra = sorted(set(referral.person) - set(intake_fields))
    if extra:
        raise UnrequestedFieldError(
            f"the service does not ask for: {', '.join(extra)}",
            {f"/body/person/{name}": ["not requested by the service"] for name in extra},
        )


def parse_timestamp(value: str, pointer: str) -> int:
    """An RFC 3339 UTC timestamp (already pattern-checked) as Unix seconds.

    Raises:
        SchemaError: the date or time does not exist (say, 30 February).
    """
    try:
        return int(datetime.fromisoformat(value).astimezone(UTC).timestamp())
    except ValueError as e:
        raise SchemaError(
            f"{pointer} is not a real date and time", {pointer: ["no such date"]}
        ) from e


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
    "check_requested_fields",
    "format_timestamp",
    "parse_timestamp",
]
