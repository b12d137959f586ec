"""What this node publishes: its signed capacity document, and its public services.

The capacity document is signed once and kept in the ``capacity_publication`` row, so
every web worker serves the same bytes under the same ETag. It is re-signed when a
service changed (``version`` moved past ``signed_version``), when half its lifetime is
gone, or when the signing key rotated; otherwise serving it costs one query.

Every entry is checked before it is signed: a record that is not valid HSDS 3.1, or a
capacity entry the document schema refuses, is left out and logged by service id. The
catalog refuses such rows, so one can only come from a hand-edited database or a newer
schema; leaving it out keeps every other service on the feed, where refusing to publish
would take them all off it (peers would see them go stale) for one bad row.

This module neither changes services (:mod:`~exchange_node.services.catalog`) nor
fetches peers' documents (:mod:`~exchange_node.services.directory_sync`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Row, bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from exchange_node.db.models import CapacityPublication, OwnKey, Service
from exchange_node.errors import ConfigurationError, ExchangeError, NotFoundError
from exchange_node.hsds import validate_service
from exchange_node.node import Node
from exchange_node.protocol.capacity import build_capacity_claims, sign_capacity_document
from exchange_node.protocol.errors import OversizedError, ProtocolError
from exchange_node.protocol.keys import NodeKey
from exchange_node.protocol.messages import format_timestamp
from exchange_node.protocol.wire import CapacityEntrySchema, load_claims

log = logging.getLogger("exchange_node.publication")

#: Longest search text the public list accepts.
MAX_SEARCH_LENGTH = 200
#: Service ids are UUIDs (the ``services.id`` column holds 36 characters).
MAX_SERVICE_ID_LENGTH = 36


@dataclass(frozen=True)
class PublishedDocument:
    """The capacity document as served: the token, its ETag, and what it says."""

    token: str
    etag: str
    version: int
    issued_at: int
    expires_at: int


@dataclass(frozen=True)
class PublicServicePage:
    """One page of the public services, in the order the open HSDS API lists them."""

    records: list[dict[str, Any]]
    total_items: int
    page_number: int
    per_page: int

    @property
    def total_pages(self) -> int:
        return math.ceil(self.total_items / self.per_page)


def current_document(node: Node, session: Session) -> PublishedDocument:
    """The signed capacity document, re-signed first when it is out of date."""
    now, lifetime = node.now(), node.settings.limits.capacity_lifetime
    state = session.execute(_STATE, {"now": now}).one()
    document = _servable(state, state.signing_kid, now, lifetime)
    if document is not None:
        return document
    # Take the write lock before reading again: concurrent workers wait here, then find
    # the document signed (PostgreSQL locks the row; SQLite, which ignores FOR UPDATE,
    # takes its database write lock), and the services read below match ``version``.
    session.execute(_LOCK)
    publication = session.get_one(CapacityPublication, 1, populate_existing=True)
    signing_key = node.ring(session).signing_key
    document = _servable(publication, signing_key.kid, now, lifetime)
    return document or _sign(node, session, publication, signing_key)


def capacity_entry(service: Service) -> dict[str, Any]:
    """The ``capacity`` member of a service's document entry (SPEC 4.2); absent values left out."""
    entry: dict[str, Any] = {
        "status": service.capacity_status,
        "accepting_referrals": service.accepting_referrals,
        "wait_days": service.wait_days,
        "notes": service.notes,
        "intake_fields": list(service.intake_fields),
        "verified_at": None
        if service.verified_at is None
        else format_timestamp(service.verified_at),
        "updated_at": format_timestamp(service.capacity_updated_at),
    }
    return {name: value for name, value in entry.items() if value is not None}


def entity_tag(token: str) -> str:
    """The strong ETag of SPEC 4.1: ``"`` + base64url(SHA-256(token)) + ``"``."""
    digest = hashlib.sha256(token.encode("ascii")).digest()
    return '"' + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii") + '"'


def list_public_services(
    session: Session, *, page: int, per_page: int, search: str | None = None
) -> PublicServicePage:
    """A page (1-based) of the services marked public, by name, optionally those whose
    name contains ``search`` (case-insensitive)."""
    conditions: list[ColumnElement[bool]] = [Service.public.is_(True)]
    if search:
        conditions.append(Service.name.icontains(search[:MAX_SEARCH_LENGTH], autoescape=True))
    total = session.scalar(select(func.count()).select_from(Service).where(*conditions)) or 0
    records = session.scalars(
        select(Service.record)
        .where(*conditions)
        .order_by(Service.name, Service.id)
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    return PublicServicePage([dict(record) for record in records], total, page, per_page)


def get_public_service(session: Session, service_id: str) -> dict[str, Any]:
    """The record of a public service; an unknown and a private id get the same answer.

    Raises:
        NotFoundError: no public service has this id.
    """
    record = None
    if len(service_id) <= MAX_SERVICE_ID_LENGTH:
        record = session.scalar(
            select(Service.record).where(Service.id == service_id, Service.public.is_(True))
        )
    if record is None:
        raise NotFoundError("no public service with this id")
    return dict(record)


def _servable(
    state: CapacityPublication | Row[Any], signing_kid: str | None, now: int, lifetime: int
) -> PublishedDocument | None:
    """The stored document if it may be served as it is: signed at the current version, by
    the current signing key, less than half its lifetime ago."""
    token, etag, issued_at, expires_at = state.token, state.etag, state.issued_at, state.expires_at
    if (
        token is None
        or etag is None
        or issued_at is None
        or expires_at is None
        or state.signed_version != state.version
        or now - issued_at >= lifetime // 2
        or _signed_by(token) != signing_kid
    ):
        return None
    return PublishedDocument(token, etag, state.version, issued_at, expires_at)


def _sign(
    node: Node, session: Session, publication: CapacityPublication, signing_key: NodeKey
) -> PublishedDocument:
    """Sign every publishable service at the current version, and store the token."""
    limits = node.settings.limits
    entries = [entry for row in _all_services(session) if (entry := _checked_entry(row))]
    claims = build_capacity_claims(
        issuer=node.settings.url,
        version=publication.version,
        services=entries,
        now=node.now(),
        lifetime=limits.capacity_lifetime,
        limits=limits,
    )
    try:
        token = sign_capacity_document(claims, signing_key, limits)
    except OversizedError as e:  # the node's own data: not the requesting peer's fault
        log.error("capacity document version %d not signed: %s", publication.version, e.code)
        raise ConfigurationError(e.detail) from e
    publication.token, publication.etag = token, entity_tag(token)
    publication.signed_version = publication.version
    publication.issued_at, publication.expires_at = claims["iat"], claims["exp"]
    session.flush()
    log.info("capacity document version %d signed, %d services", publication.version, len(entries))
    return PublishedDocument(
        token, publication.etag, publication.version, claims["iat"], claims["exp"]
    )


def _signed_by(token: str) -> str | None:
    """The ``kid`` in the header of a token this node signed (read without verifying)."""
    header = token.partition(".")[0]
    try:
        kid = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))).get("kid")
    except (ValueError, AttributeError):
        return None
    return kid if isinstance(kid, str) else None


def _all_services(session: Session) -> list[Service]:
    return list(session.scalars(select(Service).order_by(Service.id)))


def _checked_entry(service: Service) -> dict[str, Any] | None:
    """The document entry of a service, or None (logged) when it cannot be published."""
    entry = {"service": service.record, "capacity": capacity_entry(service)}
    try:
        validate_service(service.record, where="/service")
        load_claims(CapacityEntrySchema, entry, "capacity entry")
    except (ExchangeError, ProtocolError) as e:
        pointers = sorted(getattr(e, "fields", None) or {})[:3]
        log.error("service %s left out of the capacity document: invalid %s", service.id, pointers)
        return None
    return entry


#: The kid of the key that signs now, chosen as :meth:`KeyStore.ring` chooses it (published,
#: active, not retired, the latest ``active_from`` first), so one query answers whether the
#: stored document is current.
_SIGNING_KID = (
    select(OwnKey.kid)
    .where(
        OwnKey.use == "sig",
        OwnKey.published_at <= bindparam("now"),
        OwnKey.active_from <= bindparam("now"),
        or_(OwnKey.retire_at.is_(None), OwnKey.retire_at > bindparam("now")),
    )
    .order_by(OwnKey.active_from.desc())
    .limit(1)
    .scalar_subquery()
)
_STATE = select(
    CapacityPublication.version,
    CapacityPublication.signed_version,
    CapacityPublication.token,
    CapacityPublication.etag,
    CapacityPublication.issued_at,
    CapacityPublication.expires_at,
    _SIGNING_KID.label("signing_kid"),
).where(CapacityPublication.id == 1)
#: A write that changes nothing: the lock that works on both databases.
_LOCK = (
    update(CapacityPublication)
    .where(CapacityPublication.id == 1)
    .values(version=CapacityPublication.version)
)
