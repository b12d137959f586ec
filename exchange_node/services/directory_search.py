"""Federated search: trusted peers' services held locally, filtered and ranked in the database.

Nothing leaves the node: the criteria are run against the capacity documents
already synced (SPEC 4.1), and they are never logged. Only services of peers
whose status is ``trusted`` are found (a suspended, pending or removed peer's
services are hidden) and ``defunct`` services never are.

Filters, all combined with AND: text (each word, prefix-matched, in the name,
description or areas, through the full-text index: FTS5 on SQLite, ``tsvector``
on PostgreSQL; words are runs of letters, digits and marks, quoted, so no user
input reaches the query syntax), categories (taxonomy term code or name; any of
them), language (code or name), age (inside the published range; a missing bound
is open), area (words of the service areas and addresses), distance from a point
(a bounding box on the locations in SQL, then the exact haversine distance on the
few candidates), capacity statuses (any of them), accepting referrals, affirming
care, and the peer's organization kind.

:func:`service_languages` gives, for a page of results, the languages their records
name (for the result cards; the search results themselves carry no record).

Ranking, in this order:

1. fresh before stale: a peer's services are stale once its document has
   expired (or none is held); what a stale document says may no longer hold;
2. availability: accepting referrals with capacity, then accepting with a
   waitlist or an assessment first, then the rest (no capacity, not accepting);
3. fresher first, by day (UTC): ``verified_at`` (when a person confirmed it),
   falling back to ``updated_at``;
4. text relevance (when there is text: a word in the name weighs most), then
   name, then the row id, so that pages are stable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    case,
    column,
    func,
    literal,
    literal_column,
    or_,
    select,
    table,
)
from sqlalchemy.orm import Session

from exchange_node.db.models import (
    CapacityStatus,
    DirectoryLocation,
    DirectoryRecord,
    DirectoryService,
    DirectoryTag,
    Peer,
    PeerDirectory,
    PeerStatus,
)
from exchange_node.errors import InvalidRequestError
from exchange_node.protocol.wire import ORGANIZATION_KINDS
from exchange_node.services.directory_geometry import (
    bounding_box,
    haversine_km,
    longitude_ranges,
    parse_point,
)
from exchange_node.services.directory_index import DAY, LANGUAGE, TAXONOMY, is_sqlite
from exchange_node.services.search_text import words

MAX_TEXT = 200
MAX_WORDS = 10
MAX_CATEGORIES = 10
MAX_TAG = 255
MAX_AGE = 200
MAX_RADIUS_KM = 500.0
DEFAULT_RADIUS_KM = 25.0
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_OFFSET = 10_000
#: What a result card shows of the languages a service's record names.
MAX_LANGUAGES = 10
MAX_LANGUAGE_LENGTH = 40
CAPACITY_STATUSES = tuple(status.value for status in CapacityStatus)

#: What a result shows of a directory row (not the signed record, which can be large).
_SHOWN = [
    getattr(DirectoryService, name)
    for name in (
        "service_id", "name", "organization_name", "hsds_status",
        "capacity_status", "accepting_referrals", "wait_days", "notes", "intake_fields",
        "verified_at", "updated_at",
    )
]  # fmt: skip
_SQLITE_FTS = table("directory_fts", column("rowid"))
_POSTGRES_FTS = table("directory_fts", column("entry_id"), column("document"), column("areas"))


@dataclass(frozen=True)
class DirectoryQuery:
    """What a caseworker looks for; every member is optional (None or empty: no filter)."""

    text: str | None = None
    categories: tuple[str, ...] = ()
    language: str | None = None
    age: int | None = None
    area: str | None = None
    near: tuple[float, float] | None = None
    radius_km: float = DEFAULT_RADIUS_KM
    statuses: tuple[str, ...] = ()
    accepting: bool | None = None
    affirming: bool | None = None
    peer_kind: str | None = None
    limit: int = DEFAULT_LIMIT
    offset: int = 0


@dataclass(frozen=True)
class SearchResult:
    """One service found, with its peer, its capacity and how fresh that is."""

    peer_entity_id: str
    peer_organization: str
    peer_kind: str
    service_id: str
    name: str
    organization_name: str
    description: str
    hsds_status: str
    capacity_status: str
    accepting_referrals: bool
    wait_days: int | None
    notes: str | None
    intake_fields: list[str]
    verified_at: int | None
    updated_at: int
    #: The peer's document has expired, or none is held.
    stale: bool
    #: When the peer's document expired, if it has.
    stale_since: int | None
    verified_days_ago: int | None
    distance_km: float | None


@dataclass(frozen=True)
class SearchPage:
    results: tuple[SearchResult, ...]
    total: int
    limit: int
    offset: int
    query: DirectoryQuery = field(repr=False)


def search(session: Session, query: DirectoryQuery, *, now: int) -> SearchPage:
    """Services of trusted peers matching ``query``, best first (see the module docstring).

    Fresh peers' services are ranked apart from stale ones, so that without text the
    ranking index gives a page without sorting every match.

    Raises:
        InvalidRequestError: a criterion is out of range, naming it and why.
    """
    _check(query)
    if query.near is not None:
        matching, relevance = _matching(session, query, _trusted_peers(query))
        page, total = _page_near(session, _ranked(session, matching, relevance, now), query)
        return SearchPage(_load(session, page, now), total, query.limit, query.offset, query)
    fresh, relevance = _matching(session, query, _trusted_peers(query, fresh_at=now))
    rows = _page(session, fresh, relevance, query.limit, query.offset)
    total = _count(session, _matching(session, query, _trusted_peers(query))[0])
    if len(rows) < query.limit:
        fresh_total = query.offset + len(rows) if rows else _count(session, fresh)
        stale, _ = _matching(session, query, _trusted_peers(query, stale_at=now))
        offset = max(0, query.offset - fresh_total)
        rows += _page(session, stale, relevance, query.limit - len(rows), offset)
    page = [(entry_id, None) for entry_id in rows]
    return SearchPage(_load(session, page, now), total, query.limit, query.offset, query)


def service_languages(
    session: Session, results: Sequence[SearchResult]
) -> dict[tuple[str, str], tuple[str, ...]]:
    """(peer entity id, service id) -> the names (else codes) of the languages its record lists."""
    if not results:
        return {}
    wanted = {(result.peer_entity_id, result.service_id) for result in results}
    rows = session.execute(
        select(Peer.entity_id, DirectoryService.service_id, DirectoryRecord.record)
        .join(DirectoryService, DirectoryService.peer_id == Peer.id)
        .join(DirectoryRecord, DirectoryRecord.entry_id == DirectoryService.id)
        .where(Peer.entity_id.in_({entity_id for entity_id, _ in wanted}))
        .where(DirectoryService.service_id.in_({service_id for _, service_id in wanted}))
    )
    return {
        (row.entity_id, row.service_id): _language_names(row.record)
        for row in rows
        if (row.entity_id, row.service_id) in wanted
    }


def _language_names(record: Any) -> tuple[str, ...]:
    """What a peer's record (untrusted display text) says its languages are, briefly."""
    languages = record.get("languages") if isinstance(record, dict) else None
    names: list[str] = []
    for language in languages if isinstance(languages, list) else ():
        if isinstance(language, dict):
            name = language.get("name") or language.get("code")
            if isinstance(name, str) and name.strip():
                names.append(name.strip()[:MAX_LANGUAGE_LENGTH])
    return tuple(dict.fromkeys(names))[:MAX_LANGUAGES]


def _page(
    session: Session,
    matching: Select[Any],
    relevance: ColumnElement[Any] | None,
    limit: int,
    offset: int,
) -> list[int]:
    """One page of ids, by availability, freshness, relevance, name and id."""
    service = DirectoryService
    name = service.name if is_sqlite(session) else service.name.collate("C")
    keys: list[Any] = [service.availability, service.freshness, name, service.id]
    if relevance is not None:
        keys.insert(2, relevance)
    return list(session.scalars(matching.order_by(*keys).limit(limit).offset(offset)))


def _check(query: DirectoryQuery) -> None:
    problems: dict[str, list[str]] = {}
    for name, text in (("q", query.text), ("area", query.area)):
        if text is not None and len(text) > MAX_TEXT:
            problems[f"/{name}"] = [f"at most {MAX_TEXT} characters"]
        elif text is not None and not words(text):
            problems[f"/{name}"] = ["has no letters or digits to search for"]
        elif text is not None and len(words(text)) > MAX_WORDS:
            problems[f"/{name}"] = [f"at most {MAX_WORDS} words"]
    if len(query.categories) > MAX_CATEGORIES:
        problems["/category"] = [f"at most {MAX_CATEGORIES} categories"]
    tags = [("category", value) for value in query.categories]
    tags += [("language", query.language)] if query.language is not None else []
    for member, tag in tags:
        if not tag.strip() or len(tag) > MAX_TAG:
            problems.setdefault(f"/{member}", []).append(f"1 to {MAX_TAG} characters")
    unknown = sorted(set(query.statuses) - set(CAPACITY_STATUSES))
    if unknown:
        problems["/status"] = [
            f"unknown {', '.join(unknown)}: one of {', '.join(CAPACITY_STATUSES)}"
        ]
    if query.peer_kind is not None and query.peer_kind not in ORGANIZATION_KINDS:
        problems["/peer_kind"] = [f"one of {', '.join(ORGANIZATION_KINDS)}"]
    ranges: list[tuple[str, float | None, float, float]] = [
        ("age", query.age, 0, MAX_AGE),
        ("limit", query.limit, 1, MAX_LIMIT),
        ("offset", query.offset, 0, MAX_OFFSET),
        ("radius_km", query.radius_km, 0.1, MAX_RADIUS_KM),
        ("near", query.near and query.near[0], -90, 90),
        ("near", query.near and query.near[1], -180, 180),
    ]
    for name, value, low, high in ranges:
        if value is not None and not low <= value <= high:
            problems.setdefault(f"/{name}", []).append(f"must be from {low} to {high}")
    if problems:
        first = next(iter(problems))
        raise InvalidRequestError(f"{first[1:]}: {problems[first][0]}", problems)


def _trusted_peers(
    query: DirectoryQuery, *, fresh_at: int | None = None, stale_at: int | None = None
) -> Select[Any]:
    """Ids of trusted peers (of the asked kind); only fresh, or only stale, at a time."""
    peers = select(Peer.id).where(Peer.status == PeerStatus.TRUSTED.value)
    if query.peer_kind is not None:
        peers = peers.where(Peer.organization_kind == query.peer_kind)
    if fresh_at is not None:
        peers = peers.join(PeerDirectory, PeerDirectory.peer_id == Peer.id).where(
            PeerDirectory.expires_at > fresh_at
        )
    if stale_at is not None:
        peers = peers.outerjoin(PeerDirectory, PeerDirectory.peer_id == Peer.id).where(
            _stale(stale_at)
        )
    return peers


def _matching(
    session: Session, query: DirectoryQuery, peers: Select[Any]
) -> tuple[Select[Any], ColumnElement[Any] | None]:
    """Ids of the services of ``peers`` matching ``query``, and the relevance key if any."""
    service = DirectoryService
    statement = (
        select(service.id)
        .where(service.peer_id.in_(peers), service.hsds_status != "defunct")
        .where(*_filters(query))
    )
    return _full_text(session, statement, query)


def _ranked(
    session: Session, matching: Select[Any], relevance: ColumnElement[Any] | None, now: int
) -> Select[Any]:
    """The matches with their ranking keys (all ascending: lower is better), best first."""
    service = DirectoryService
    name = service.name if is_sqlite(session) else service.name.collate("C")
    keys: list[ColumnElement[Any]] = [
        case((_stale(now), 1), else_=0).label("stale"),
        service.availability.label("availability"),
        service.freshness.label("freshness"),
        (literal(0) if relevance is None else relevance).label("relevance"),
        name.label("name"),
        service.id.label("tiebreak"),
    ]
    statement = matching.outerjoin(PeerDirectory, PeerDirectory.peer_id == service.peer_id)
    return statement.add_columns(*keys).order_by(*keys)


def _filters(query: DirectoryQuery) -> list[ColumnElement[bool]]:
    service = DirectoryService
    filters: list[ColumnElement[bool]] = []
    if query.categories:
        filters.append(_tagged(TAXONOMY, [value.strip().lower() for value in query.categories]))
    if query.language is not None:
        filters.append(_tagged(LANGUAGE, [query.language.strip().lower()]))
    if query.age is not None:
        filters.append(or_(service.minimum_age.is_(None), service.minimum_age <= query.age))
        filters.append(or_(service.maximum_age.is_(None), service.maximum_age >= query.age))
    if query.statuses:
        filters.append(service.capacity_status.in_(query.statuses))
    if query.accepting is not None:
        filters.append(service.accepting_referrals.is_(query.accepting))
    if query.affirming is not None:
        filters.append(service.affirming.is_(query.affirming))
    return filters


def _tagged(kind: str, values: Sequence[str]) -> ColumnElement[bool]:
    tagged = select(DirectoryTag.entry_id).where(
        DirectoryTag.kind == kind, DirectoryTag.value.in_(values)
    )
    return DirectoryService.id.in_(tagged)


def _full_text(
    session: Session, statement: Select[Any], query: DirectoryQuery
) -> tuple[Select[Any], ColumnElement[Any] | None]:
    """Join the full-text index when there is text or an area; the relevance key (lower first)."""
    text, area = words(query.text or ""), words(query.area or "")
    if not (text or area):
        return statement, None
    if is_sqlite(session):
        terms = [_fts5_term(word) for word in text]
        terms += [f"areas : {_fts5_term(word)}" for word in area]
        index: ColumnElement[Any] = literal_column("directory_fts")
        # bm25 is lower for better matches; a word in the name weighs ten times more.
        matched = (
            select(
                _SQLITE_FTS.c.rowid.label("entry_id"),
                func.bm25(index, 10.0, 1.0, 1.0).label("relevance"),
            )
            .where(index.bool_op("MATCH")(" AND ".join(terms)))
            .subquery("matched")
        )
        statement = statement.join(matched, matched.c.entry_id == DirectoryService.id)
        return statement, matched.c.relevance
    fts = _POSTGRES_FTS
    statement = statement.join(fts, fts.c.entry_id == DirectoryService.id)
    if text:  # the document holds the name, the description and the areas
        statement = statement.where(fts.c.document.bool_op("@@")(_tsquery(text)))
    if area:
        statement = statement.where(fts.c.areas.bool_op("@@")(_tsquery(area)))
    if not text:
        return statement, None
    return statement, -func.ts_rank(fts.c.document, _tsquery(text))


def _fts5_term(word: str) -> str:
    """A quoted FTS5 string, prefix-matched from two characters (``words`` holds no quotes)."""
    return f'"{word}"*' if len(word) > 1 else f'"{word}"'


def _tsquery(words_: Sequence[str]) -> ColumnElement[Any]:
    """``to_tsquery('simple', ...)`` of quoted lexemes, prefix-matched from two characters."""
    lexemes = " & ".join(f"'{word}':*" if len(word) > 1 else f"'{word}'" for word in words_)
    return func.to_tsquery(literal_column("'simple'"), lexemes)


def _count(session: Session, matching: Select[Any]) -> int:
    return int(session.scalar(select(func.count()).select_from(matching.subquery())) or 0)


def _page_near(
    session: Session, ranked: Select[Any], query: DirectoryQuery
) -> tuple[list[tuple[int, float | None]], int]:
    """Candidates in the bounding box (in SQL), kept within the radius, ranked, one page."""
    latitude, longitude = query.near or (0.0, 0.0)
    south, north, west, east = bounding_box(latitude, longitude, query.radius_km)
    location = DirectoryLocation
    in_box = ranked.join(location, location.entry_id == DirectoryService.id).where(
        location.latitude.between(south, north),
        or_(*longitude_ranges(location.longitude, west, east)),
    )
    in_box = in_box.add_columns(location.latitude, location.longitude).order_by(None)
    rows = session.execute(in_box).all()
    nearest: dict[int, tuple[tuple[Any, ...], float]] = {}
    for row in rows:
        distance = haversine_km(latitude, longitude, row.latitude, row.longitude)
        if distance <= query.radius_km and distance < nearest.get(row.id, ((), math.inf))[1]:
            key = (row.stale, row.availability, row.freshness, row.relevance, row.name, row.id)
            nearest[row.id] = (key, distance)
    ordered = sorted(nearest.items(), key=lambda item: item[1][0])
    chosen = ordered[query.offset : query.offset + query.limit]
    return [(entry_id, distance) for entry_id, (_key, distance) in chosen], len(ordered)


def _load(
    session: Session, page: Sequence[tuple[int, float | None]], now: int
) -> tuple[SearchResult, ...]:
    """The shown columns of one page of ids, in the page's order."""
    if not page:
        return ()
    service = DirectoryService
    statement = (
        select(service.id.label("entry_id"), *_SHOWN, DirectoryRecord.description)
        .add_columns(
            Peer.entity_id.label("peer_entity_id"),
            Peer.organization_name.label("peer_organization"),
            Peer.organization_kind.label("peer_kind"),
            _stale(now).label("stale"),
            PeerDirectory.expires_at.label("stale_since"),
        )
        .join(Peer, Peer.id == service.peer_id)
        .join(DirectoryRecord, DirectoryRecord.entry_id == service.id)
        .outerjoin(PeerDirectory, PeerDirectory.peer_id == service.peer_id)
        .where(service.id.in_([entry_id for entry_id, _ in page]))
    )
    found = {row.entry_id: dict(row._mapping) for row in session.execute(statement)}
    return tuple(_result(found[entry_id], distance, now) for entry_id, distance in page)


def _result(row: dict[str, Any], distance: float | None, now: int) -> SearchResult:
    del row["entry_id"]
    row["stale"] = bool(row["stale"])
    row["stale_since"] = row["stale_since"] if row["stale"] else None
    verified = row["verified_at"]
    days = None if verified is None else max(0, (now - verified) // DAY)
    return SearchResult(**row, verified_days_ago=days, distance_km=distance)


def _stale(now: int) -> ColumnElement[bool]:
    """A peer's services are stale once its document expired, or when none is held."""
    return or_(PeerDirectory.expires_at.is_(None), PeerDirectory.expires_at <= now)


__all__ = [
    "CAPACITY_STATUSES",
    "DirectoryQuery",
    "SearchPage",
    "SearchResult",
    "parse_point",
    "search",
    "service_languages",
    "words",
]
