"""Peering between nodes in one process: pinned thumbprints, requests, acceptance, status."""

from __future__ import annotations

import pytest

from exchange_node.db.models import PeerStatus
from exchange_node.errors import ConflictError, InvalidRequestError
from exchange_node.services import peers
from tests.node.conftest import Federation


def status_of(federation: Federation, holder: str, other: str) -> str:
    node = federation.nodes[holder].node
    with node.database.session() as session:
        return peers.get_peer(session, federation.nodes[other].url).status


def test_add_then_accept_makes_both_sides_trusted(federation: Federation) -> None:
    community = federation.add("community", "community-network")
    clinic = federation.add("clinic")
    with community.node.database.session() as session:
        added = peers.add_peer(community.node, session, clinic.url, clinic.thumbprint, "hello")
        assert added.status == PeerStatus.TRUSTED
        assert added.last_error is None
    assert status_of(federation, "clinic", "community") == PeerStatus.PENDING
    with clinic.node.database.session() as session:
        pending = peers.list_peers(session, PeerStatus.PENDING)
        assert [p.entity_id for p in pending] == [community.url]
        assert pending[0].request_message == "hello"
        peers.accept_peer(clinic.node, session, community.url, community.thumbprint)
    assert status_of(federation, "clinic", "community") == PeerStatus.TRUSTED
    assert status_of(federation, "community", "clinic") == PeerStatus.TRUSTED


def test_wrong_thumbprint_is_refused_on_add_and_accept(federation: Federation) -> None:
    community, clinic = federation.add("community", "community-network"), federation.add("clinic")
    with (
        community.node.database.session() as session,
        pytest.raises(InvalidRequestError, match="thumbprint"),
    ):
        peers.add_peer(community.node, session, clinic.url, community.thumbprint)
    with community.node.database.session() as session:
        assert peers.list_peers(session) == []
        peers.add_peer(community.node, session, clinic.url, clinic.thumbprint)
    with (
        clinic.node.database.session() as session,
        pytest.raises(InvalidRequestError, match="thumbprint"),
    ):
        peers.accept_peer(clinic.node, session, community.url, clinic.thumbprint)
    assert status_of(federation, "clinic", "community") == PeerStatus.PENDING


def test_status_changes_name_what_is_allowed(federation: Federation) -> None:
    community, clinic = federation.add("community", "community-network"), federation.add("clinic")
    federation.peer(community, clinic)
    with clinic.node.database.session() as session:
        peers.change_status(clinic.node, session, community.url, PeerStatus.SUSPENDED)
        with pytest.raises(ConflictError, match="can become: removed, trusted"):
            peers.change_status(clinic.node, session, community.url, PeerStatus.SUSPENDED)
        peers.change_status(clinic.node, session, community.url, PeerStatus.TRUSTED)
