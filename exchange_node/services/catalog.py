"""This node's own services: their HSDS 3.1 records, as stored, imported and exported.

Every change (add, edit, replace, remove, import) passes
:func:`~exchange_node.services.service_records.check_record` and raises the capacity
document's version in the same transaction, so the next signature carries it. A record
replaced without ``capacities`` keeps the HSDS capacity numbers it had. Capacity itself
is changed by :mod:`exchange_node.services.service_capacity`; signing and serving the
document live elsewhere. This module does no HTTP.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from exchange_node.db.models import CapacityPublication, CapacityStatus, Service
from exchange_node.errors import ConflictError, InvalidRequestError, NotFoundError
from exchange_node.node import Node
from exchange_node.protocol.messages import format_timestamp
from exchange_node.services import audit
from exchange_node.services.service_records import (
    Publisher,
    ServiceFields,
    apply_fields,
    check_record,
    records_in,
)

__all__ = [
    "ImportResult",
    "add_service",
    "add_service_from_fields",
    "describe_service",
    "edit_service",
    "export_services",
    "find_service",
    "get_service",
    "import_services",
    "list_services",
    "record_change",
    "remove_service",
    "replace_service",
    "store_record",
]


@dataclass(frozen=True)
class ImportResult:
    added: tuple[str, ...]
    updated: tuple[str, ...]


def get_service(session: Session, service_id: str) -> Service:
    """Raises: NotFoundError: no service has this id."""
    service = session.get(Service, _canonical(service_id))
    if service is None:
        raise NotFoundError(f"no service {service_id[:64]}: see 'exchange-node service list'")
    return service


def find_service(session: Session, reference: str) -> Service:
    """A service by its id, or by its name when only one service has that name.

    Raises:
        NotFoundError: no such service.
        InvalidRequestError: several services have this name.
    """
    service = session.get(Service, _canonical(reference))
    if service is not None:
        return service
    named = list(
        session.scalars(select(Service).where(func.lower(Service.name) == reference.lower()))
    )
    if len(named) > 1:
        raise InvalidRequestError(
            f"{len(named)} services have this name: use the id ('exchange-node service list')",
            {"service": "ambiguous"},
        )
    if not named:
        raise NotFoundError(f"no service {reference[:64]!r}: see 'exchange-node service list'")
    return named[0]


def list_services(session: Session) -> list[Service]:
    return list(session.scalars(select(Service).order_by(Service.name, Service.id)))


def add_service(
    node: Node, session: Session, record: Any, *, public: bool = False, actor: str = "cli"
) -> Service:
    """Store a new service from an HSDS record (an id is made when it has none).

    Raises:
        InvalidRequestError: the record is refused (see ``check_record``), or the node
            already has as many services as a capacity document carries.
        ConflictError: a service with this id exists.
    """
    checked = check_record(_with_id(record))
    if session.get(Service, checked["id"]) is not None:
        raise ConflictError(f"service {checked['id']} exists: edit it, or import to update it")
    _check_room(node, session, 1)
    service = _new_row(checked, public, node.now())
    session.add(service)
    record_change(session, actor=actor, action="service.added", subject=service.id, now=node.now())
    session.flush()
    return service


def add_service_from_fields(
    node: Node,
    session: Session,
    changes: ServiceFields,
    *,
    public: bool = False,
    actor: str = "cli",
) -> Service:
    """Build a record from simple fields (status ``active`` and this node's organization
    unless given) and store it.

    Raises:
        InvalidRequestError: no name, or a field or the record is refused.
    """
    if not (changes.name or "").strip():
        raise InvalidRequestError("a service needs a name", {"/name": "required"})
    filled = replace(
        changes, status=changes.status or "active", organization=changes.organization or ""
    )
    base = {"id": str(uuid.uuid4()), "name": "", "status": "active"}
    record = apply_fields(base, filled, _publisher(node))
    return add_service(node, session, record, public=public, actor=actor)


def edit_service(
    node: Node,
    session: Session,
    service_id: str,
    changes: ServiceFields,
    *,
    public: bool | None = None,
    actor: str = "cli",
) -> Service:
    """Change the given fields of a service's record (and whether it is public)."""
    service = get_service(session, service_id)
    record = check_record(apply_fields(service.record, changes, _publisher(node)))
    store_record(service, record, public, node.now())
    record_change(
        session, actor=actor, action="service.changed", subject=service.id, now=node.now()
    )
    return service


def replace_service(
    node: Node,
    session: Session,
    service_id: str,
    record: Any,
    *,
    public: bool | None = None,
    actor: str = "cli",
) -> Service:
    """Replace a service's record, keeping its id and, when the record has none, its capacities.

    Raises:
        NotFoundError: no such service.
        InvalidRequestError: the record names another id, or is refused.
    """
    service = get_service(session, service_id)
    if not isinstance(record, dict):
        check_record(record)  # refuses it, saying why
    if "id" in record and _canonical(record["id"]) != service.id:
        raise InvalidRequestError(
            f"/id: the record's id must be the service's id {service.id}",
            {"/id": "not this service"},
        )
    checked = check_record(_keep_capacities(service, {**record, "id": service.id}))
    store_record(service, checked, public, node.now())
    record_change(
        session, actor=actor, action="service.changed", subject=service.id, now=node.now()
    )
    return service


def remove_service(session: Session, service_id: str, now: int, *, actor: str = "cli") -> None:
    """Remove a service; it leaves the next capacity document.

    Raises:
        NotFoundError: no such service.
    """
    service = get_service(session, service_id)
    session.delete(service)
    record_change(session, actor=actor, action="service.removed", subject=service.id, now=now)


def import_services(
    node: Node, session: Session, document: Any, *, public: bool = False, actor: str = "cli"
) -> ImportResult:
    """Add or update every service of an import, or none: all records are checked first.

    A record without an id gets one; a record whose id exists updates that service.

    Raises:
        InvalidRequestError: with a pointer per refused record (``/3/id``), a repeated id,
            too many records, or more services than a capacity document carries.
    """
    records = _checked_records(records_in(document, node.settings.limits.max_services))
    ids = [record["id"] for record in records]
    existing = {s.id: s for s in session.scalars(select(Service).where(Service.id.in_(ids)))}
    _check_room(node, session, len(ids) - len(existing))
    now = node.now()
    for record in records:
        if record["id"] in existing:
            service = existing[record["id"]]
            store_record(service, _keep_capacities(service, record), None, now)
        else:
            session.add(_new_row(record, public, now))
    added = tuple(i for i in ids if i not in existing)
    result = ImportResult(added=added, updated=tuple(i for i in ids if i in existing))
    record_change(
        session,
        actor=actor,
        action="service.imported",
        subject="services",
        details={"added": len(result.added), "updated": len(result.updated)},
        now=now,
    )
    session.flush()
    return result


def export_services(session: Session) -> list[dict[str, Any]]:
    """Every service as its HSDS 3.1 record, with its current ``capacities``."""
    return [dict(service.record) for service in list_services(session)]


def describe_service(service: Service) -> dict[str, Any]:
    """A service as the REST API and ``--json`` show it: record, capacity, public, times."""
    return {
        "service": service.record,
        "capacity": {
            "status": service.capacity_status,
            "accepting_referrals": service.accepting_referrals,
            "wait_days": service.wait_days,
            "notes": service.notes,
            "intake_fields": list(service.intake_fields),
            "verified_at": _timestamp(service.verified_at),
            "updated_at": format_timestamp(service.capacity_updated_at),
        },
        "public": service.public,
        "created_at": format_timestamp(service.created_at),
        "updated_at": format_timestamp(service.updated_at),
    }


def record_change(
    session: Session,
    *,
    actor: str,
    action: str,
    subject: str,
    now: int,
    details: Mapping[str, Any] | None = None,
) -> None:
    """The capacity document changes: raise its version and audit why (in the caller's
    transaction, so the change, the version and the entry commit together)."""
    session.execute(
        update(CapacityPublication)
        .where(CapacityPublication.id == 1)
        .values(version=CapacityPublication.version + 1)
    )
    audit.record(session, actor=actor, action=action, subject=subject, details=details, now=now)


def _checked_records(found: Iterable[tuple[str, Any]]) -> list[dict[str, Any]]:
    """Every record checked, with every problem of every record reported at once."""
    records: list[dict[str, Any]] = []
    problems: dict[str, list[str]] = {}
    first: str | None = None
    seen: dict[str, str] = {}
    for where, item in found:
        try:
            record = check_record(_with_id(item), where)
        except InvalidRequestError as e:
            problems |= e.fields
            first = first or e.detail
            continue
        if record["id"] in seen:
            problems[f"{where}/id"] = [f"the same id as {seen[record['id']] or '/'}"]
            first = first or f"{where}/id: the same id as {seen[record['id']]}"
            continue
        seen[record["id"]] = where
        records.append(record)
    if problems:
        raise InvalidRequestError(f"nothing was imported: {first}", problems)
    return records


def _keep_capacities(service: Service, record: dict[str, Any]) -> dict[str, Any]:
    if "capacities" in record or "capacities" not in service.record:
        return record
    return {**record, "capacities": service.record["capacities"]}


def _new_row(record: dict[str, Any], public: bool, now: int) -> Service:
    return Service(
        id=record["id"],
        name=record["name"],
        record=record,
        public=public,
        capacity_status=CapacityStatus.NO_CAPACITY.value,
        accepting_referrals=False,
        wait_days=None,
        notes=None,
        intake_fields=[],
        verified_at=None,
        capacity_updated_at=now,
        created_at=now,
        updated_at=now,
    )


def store_record(service: Service, record: dict[str, Any], public: bool | None, now: int) -> None:
    """Put a checked record in place (the caller raises the version)."""
    service.record = record
    service.name = record["name"]
    if public is not None:
        service.public = public
    service.updated_at = now


def _check_room(node: Node, session: Session, adding: int) -> None:
    held = session.scalar(select(func.count()).select_from(Service)) or 0
    most = node.settings.limits.max_services
    if held + adding > most:
        raise InvalidRequestError(
            f"this node has {held} services and a capacity document carries at most {most}",
            {"": f"more than {most} services"},
        )


def _with_id(record: Any) -> Any:
    if isinstance(record, dict) and "id" not in record:
        return {"id": str(uuid.uuid4()), **record}
    return record


def _canonical(identifier: Any) -> str:
    """A UUID in its canonical lower-case form; anything else as it is."""
    try:
        return str(uuid.UUID(str(identifier)))
    except ValueError:
        return str(identifier)


def _publisher(node: Node) -> Publisher:
    return Publisher(node.settings.name, node.settings.url)


def _timestamp(value: int | None) -> str | None:
    return None if value is None else format_timestamp(value)
