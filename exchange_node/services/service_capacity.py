"""The capacity of this node's services: status, referrals, wait, notes, intake fields, numbers.

A new service has ``no-capacity`` and takes no referrals until its capacity is set.
``verified_at`` says when a person last confirmed the capacity, apart from
``capacity_updated_at`` (when it last changed): :func:`set_capacity` sets it only when
the change says ``verified`` (the command line does unless told ``--not-verified``; the
REST API only when its body says ``"verified": true``), and :func:`verify_capacity`
confirms an unchanged capacity. The HSDS ``service_capacity`` numbers live in the
record's ``capacities``, matched by unit name. Every change raises the capacity
document's version in the caller's transaction. Records and services are in
:mod:`exchange_node.services.catalog`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from sqlalchemy.orm import Session

from exchange_node.db.models import CapacityStatus, Service
from exchange_node.errors import InvalidRequestError
from exchange_node.protocol.intake import INTAKE_FIELDS
from exchange_node.protocol.messages import format_timestamp
from exchange_node.services.catalog import get_service, record_change, store_record
from exchange_node.services.service_records import check_record

__all__ = [
    "CAPACITY_STATUSES",
    "KEEP",
    "MAX_NOTES_LENGTH",
    "MAX_UNIT_LENGTH",
    "MAX_WAIT_DAYS",
    "CapacityChange",
    "CapacityNumbers",
    "Keep",
    "set_capacity",
    "verify_capacity",
]

CAPACITY_STATUSES = tuple(status.value for status in CapacityStatus)
MAX_NOTES_LENGTH = 1000
MAX_WAIT_DAYS = 3650
MAX_UNIT_LENGTH = 100


class Keep(Enum):
    """Leave this member as it is (where ``None`` means: remove it)."""

    KEEP = "keep"


KEEP = Keep.KEEP


@dataclass(frozen=True)
class CapacityNumbers:
    """One HSDS ``service_capacity``: how many of ``unit`` are available (of ``maximum``)."""

    unit: str
    available: float
    maximum: float | None = None
    description: str | None = None


@dataclass(frozen=True)
class CapacityChange:
    """What to change in a service's capacity; ``None`` / ``KEEP`` leave a member as it is."""

    status: str | None = None
    accepting_referrals: bool | None = None
    wait_days: int | Keep | None = KEEP
    notes: str | Keep | None = KEEP
    intake_fields: tuple[str, ...] | None = None
    numbers: tuple[CapacityNumbers, ...] = ()
    #: A person confirms the capacity now: ``verified_at`` becomes now.
    verified: bool = False


def set_capacity(
    session: Session, service_id: str, change: CapacityChange, now: int, *, actor: str = "cli"
) -> Service:
    """Change a service's capacity; ``capacity_updated_at`` moves only if something changed.

    Raises:
        NotFoundError: no such service.
        InvalidRequestError: a status, wait, note, intake field or number that cannot be.
    """
    service = get_service(session, service_id)
    values = _capacity_values(change)
    changed = any(getattr(service, name) != value for name, value in values.items())
    for name, value in values.items():
        setattr(service, name, value)
    if change.numbers:
        record = check_record(_with_numbers(service.record, change.numbers, now))
        if record != service.record:
            changed = True
            store_record(service, record, None, now)
    if changed:
        service.capacity_updated_at = now
    if change.verified:
        service.verified_at = now
    if changed or change.verified:
        record_change(
            session,
            actor=actor,
            action="capacity.changed" if changed else "capacity.verified",
            subject=service.id,
            details={
                "status": service.capacity_status,
                "accepting_referrals": service.accepting_referrals,
            },
            now=now,
        )
    return service


def verify_capacity(session: Session, service_id: str, now: int, *, actor: str = "cli") -> Service:
    """A person confirms that the capacity is still right: only ``verified_at`` changes."""
    return set_capacity(session, service_id, CapacityChange(verified=True), now, actor=actor)


def _capacity_values(change: CapacityChange) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if change.status is not None:
        if change.status not in CAPACITY_STATUSES:
            raise InvalidRequestError(
                f"capacity status is one of {', '.join(CAPACITY_STATUSES)}", {"/status": "unknown"}
            )
        values["capacity_status"] = change.status
    if change.accepting_referrals is not None:
        values["accepting_referrals"] = change.accepting_referrals
    if not isinstance(change.wait_days, Keep):
        if change.wait_days is not None and not 0 <= change.wait_days <= MAX_WAIT_DAYS:
            raise InvalidRequestError(
                f"the wait is 0 to {MAX_WAIT_DAYS} days", {"/wait_days": "out of range"}
            )
        values["wait_days"] = change.wait_days
    if not isinstance(change.notes, Keep):
        notes = (change.notes or "").strip()
        if len(notes) > MAX_NOTES_LENGTH:
            raise InvalidRequestError(
                f"notes have at most {MAX_NOTES_LENGTH} characters", {"/notes": "too long"}
            )
        values["notes"] = notes or None
    if change.intake_fields is not None:
        values["intake_fields"] = _intake_fields(change.intake_fields)
    return values


def _intake_fields(names: Iterable[str]) -> list[str]:
    chosen = list(dict.fromkeys(name.strip() for name in names))
    for i, name in enumerate(chosen):
        if name not in INTAKE_FIELDS:
            raise InvalidRequestError(
                f"unknown intake field {name[:40]!r}: choose from {', '.join(INTAKE_FIELDS)}",
                {f"/intake_fields/{i}": "unknown intake field"},
            )
    return chosen


def _with_numbers(
    record: Mapping[str, Any], numbers: Iterable[CapacityNumbers], now: int
) -> dict[str, Any]:
    """The record with these HSDS capacities set, matched to the ones it has by unit name."""
    capacities = [dict(c) for c in record.get("capacities", []) if isinstance(c, dict)]
    for i, number in enumerate(numbers):
        unit = number.unit.strip()
        if (
            not 1 <= len(unit) <= MAX_UNIT_LENGTH
            or number.available < 0
            or (number.maximum or 0) < 0
        ):
            raise InvalidRequestError(
                f"a capacity needs a unit name (1 to {MAX_UNIT_LENGTH} characters) "
                "and numbers of 0 or more",
                {f"/capacities/{i}": "unit or numbers"},
            )
        entry = next((c for c in capacities if _unit_name(c) == unit.casefold()), None)
        if entry is None:
            entry = {"id": str(uuid.uuid4()), "unit": {"id": str(uuid.uuid4()), "name": unit}}
            capacities.append(entry)
        entry |= {"available": number.available, "updated": format_timestamp(now)}
        entry.pop("maximum", None)
        if number.maximum is not None:
            entry["maximum"] = number.maximum
        if number.description is not None:
            entry["description"] = number.description
    return {**record, "capacities": capacities}


def _unit_name(capacity: Mapping[str, Any]) -> str:
    unit = capacity.get("unit")
    name = unit.get("name") if isinstance(unit, dict) else None
    return name.strip().casefold() if isinstance(name, str) else ""
