"""The node's tables. Times are integer Unix seconds, like the protocol's ``now``.

A person's data lives only in ``sealed`` columns (``LargeBinary``), encrypted under
the node data key (:mod:`exchange_node.data_key`) with the row's place as associated
data; every other column holds identifiers, codes and times. Peer keys live in their
own table so an incoming request's ``keyid`` finds its peer with one indexed lookup.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        # BIGINT on PostgreSQL; INTEGER on SQLite, where only that auto-increments a key.
        int: BigInteger().with_variant(Integer(), "sqlite"),
        dict[str, Any]: JSON,
        list[str]: JSON,
    }


class PeerStatus(StrEnum):
    PENDING = "pending"
    TRUSTED = "trusted"
    SUSPENDED = "suspended"
    REMOVED = "removed"


class Peer(Base):
    """Another node: what it published, and whether this node trusts it."""

    __tablename__ = "peers"

    id: Mapped[int] = mapped_column(primary_key=True)
    entity_id: Mapped[str] = mapped_column(String(512), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    organization_name: Mapped[str] = mapped_column(String(200))
    organization_kind: Mapped[str] = mapped_column(String(32))
    #: The thumbprint an administrator confirmed out of band; None while pending.
    pinned_thumbprint: Mapped[str | None] = mapped_column(String(43))
    entity_configuration: Mapped[str] = mapped_column(Text)
    configuration_issued_at: Mapped[int]
    configuration_expires_at: Mapped[int]
    capacity_endpoint: Mapped[str] = mapped_column(String(512))
    inbox_endpoint: Mapped[str] = mapped_column(String(512))
    peering_endpoint: Mapped[str] = mapped_column(String(512))
    languages: Mapped[list[str]]
    #: The peer asked to peer (a peering request arrived); shown under ``peer requests``.
    requested_by_peer: Mapped[bool] = mapped_column(default=False)
    request_message: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[int]
    updated_at: Mapped[int]
    refreshed_at: Mapped[int | None]
    next_refresh_at: Mapped[int | None] = mapped_column(index=True)
    refresh_failures: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    #: Outbox backoff per peer (SPEC 7.5): failed attempts in a row, and no attempt before.
    delivery_failures: Mapped[int] = mapped_column(default=0, server_default="0")
    delivery_retry_at: Mapped[int | None]

    keys: Mapped[list[PeerKey]] = relationship(
        back_populates="peer", cascade="all, delete-orphan", order_by="PeerKey.position"
    )


class PeerKey(Base):
    """One public key of a peer, from its last verified entity configuration."""

    __tablename__ = "peer_keys"

    kid: Mapped[str] = mapped_column(String(43), primary_key=True)
    peer_id: Mapped[int] = mapped_column(ForeignKey("peers.id", ondelete="CASCADE"), index=True)
    use: Mapped[str] = mapped_column(String(3))
    position: Mapped[int]
    jwk: Mapped[dict[str, Any]]

    peer: Mapped[Peer] = relationship(back_populates="keys")


class SeenNonce(Base):
    """HTTP-signature nonces seen from each peer, kept until the signature expires."""

    __tablename__ = "seen_nonces"

    peer_id: Mapped[int] = mapped_column(
        ForeignKey("peers.id", ondelete="CASCADE"), primary_key=True
    )
    nonce: Mapped[str] = mapped_column(String(128), primary_key=True)
    expires_at: Mapped[int] = mapped_column(index=True)


class OwnKey(Base):
    """The lifecycle of this node's own keys; the private parts stay in the home folder.

    A key is published from ``published_at``, signs (or is encrypted to) from
    ``active_from``, and is withdrawn from publication at ``retire_at``.
    """

    __tablename__ = "own_keys"

    kid: Mapped[str] = mapped_column(String(43), primary_key=True)
    use: Mapped[str] = mapped_column(String(3))
    published_at: Mapped[int]
    active_from: Mapped[int]
    retire_at: Mapped[int | None]


class User(Base):
    """A person who signs in to the web app (staff or administrator)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[int]


class OAuthClient(Base):
    """An integration that gets access tokens with the client-credentials grant."""

    __tablename__ = "oauth_clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[str] = mapped_column(String(255))
    scopes: Mapped[list[str]]
    created_at: Mapped[int]
    revoked_at: Mapped[int | None]


class AccessToken(Base):
    """An issued bearer token, stored as its SHA-256 only."""

    __tablename__ = "access_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("oauth_clients.id", ondelete="CASCADE"))
    scopes: Mapped[list[str]]
    issued_at: Mapped[int]
    expires_at: Mapped[int] = mapped_column(index=True)


Index("ix_peers_status", Peer.status)


class CapacityStatus(StrEnum):
    """Whether a service can take people now (the protocol's capacity status codes)."""

    CAPACITY = "capacity"
    NO_CAPACITY = "no-capacity"
    WAITLIST = "waitlist"
    ASSESSMENT = "additional-assessment-required"


class Service(Base):
    """A service this node offers: its HSDS 3.1 record and its capacity right now.

    ``record`` is the HSDS 3.1 ``service`` object as published (``capacities`` holds the
    HSDS ``service_capacity`` numbers); the columns beside it are the protocol's
    capacity entry. Only ``public`` services appear on the open HSDS endpoint.
    """

    __tablename__ = "services"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(500))
    record: Mapped[dict[str, Any]]
    public: Mapped[bool] = mapped_column(default=False)
    capacity_status: Mapped[str] = mapped_column(String(32))
    accepting_referrals: Mapped[bool] = mapped_column(default=False)
    wait_days: Mapped[int | None]
    notes: Mapped[str | None] = mapped_column(String(1000))
    intake_fields: Mapped[list[str]]
    #: When a person last confirmed the capacity (apart from when it last changed).
    verified_at: Mapped[int | None]
    capacity_updated_at: Mapped[int]
    created_at: Mapped[int]
    updated_at: Mapped[int]


class CapacityPublication(Base):
    """This node's capacity document: its version and its last signature (one row, id 1).

    ``version`` is raised in the same transaction as every change to ``services``;
    the document is re-signed when ``signed_version`` lags or half its life is gone,
    so every web worker serves the same bytes and the same ETag.
    """

    __tablename__ = "capacity_publication"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int]
    signed_version: Mapped[int | None]
    token: Mapped[str | None] = mapped_column(Text)
    etag: Mapped[str | None] = mapped_column(String(64))
    issued_at: Mapped[int | None]
    expires_at: Mapped[int | None]


class PeerDirectory(Base):
    """What this node holds of one peer's capacity document, and how syncing it goes."""

    __tablename__ = "peer_directories"

    peer_id: Mapped[int] = mapped_column(
        ForeignKey("peers.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int | None]
    token: Mapped[str | None] = mapped_column(Text)
    etag: Mapped[str | None] = mapped_column(String(128))
    issued_at: Mapped[int | None]
    #: Past this time the held services are shown as stale.
    expires_at: Mapped[int | None]
    #: Last successful poll (a new document or 304 Not Modified).
    synced_at: Mapped[int | None]
    attempted_at: Mapped[int | None]
    next_sync_at: Mapped[int | None] = mapped_column(index=True)
    failures: Mapped[int] = mapped_column(default=0)
    last_error_code: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(String(500))


class DirectoryService(Base):
    """One service of a peer, as its last verified capacity document published it.

    Only what search filters and ranks on, so a scan stays narrow; the description
    and the signed HSDS record (untrusted display text) are in :class:`DirectoryRecord`.
    ``availability`` (0: accepting with capacity, 1: accepting with a waitlist or an
    assessment, 2: the rest) and ``freshness`` (minus the UTC day of ``verified_at``,
    else ``updated_at``) are the static ranking keys, lower first. Text search uses
    ``directory_fts`` (FTS5 on SQLite, tsvector on PostgreSQL), kept by
    :mod:`exchange_node.services.directory_index`.
    """

    __tablename__ = "directory_services"
    __table_args__ = (UniqueConstraint("peer_id", "service_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    peer_id: Mapped[int] = mapped_column(ForeignKey("peers.id", ondelete="CASCADE"))
    service_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(500))
    organization_name: Mapped[str] = mapped_column(String(500))
    hsds_status: Mapped[str] = mapped_column(String(32))
    capacity_status: Mapped[str] = mapped_column(String(32))
    accepting_referrals: Mapped[bool]
    wait_days: Mapped[int | None]
    notes: Mapped[str | None] = mapped_column(Text)
    intake_fields: Mapped[list[str]]
    verified_at: Mapped[int | None]
    updated_at: Mapped[int]
    minimum_age: Mapped[int | None]
    maximum_age: Mapped[int | None]
    affirming: Mapped[bool]
    availability: Mapped[int]
    freshness: Mapped[int]


class DirectoryRecord(Base):
    """The description and the signed HSDS record of a directory service, read per page."""

    __tablename__ = "directory_records"

    entry_id: Mapped[int] = mapped_column(
        ForeignKey("directory_services.id", ondelete="CASCADE"), primary_key=True
    )
    description: Mapped[str] = mapped_column(Text)
    record: Mapped[dict[str, Any]]


class DirectoryTag(Base):
    """A value a directory service can be filtered on exactly: a language or a taxonomy term."""

    __tablename__ = "directory_tags"

    entry_id: Mapped[int] = mapped_column(
        ForeignKey("directory_services.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[str] = mapped_column(String(255), primary_key=True)


class DirectoryLocation(Base):
    """A point where a directory service is offered (locations with public coordinates only)."""

    __tablename__ = "directory_locations"

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(
        ForeignKey("directory_services.id", ondelete="CASCADE"), index=True
    )
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)


Index("ix_directory_tags_kind_value", DirectoryTag.kind, DirectoryTag.value, DirectoryTag.entry_id)
#: Covers the filters on the narrow columns: counting matches reads no table rows.
Index(
    "ix_directory_services_filters",
    DirectoryService.peer_id,
    DirectoryService.hsds_status,
    DirectoryService.affirming,
    DirectoryService.minimum_age,
    DirectoryService.maximum_age,
    DirectoryService.capacity_status,
    DirectoryService.accepting_referrals,
)
#: The ranking order, so the best services are read first and a page can stop early.
Index(
    "ix_directory_services_rank",
    DirectoryService.availability,
    DirectoryService.freshness,
    DirectoryService.name,
    DirectoryService.id,
)
Index("ix_directory_locations_latitude", DirectoryLocation.latitude, DirectoryLocation.longitude)

#: Tables kept by hand, per dialect (FTS5 with its shadow tables; tsvector): not in the models.
SEARCH_INDEX_PREFIX = "directory_fts"


def is_modelled_table(name: str | None) -> bool:
    """False for the full-text tables, which migrations and comparisons must leave alone."""
    return not (name or "").startswith(SEARCH_INDEX_PREFIX)


class AuditEntry(Base):
    """One entry of the hash-chained audit log: who did what to which identifier, and when.

    Identifiers and action codes only, never personal data. ``hash`` covers ``prev_hash``
    and the entry's content; :mod:`exchange_node.services.audit` says exactly how.
    """

    __tablename__ = "audit_entries"

    #: 1, 2, 3, ... with no gaps; assigned under a lock, never by the database.
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    time: Mapped[int]
    actor: Mapped[str] = mapped_column(String(300))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(512))
    details: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


#: ``audit list --action CODE`` reads one action's entries in order.
Index("ix_audit_entries_action", AuditEntry.action, AuditEntry.seq)


class ReferralRole(StrEnum):
    """This node's part in a referral: it referred the person, or it serves them."""

    SENT = "sent"
    RECEIVED = "received"


class Referral(Base):
    """A referral this node sent or received, and the tombstone it leaves once purged.

    ``sealed`` holds the person's data (``person``, ``consent``, ``safe_contact`` and
    the override reason) as JSON sealed under the data key; it is ``None`` once purged,
    and everything else is identifiers, codes and times (SPEC 5.9: the tombstone).
    The pair (peer, ``referral_id``) names the referral in the protocol; ``role`` keeps
    a node's own referrals apart from those a peer sent it.
    """

    __tablename__ = "referrals"
    __table_args__ = (
        UniqueConstraint("peer_id", "role", "referral_id", name="uq_referrals_peer_role_referral"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(16))
    peer_id: Mapped[int] = mapped_column(ForeignKey("peers.id"), index=True)
    service_id: Mapped[str] = mapped_column(String(255))
    #: The service's name as the serving node published it (not personal data).
    service_name: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[str] = mapped_column(String(32))
    consent_id: Mapped[str] = mapped_column(String(64))
    #: Sent referrals: the code on the person's consent receipt (unique on this node).
    consent_code: Mapped[str | None] = mapped_column(String(16), unique=True)
    consent_expires_at: Mapped[int]
    sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: Sent although the service was not accepting (the reason is in ``sealed``).
    override: Mapped[bool] = mapped_column(default=False)
    capacity_version: Mapped[int | None]
    #: Who created it here: ``cli``, ``api:<client id>``, ``user:<id>``, or ``peer``.
    created_by: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[int]
    updated_at: Mapped[int]
    #: When the referral reached a terminal status (the retention clock starts here).
    closed_at: Mapped[int | None] = mapped_column(index=True)
    withdrawn_at: Mapped[int | None]
    #: The consent-withdrawal message's jti (the one sent, or the one received).
    withdrawal_jti: Mapped[str | None] = mapped_column(String(128))
    purged_at: Mapped[int | None]
    #: ``withdrawn`` or ``retention``.
    purge_reason: Mapped[str | None] = mapped_column(String(16))
    #: Sent referrals: ``deleted_at`` of the peer's deletion receipt.
    peer_deleted_at: Mapped[int | None]
    #: The last status sequence this node sent, and the highest applied from the peer.
    sent_sequence: Mapped[int] = mapped_column(default=0)
    received_sequence: Mapped[int] = mapped_column(default=0)

    events: Mapped[list[ReferralEvent]] = relationship(
        back_populates="referral", cascade="all, delete-orphan", order_by="ReferralEvent.id"
    )


class ReferralEvent(Base):
    """One line of a referral's timeline: a status change, a withdrawal, a purge, a deletion.

    ``sealed_text`` holds the free text (the note and ``reason.text``) sealed under the
    data key, ``None`` once purged; the rest is the status history a tombstone keeps.
    """

    __tablename__ = "referral_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_pk: Mapped[int] = mapped_column(
        ForeignKey("referrals.id", ondelete="CASCADE"), index=True
    )
    time: Mapped[int]
    #: ``status``, ``withdrawn``, ``purged``, ``deleted-at-peer`` or ``delivery-failed``.
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str | None] = mapped_column(String(32))
    #: The side that made a status change: ``sender`` or ``receiver`` (SPEC 10).
    side: Mapped[str | None] = mapped_column(String(16))
    sequence: Mapped[int | None]
    reason_code: Mapped[str | None] = mapped_column(String(32))
    sealed_text: Mapped[bytes | None] = mapped_column(LargeBinary)

    referral: Mapped[Referral] = relationship(back_populates="events")


class OutboxState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELLED = "cancelled"


class OutboxMessage(Base):
    """A sealed message waiting for (or done with) delivery to a peer (SPEC 7.5).

    ``envelope`` is the exact JWE sent on every attempt (encrypted to the peer);
    ``sealed_body`` is its body under the data key, kept to re-seal an expired
    envelope with a new ``jti``. Both are cleared once delivered, failed or purged.
    A worker claims a row by setting ``lease_until`` (``FOR UPDATE SKIP LOCKED`` on
    PostgreSQL), so a crashed worker's rows come back when the lease ends.
    """

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    peer_id: Mapped[int] = mapped_column(ForeignKey("peers.id"), index=True)
    referral_pk: Mapped[int | None] = mapped_column(
        ForeignKey("referrals.id", ondelete="CASCADE"), index=True
    )
    message_type: Mapped[str] = mapped_column(String(32))
    jti: Mapped[str] = mapped_column(String(128), unique=True)
    envelope: Mapped[str | None] = mapped_column(Text)
    envelope_sha256: Mapped[str | None] = mapped_column(String(64))
    #: ``exp`` of the envelope: past it, the body is sealed again with a new ``jti``.
    expires_at: Mapped[int]
    sealed_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[int]
    lease_until: Mapped[int | None]
    #: After this the message is ``failed`` (SPEC 7.5: RECOMMENDED 24 hours).
    deadline: Mapped[int]
    created_at: Mapped[int]
    delivered_at: Mapped[int | None]
    receipt: Mapped[str | None] = mapped_column(Text)
    last_error_code: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(String(500))


#: The worker's claim: due pending rows, oldest first.
Index("ix_outbox_due", OutboxMessage.state, OutboxMessage.next_attempt_at, OutboxMessage.id)


class InboxMessage(Base):
    """An envelope accepted from a peer: what replay checks and redelivery need (SPEC 7.2).

    The envelope itself is not kept: its content is stored (sealed) in the referral.
    """

    __tablename__ = "inbox"
    __table_args__ = (
        UniqueConstraint("peer_id", "jti", name="uq_inbox_peer_jti"),
        UniqueConstraint("peer_id", "envelope_sha256", name="uq_inbox_peer_envelope"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    peer_id: Mapped[int] = mapped_column(ForeignKey("peers.id"))
    jti: Mapped[str] = mapped_column(String(128))
    envelope_sha256: Mapped[str] = mapped_column(String(64))
    message_type: Mapped[str] = mapped_column(String(32))
    #: The body's ``referral_id`` (every message type has one).
    referral_id: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[int]
    receipt: Mapped[str] = mapped_column(Text)


class LoginThrottle(Base):
    """Recent failed sign-ins (one account from one address, one address, or one account).

    ``key`` is an HMAC-SHA-256 (of the normalized e-mail address, or of the client's address),
    never the address itself; :mod:`exchange_node.services.login_throttle` says how the
    counts and locks work. A row may be deleted once ``expires_at`` has passed.
    """

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int]
    locked_until: Mapped[int | None]
    expires_at: Mapped[int] = mapped_column(index=True)
