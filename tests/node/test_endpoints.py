"""The HTTP surface: the peering-request endpoint (SPEC 8.3), health, and problem answers."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from werkzeug.test import TestResponse

from exchange_node.db import Database
from exchange_node.db.models import Peer, PeerStatus
from exchange_node.protocol.entity import ENTITY_CONFIGURATION_MEDIA_TYPE, WELL_KNOWN_PATH
from exchange_node.protocol.httpsig import sign_request
from exchange_node.protocol.keys import NodeKey, generate_key
from exchange_node.protocol.statements import PEERING_REQUEST_MEDIA_TYPE, sign_peering_request
from exchange_node.services import peers
from tests.node.conftest import Federation, assert_problem

if TYPE_CHECKING:  # imported by name, pytest would try to collect the Test* classes
    from tests.node.conftest import TestNode

PEERING_REQUESTS = "/federation/v1/peering-requests"


def peering_request(
    sender: TestNode,
    receiver: TestNode,
    *,
    issuer: str | None = None,
    http_key: NodeKey | None = None,
    message: str = "",
) -> tuple[dict[str, str], bytes]:
    """Headers and body of a peering request from ``sender``, signed as ``send_peering_request``
    does unless told otherwise."""
    key, now = sender.signing_key, sender.node.now()
    token = sign_peering_request(
        issuer=issuer or sender.url,
        audience=receiver.url,
        signing_key=key,
        now=now,
        message=message,
    )
    body = token.encode("ascii")
    headers = {"Accept": "application/json", "Content-Type": PEERING_REQUEST_MEDIA_TYPE}
    url = receiver.url + PEERING_REQUESTS
    headers |= sign_request("POST", url, headers, body, key=http_key or key, now=now)
    return headers, body


def post(receiver: TestNode, headers: dict[str, str], body: bytes) -> TestResponse:
    return receiver.client().post(
        PEERING_REQUESTS, headers=headers, data=body, base_url=receiver.url
    )


def peer_record(holder: TestNode, other: TestNode) -> Peer | None:
    with holder.node.database.session() as session:
        found = [p for p in peers.list_peers(session) if p.entity_id == other.url]
        for peer in found:
            session.refresh(peer, ["keys"])  # loaded now, read after the session ends
        return found[0] if found else None


@pytest.fixture
def clinic(federation: Federation) -> TestNode:
    """Here the clinic starts unpeered: the tests build the relation themselves."""
    return federation.add("clinic")


# --- Peering requests -----------------------------------------------------------------


def test_peering_request_from_a_new_node_is_pending(community: TestNode, clinic: TestNode) -> None:
    response = post(clinic, *peering_request(community, clinic, message="Shall we?"))
    assert response.status_code == 202
    assert response.get_json() == {"entity_id": clinic.url, "status": "pending"}
    peer = peer_record(clinic, community)
    assert peer is not None
    assert (peer.status, peer.pinned_thumbprint) == (PeerStatus.PENDING, None)
    assert (peer.requested_by_peer, peer.request_message) == (True, "Shall we?")
    assert [key.kid for key in peer.keys if key.use == "sig"] == [community.thumbprint]


def test_peering_request_with_wrong_content_type_is_malformed(
    community: TestNode, clinic: TestNode
) -> None:
    headers, body = peering_request(community, clinic)
    headers["Content-Type"] = "application/jwt"
    assert_problem(post(clinic, headers, body), 400, "malformed")
    assert peer_record(clinic, community) is None


def test_peering_request_signed_by_a_key_the_requester_does_not_publish_is_refused(
    community: TestNode, clinic: TestNode
) -> None:
    headers, body = peering_request(community, clinic, http_key=generate_key("sig"))
    assert_problem(post(clinic, headers, body), 401, "unknown_signer")
    assert peer_record(clinic, community) is None


def test_peering_request_naming_this_node_as_issuer_is_refused(
    community: TestNode, clinic: TestNode
) -> None:
    headers, body = peering_request(community, clinic, issuer=clinic.url)
    response = post(clinic, headers, body)
    assert_problem(response, 400, "invalid_request")
    assert "own URL" in response.get_json()["detail"]
    with clinic.node.database.session() as session:
        assert peers.list_peers(session) == []


def test_replayed_peering_request_is_refused(community: TestNode, clinic: TestNode) -> None:
    headers, body = peering_request(community, clinic)
    assert post(clinic, headers, body).status_code == 202
    assert_problem(post(clinic, headers, body), 401, "replayed")


def test_peering_request_body_not_matching_its_digest_is_refused(
    community: TestNode, clinic: TestNode
) -> None:
    headers, _ = peering_request(community, clinic, message="first")
    _, other_body = peering_request(community, clinic, message="second")
    assert_problem(post(clinic, headers, other_body), 401, "digest_mismatch")
    assert peer_record(clinic, community) is None


def test_oversized_peering_request_is_too_large(clinic: TestNode) -> None:
    body = b"e" * (clinic.node.settings.limits.max_body_bytes + 1)
    response = post(clinic, {"Content-Type": PEERING_REQUEST_MEDIA_TYPE}, body)
    assert_problem(response, 413, "too_large")


def test_peering_request_from_a_trusted_peer_does_not_downgrade_it(
    federation: Federation, community: TestNode, clinic: TestNode
) -> None:
    federation.peer(community, clinic)
    response = post(clinic, *peering_request(community, clinic))
    assert (response.status_code, response.get_json()["status"]) == (202, "trusted")
    peer = peer_record(clinic, community)
    assert peer is not None
    assert (peer.status, peer.pinned_thumbprint) == (PeerStatus.TRUSTED, community.thumbprint)


def test_peering_request_from_a_suspended_peer_keeps_it_suspended(
    federation: Federation, community: TestNode, clinic: TestNode
) -> None:
    federation.peer(community, clinic)
    with clinic.node.database.session() as session:
        peers.change_status(clinic.node, session, community.url, PeerStatus.SUSPENDED)
    response = post(clinic, *peering_request(community, clinic))
    assert (response.status_code, response.get_json()["status"]) == (202, "suspended")


def test_peering_request_from_a_removed_peer_leaves_it_removed(
    federation: Federation, community: TestNode, clinic: TestNode
) -> None:
    # A declined node cannot put itself back in the queue; an administrator can re-add it.
    federation.peer(community, clinic)
    with clinic.node.database.session() as session:
        peers.change_status(clinic.node, session, community.url, PeerStatus.REMOVED)
    response = post(clinic, *peering_request(community, clinic))
    assert (response.status_code, response.get_json()["status"]) == (202, "removed")
    peer = peer_record(clinic, community)
    assert peer is not None
    assert peer.status == PeerStatus.REMOVED
    with clinic.node.database.session() as session:
        readded = peers.add_peer(clinic.node, session, community.url, community.thumbprint)
        assert readded.status == PeerStatus.TRUSTED


# --- Identity, health and problems ----------------------------------------------------


def test_entity_configuration_is_public(clinic: TestNode) -> None:
    response = clinic.client().get(WELL_KNOWN_PATH)
    assert response.status_code == 200
    assert response.mimetype == ENTITY_CONFIGURATION_MEDIA_TYPE
    assert response.get_data(as_text=True).count(".") == 2


def test_healthz_answers(clinic: TestNode) -> None:
    response = clinic.client().get("/healthz")
    assert (response.status_code, response.get_json()) == (200, {"status": "ok"})


def test_readyz_answers_when_storage_and_keys_work(clinic: TestNode) -> None:
    response = clinic.client().get("/readyz")
    assert (response.status_code, response.get_json()) == (200, {"status": "ready"})


def test_readyz_is_storage_unavailable_when_the_database_is_gone(
    clinic: TestNode, database_kind: str
) -> None:
    node = clinic.node
    node.database.dispose()
    if database_kind == "sqlite":  # the file becomes a directory: it cannot be opened
        path = Path(node.database.url.removeprefix("sqlite:///"))
        for leftover in (path, *path.parent.glob(path.name + "-*")):
            leftover.unlink()
        path.mkdir()
    else:  # nothing listens on port 1
        node.database = Database("postgresql://postgres@127.0.0.1:1/gone")
    assert_problem(clinic.client().get("/readyz"), 503, "storage_unavailable")


def test_unknown_path_is_not_found_problem(clinic: TestNode) -> None:
    assert_problem(clinic.client().get("/federation/v1/nothing-here"), 404, "not_found")


def test_wrong_method_is_method_not_allowed_problem(clinic: TestNode) -> None:
    response = clinic.client().delete("/federation/v1/peer-status")
    assert_problem(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]


def test_problems_are_never_cached(clinic: TestNode) -> None:
    """SPEC 12.1: every error response carries ``Cache-Control: no-store``."""
    response = clinic.client().get("/federation/v1/peer-status")
    assert_problem(response, 401, "signature_missing")
    assert response.headers["Cache-Control"] == "no-store"
