"""Trusted peers: adding by pinned thumbprint, peering requests, status, refresh and rotation.

Only verified data enters trusted state. Adding a peer fetches its entity
configuration and accepts it only when signed by the thumbprint its
administrator was told; a peering request from another node arrives as
``pending`` and becomes ``trusted`` only when an administrator confirms its
thumbprint. Refreshing follows key rotation: a new document is accepted when
signed by a key already trusted for that peer. Every change of trust, and every
change of a peer's keys, is appended to the audit log (:mod:`~exchange_node.services.audit`).
"""

from __future__ import annotations

import random
from collections.abc import Mapping

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from exchange_node.db.models import Peer, PeerDirectory, PeerKey, PeerStatus
from exchange_node.errors import (
    ConflictError,
    ExchangeError,
    InvalidRequestError,
    NotFoundError,
)
from exchange_node.node import Node
from exchange_node.protocol import _jose
from exchange_node.protocol._claims import check_entity_id
from exchange_node.protocol.entity import EntityConfiguration, verify_entity_configuration
from exchange_node.protocol.errors import ProtocolError, UnknownSignerError, UntrustedKeyError
from exchange_node.protocol.httpsig import read_signature_keyid, verify_request
from exchange_node.protocol.limits import Limits
from exchange_node.protocol.statements import (
    PEERING_REQUEST_MEDIA_TYPE,
    PEERING_REQUEST_TYP,
    sign_peering_request,
    verify_peering_request,
)
from exchange_node.services import audit
from exchange_node.services.directory_index import clear_peer_services
from exchange_node.services.federation_auth import remember_nonce

#: Status changes an administrator may make, from -> allowed targets.
STATUS_CHANGES: dict[str, set[str]] = {
    PeerStatus.PENDING: {PeerStatus.REMOVED},
    PeerStatus.TRUSTED: {PeerStatus.SUSPENDED, PeerStatus.REMOVED},
    PeerStatus.SUSPENDED: {PeerStatus.TRUSTED, PeerStatus.REMOVED},
    PeerStatus.REMOVED: set(),
}
#: The audit action of each status an administrator moves a peer to.
STATUS_ACTIONS: dict[str, str] = {
    PeerStatus.SUSPENDED: "peer.suspended",
    PeerStatus.TRUSTED: "peer.resumed",
    PeerStatus.REMOVED: "peer.removed",
}


def get_peer(session: Session, entity_id: str) -> Peer:
    peer = session.scalar(select(Peer).where(Peer.entity_id == entity_id.rstrip("/")))
    if peer is None:
        raise NotFoundError(f"no peer {entity_id}: see 'exchange-node peer list'")
    return peer


def list_peers(session: Session, status: str | None = None) -> list[Peer]:
    query = select(Peer).order_by(Peer.entity_id)
    if status is not None:
        query = query.where(Peer.status == status)
    return list(session.scalars(query))


def add_peer(
    node: Node,
    session: Session,
    entity_id: str,
    thumbprint: str,
    message: str = "",
    *,
    actor: str = "cli",
) -> Peer:
    """Trust the node at ``entity_id`` if its entity configuration is signed by ``thumbprint``.

    Then ask it to trust this node (a signed peering request); if that request
    fails the peer stays trusted here and the error is recorded on it.

    Raises:
        InvalidRequestError: a bad URL, this node's own URL, or a thumbprint that does not match.
        PeerUnreachableError, PeerRefusedError: the entity configuration could not be fetched.
        ConflictError: the peer publishes a key that another peer already uses.
    """
    entity_id = _entity_id(node, entity_id)
    configuration = _fetch_pinned(node, entity_id, thumbprint)
    peer = session.scalar(select(Peer).where(Peer.entity_id == entity_id))
    previous = None if peer is None else peer.status
    if peer is None:
        peer = _new_peer(node, entity_id)
        session.add(peer)
    peer.status, peer.pinned_thumbprint = PeerStatus.TRUSTED, thumbprint
    store_configuration(node, session, peer, configuration)
    session.flush()
    try:
        send_peering_request(node, session, peer, message)
    except ExchangeError as e:
        peer.last_error = f"peering request not delivered: {e.detail}"[:500]
    # After the request: appends wait for this transaction, not for a peer's answer.
    audit.record(
        session,
        actor=actor,
        action="peer.added",
        subject=entity_id,
        details={
            "thumbprint": thumbprint.strip(),
            "previous_status": previous,
            "request_delivered": peer.last_error is None,
        },
        now=node.now(),
    )
    return peer


def send_peering_request(node: Node, session: Session, peer: Peer, message: str = "") -> None:
    """Ask ``peer`` to trust this node: a signed peering request, HTTP-signed too."""
    now, ring = node.now(), node.ring(session)
    token = sign_peering_request(
        issuer=node.settings.url,
        audience=peer.entity_id,
        signing_key=ring.signing_key,
        now=now,
        message=message,
        limits=node.settings.limits,
    )
    node.client.signed_request(
        "POST",
        peer.peering_endpoint,
        key=ring.signing_key,
        now=now,
        body=token.encode("ascii"),
        content_type=PEERING_REQUEST_MEDIA_TYPE,
    )


def receive_peering_request(
    node: Node, session: Session, *, url: str, headers: Mapping[str, str], body: bytes
) -> Peer:
    """A node asks to peer: verify it is who it says, and list it as ``pending``.

    The requester is unknown, so its entity configuration is fetched from the
    ``iss`` of the request and must be self-consistent: it signs itself, it lists
    the key that signed the HTTP request and the peering request. Trust is not
    given here; an administrator confirms the thumbprint out of band first.

    Raises:
        ProtocolError: the request, its signature or the requester's documents fail;
            ``replayed`` when the HTTP signature's nonce was seen before (SPEC 8.3 step 4).
        InvalidRequestError: a request from this node itself.
        ConflictError: the requester's documents do not chain to keys already trusted for it.
    """
    limits, now = node.settings.limits, node.now()
    keyid = read_signature_keyid(headers, limits=limits)
    issuer = _unverified_issuer(body, limits)
    entity_id = _entity_id(node, issuer)
    known = session.scalar(select(Peer).where(Peer.entity_id == entity_id))
    token = node.client.fetch_entity_configuration(entity_id)
    configuration = _verify_requester_configuration(token, entity_id, known, now, node)
    signing = {key.kid: key for key in configuration.signing_keys}
    if keyid not in signing:
        raise UnknownSignerError("the request is not signed by a key the requester publishes")
    verified = verify_request(
        "POST", url, headers, body, key=signing[keyid], now=now, limits=limits
    )
    peer = known or _new_peer(node, entity_id)
    if known is None:
        session.add(peer)
        session.flush()  # the nonce row refers to the peer; rolled back if anything fails
    remember_nonce(
        session.connection(), peer.id, verified.nonce, verified.expires + limits.clock_skew
    )
    request = verify_peering_request(
        body,
        issuer=entity_id,
        issuer_keys=configuration.signing_keys,
        audience=node.settings.url,
        now=now,
        limits=limits,
    )
    if peer.status == PeerStatus.PENDING:  # new, or asking again while pending
        peer.requested_by_peer, peer.request_message = True, request.message
        store_configuration(node, session, peer, configuration)
    # Known in any other state: nothing changes (SPEC 8.3). A trusted peer stays trusted, a
    # suspended one suspended, and a declined (removed) one cannot put itself back in the
    # queue: an administrator re-adds it with 'peer add' if that is wanted.
    audit.record(  # the message is the peer's free text: not logged
        session,
        actor=f"peer:{entity_id}",
        action="peer.requested",
        subject=entity_id,
        details={"status": peer.status, "new": known is None, "keyid": keyid},
        now=now,
    )
    return peer


def accept_peer(
    node: Node, session: Session, entity_id: str, thumbprint: str, *, actor: str = "cli"
) -> Peer:
    """Trust a pending peer once its administrator's thumbprint matches what it published.

    Raises:
        NotFoundError: no such peer. ConflictError: the peer is not pending.
        InvalidRequestError: the thumbprint does not match the peer's entity configuration.
    """
    peer = get_peer(session, entity_id)
    if peer.status != PeerStatus.PENDING:
        raise ConflictError(f"{peer.entity_id} is {peer.status}, not pending")
    configuration = _fetch_pinned(node, peer.entity_id, thumbprint)
    peer.status, peer.pinned_thumbprint = PeerStatus.TRUSTED, thumbprint
    store_configuration(node, session, peer, configuration)
    audit.record(
        session,
        actor=actor,
        action="peer.accepted",
        subject=peer.entity_id,
        details={"thumbprint": thumbprint.strip()},
        now=node.now(),
    )
    return peer


def change_status(
    node: Node, session: Session, entity_id: str, status: str, *, actor: str = "cli"
) -> Peer:
    """Suspend, resume (back to trusted) or remove a peer.

    Removing forgets the peer's services and its capacity document; a suspended
    peer's are kept (search hides them) until it is resumed or removed.

    Raises:
        NotFoundError, ConflictError: naming the changes that are allowed.
    """
    peer = get_peer(session, entity_id)
    if status not in STATUS_CHANGES[peer.status]:
        allowed = ", ".join(sorted(STATUS_CHANGES[peer.status])) or "none"
        raise ConflictError(f"{peer.entity_id} is {peer.status}; it can become: {allowed}")
    previous = peer.status
    peer.status, peer.updated_at = status, node.now()
    if status == PeerStatus.REMOVED:
        clear_peer_services(session, peer.id)
        session.execute(delete(PeerDirectory).where(PeerDirectory.peer_id == peer.id))
    audit.record(
        session,
        actor=actor,
        action=STATUS_ACTIONS[status],
        subject=peer.entity_id,
        details={"previous_status": previous},
        now=peer.updated_at,
    )
    return peer


def refresh_peer(node: Node, session: Session, peer: Peer, *, actor: str = "cli") -> Peer:
    """Fetch the peer's entity configuration again and follow a key rotation it chains to.

    A change of the peer's keys is audited (``peer.key_rotated``); a failure is recorded
    on the peer (``last_error``, backoff) and raised.
    """
    now, held = node.now(), {key.kid for key in peer.keys}
    try:
        token = node.client.fetch_entity_configuration(peer.entity_id)
        configuration = verify_entity_configuration(
            token,
            entity_id=peer.entity_id,
            trusted_thumbprints=_signing_kids(peer),
            now=now,
            held_issued_at=peer.configuration_issued_at,
            limits=node.settings.limits,
        )
        store_configuration(node, session, peer, configuration)
    except (ExchangeError, ProtocolError) as e:
        peer.refresh_failures += 1
        peer.last_error = _describe(e)[:500]
        backoff = min(node.settings.peer_refresh_seconds, 60 * 2 ** min(peer.refresh_failures, 10))
        peer.next_refresh_at = now + int(backoff * random.uniform(0.8, 1.2))  # noqa: S311
        raise
    kids = {key.kid for key in peer.keys}
    if kids != held:
        audit.record(
            session,
            actor=actor,
            action="peer.key_rotated",
            subject=peer.entity_id,
            details={
                "keys_added": len(kids - held),
                "keys_removed": len(held - kids),
                # At most max_jwks_keys thumbprints: the keys that may now sign for the peer.
                "signing_keys": " ".join(sorted(_signing_kids(peer))),
            },
            now=now,
        )
    return peer


def store_configuration(
    node: Node, session: Session, peer: Peer, configuration: EntityConfiguration
) -> None:
    """Record a verified entity configuration and its keys on ``peer``.

    Raises:
        ConflictError: a key it lists is already another peer's (keyids must name one peer).
    """
    kids = [key.kid for key in (*configuration.signing_keys, *configuration.encryption_keys)]
    query = select(PeerKey.kid).where(PeerKey.kid.in_(kids))
    if peer.id is not None:
        query = query.where(PeerKey.peer_id != peer.id)
    taken = session.scalars(query).all()
    if taken:
        raise ConflictError(
            f"{configuration.entity_id} lists keys another peer already uses: {sorted(taken)}"
        )
    now = node.now()
    peer.organization_name = configuration.organization_name
    peer.organization_kind = configuration.organization_kind
    peer.entity_configuration = configuration.token
    peer.configuration_issued_at = configuration.issued_at
    peer.configuration_expires_at = configuration.expires_at
    peer.capacity_endpoint = configuration.capacity_endpoint
    peer.inbox_endpoint = configuration.inbox_endpoint
    peer.peering_endpoint = configuration.peering_endpoint
    peer.languages = list(configuration.languages)
    peer.updated_at = peer.refreshed_at = now
    peer.refresh_failures, peer.last_error = 0, None
    peer.next_refresh_at = now + node.settings.peer_refresh_seconds
    peer.keys = [
        PeerKey(kid=key.kid, use=key.use, position=position, jwk=key.public_jwk())
        for group in (configuration.signing_keys, configuration.encryption_keys)
        for position, key in enumerate(group)
    ]


def _fetch_pinned(node: Node, entity_id: str, thumbprint: str) -> EntityConfiguration:
    """The peer's entity configuration, verified against the thumbprint its administrator gave."""
    token = node.client.fetch_entity_configuration(entity_id)
    try:
        return verify_entity_configuration(
            token,
            entity_id=entity_id,
            trusted_thumbprints={thumbprint.strip()},
            now=node.now(),
            limits=node.settings.limits,
        )
    except UntrustedKeyError as e:
        raise InvalidRequestError(
            f"{entity_id} is not signed by thumbprint {thumbprint}: "
            "check the thumbprint with its administrator"
        ) from e
    except ProtocolError as e:
        raise InvalidRequestError(
            f"{entity_id} published an invalid entity configuration: {e.code}: {e.detail}"
        ) from e


def _new_peer(node: Node, entity_id: str) -> Peer:
    now = node.now()
    return Peer(
        entity_id=entity_id,
        status=PeerStatus.PENDING,
        organization_name="",
        organization_kind="other",
        entity_configuration="",
        configuration_issued_at=0,
        configuration_expires_at=0,
        capacity_endpoint="",
        inbox_endpoint="",
        peering_endpoint="",
        languages=[],
        requested_by_peer=False,
        request_message="",
        created_at=now,
        updated_at=now,
        refresh_failures=0,
    )


def _entity_id(node: Node, value: str) -> str:
    entity_id = value.strip().rstrip("/")
    try:
        check_entity_id(entity_id, "peer URL")
    except ProtocolError as e:
        raise InvalidRequestError(e.detail) from e
    if entity_id == node.settings.url:
        raise InvalidRequestError("that is this node's own URL")
    return entity_id


def _signing_kids(peer: Peer) -> set[str]:
    return {key.kid for key in peer.keys if key.use == "sig"}


def _verify_requester_configuration(
    token: str, entity_id: str, known: Peer | None, now: int, node: Node
) -> EntityConfiguration:
    """A known peer's document must chain to its trusted keys; a new one must sign itself."""
    limits = node.settings.limits
    if known is not None and known.status in (PeerStatus.TRUSTED, PeerStatus.SUSPENDED):
        try:
            return verify_entity_configuration(
                token,
                entity_id=entity_id,
                trusted_thumbprints=_signing_kids(known),
                now=now,
                limits=limits,
            )
        except UntrustedKeyError as e:
            raise ConflictError(
                f"{entity_id} is already a peer, and this document is not signed by its keys"
            ) from e
    header = _jose.parse_jws(token, "entity-statement+jwt", limits).header
    return verify_entity_configuration(
        token, entity_id=entity_id, trusted_thumbprints={header["kid"]}, now=now, limits=limits
    )


def _unverified_issuer(body: bytes, limits: Limits) -> str:
    """The ``iss`` a peering request claims, read before anything can be verified."""
    payload = _jose.parse_jws(body, PEERING_REQUEST_TYP, limits).unverified_claims(
        "peering request"
    )
    issuer = payload.get("iss")
    if not isinstance(issuer, str):
        raise InvalidRequestError("the peering request names no issuer")
    return issuer


def _describe(error: ExchangeError | ProtocolError) -> str:
    return f"{error.code}: {error.detail}"
