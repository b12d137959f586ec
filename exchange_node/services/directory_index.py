"""The local directory: peers' services from their verified capacity documents, indexed for search.

:func:`replace_peer_services` swaps a peer's rows for those of a newly verified
document in the caller's transaction: one ``directory_services`` row per
service, exact-match tags (languages, taxonomy terms), points, and a full-text
row in ``directory_fts``. The full-text table is not a model; its shape depends on
the database:

- SQLite: FTS5 virtual table ``directory_fts(name, body, areas)``, ``rowid`` =
  ``directory_services.id``; rows are deleted here (no cascade into FTS5).
- PostgreSQL: ``directory_fts(entry_id, document tsvector, areas tsvector)`` with GIN
  indexes, built with the ``simple`` configuration (no stemming: Arabic and English
  side by side). ``document`` holds the name (weighted most), the body and the areas,
  so text is one index lookup; ``areas`` alone serves the area filter. Rows go with
  their service by ``ON DELETE CASCADE``.

Only data from a verified document reaches this module; it never fetches or verifies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, insert, text
from sqlalchemy.orm import Session

from exchange_node.db.models import (
    CapacityStatus,
    DirectoryLocation,
    DirectoryRecord,
    DirectoryService,
    DirectoryTag,
    Peer,
)
from exchange_node.hsds import ServiceFacets, service_facets
from exchange_node.protocol.capacity import ServiceCapacity
from exchange_node.protocol.messages import parse_timestamp
from exchange_node.services.search_text import searchable

#: Seconds in a day: freshness is ranked by day, so same-day entries fall back to the name.
DAY = 86_400
#: The tables search reads, analyzed after the directory changed (directory_fts on
#: PostgreSQL too: its GIN indexes are chosen only when the planner knows the table).
DIRECTORY_TABLES = (
    "directory_services",
    "directory_tags",
    "directory_locations",
    "directory_records",
)
LANGUAGE = "language"
TAXONOMY = "taxonomy"

_SQLITE_FTS_INSERT = text(
    "INSERT INTO directory_fts (rowid, name, body, areas) VALUES (:id, :name, :body, :areas)"
)
_POSTGRES_FTS_INSERT = text(
    "INSERT INTO directory_fts (entry_id, document, areas) VALUES (:id, "
    "setweight(to_tsvector('simple', :name), 'A') || to_tsvector('simple', :body) || "
    "setweight(to_tsvector('simple', :areas), 'D'), "
    "to_tsvector('simple', :areas))"
)


def is_sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def replace_peer_services(session: Session, peer: Peer, services: Sequence[ServiceCapacity]) -> int:
    """Replace what the directory holds of ``peer`` with ``services``; returns how many."""
    clear_peer_services(session, peer.id)
    if not services:
        return 0
    rows = [_row(peer, entry) for entry in services]
    ids = (
        session.execute(
            insert(DirectoryService).returning(DirectoryService.id, sort_by_parameter_order=True),
            [row for row, _facets in rows],
        )
        .scalars()
        .all()
    )
    tags: list[dict[str, Any]] = []
    points: list[dict[str, Any]] = []
    fts: list[dict[str, Any]] = []
    records = [
        {"entry_id": entry_id, "description": facets.description, "record": dict(entry.service)}
        for entry_id, (_row_values, facets), entry in zip(ids, rows, services, strict=True)
    ]
    session.execute(insert(DirectoryRecord), records)
    for entry_id, (row, facets) in zip(ids, rows, strict=True):
        tags += [{"entry_id": entry_id, "kind": LANGUAGE, "value": v} for v in facets.languages]
        tags += [{"entry_id": entry_id, "kind": TAXONOMY, "value": v} for v in facets.taxonomy]
        points += [
            {"entry_id": entry_id, "latitude": lat, "longitude": lon} for lat, lon in facets.points
        ]
        fts.append(
            {
                "id": entry_id,
                "name": searchable(row["name"]),
                "body": searchable(facets.search_text),
                "areas": searchable(facets.area_text),
            }
        )
    if tags:
        session.execute(insert(DirectoryTag), tags)
    if points:
        session.execute(insert(DirectoryLocation), points)
    session.execute(_SQLITE_FTS_INSERT if is_sqlite(session) else _POSTGRES_FTS_INSERT, fts)
    return len(rows)


def refresh_statistics(session: Session) -> None:
    """Let the query planner see the directory as it now is (after documents changed).

    Without statistics SQLite walks a peer's rows and sorts every match; with them it
    reads the ranking index in order and stops at a page. About 15 ms for 20,000 services.
    """
    tables = [*DIRECTORY_TABLES, "peers", "peer_directories"]
    if not is_sqlite(session):  # FTS5 keeps its own statistics
        tables.append("directory_fts")
    for table in tables:
        session.execute(text(f"ANALYZE {table}"))


def clear_peer_services(session: Session, peer_id: int) -> None:
    """Forget every service of a peer (its tags, points and full-text rows go with them)."""
    if is_sqlite(session):
        session.execute(
            text(
                "DELETE FROM directory_fts WHERE rowid IN "
                "(SELECT id FROM directory_services WHERE peer_id = :peer_id)"
            ),
            {"peer_id": peer_id},
        )
    session.execute(delete(DirectoryService).where(DirectoryService.peer_id == peer_id))


def _row(peer: Peer, entry: ServiceCapacity) -> tuple[dict[str, Any], ServiceFacets]:
    facets = service_facets(entry.service)
    verified_at, updated_at = _time(entry.verified_at), _time(entry.updated_at) or 0
    row = {
        "peer_id": peer.id,
        "service_id": entry.service_id,
        "name": entry.name,
        "organization_name": facets.organization_name or peer.organization_name,
        "hsds_status": str(entry.service.get("status", "")),
        "capacity_status": entry.status,
        "accepting_referrals": entry.accepting_referrals,
        "wait_days": entry.wait_days,
        "notes": entry.notes,
        "intake_fields": list(entry.intake_fields),
        "verified_at": verified_at,
        "updated_at": updated_at,
        "minimum_age": facets.minimum_age,
        "maximum_age": facets.maximum_age,
        "affirming": facets.affirming,
        "availability": availability(entry.accepting_referrals, entry.status),
        "freshness": -((verified_at if verified_at is not None else updated_at) // DAY),
    }
    return row, facets


def availability(accepting: bool, status: str) -> int:
    """0: accepting with capacity; 1: accepting, with a waitlist or an assessment; 2: the rest."""
    if not accepting:
        return 2
    return {CapacityStatus.CAPACITY: 0, CapacityStatus.NO_CAPACITY: 2}.get(
        CapacityStatus(status), 1
    )


def _time(value: str | None) -> int | None:
    return None if value is None else parse_timestamp(value, "/services")


__all__ = [
    "DAY",
    "LANGUAGE",
    "TAXONOMY",
    "availability",
    "clear_peer_services",
    "refresh_statistics",
    "replace_peer_services",
]
