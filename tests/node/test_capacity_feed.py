"""``GET /federation/v1/capacity`` (SPEC 4.1): served to trusted peers only, with ETag and 304.

The community polls the clinic. Requests are signed by hand with ``sign_request`` and
sent through the clinic's Flask test client, so each test can change one header; one
test goes through the community's federation client and the in-memory transport.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from werkzeug.test import TestResponse

from exchange_node.db.models import PeerStatus
from exchange_node.protocol.capacity import CAPACITY_MEDIA_TYPE, verify_capacity_document
from exchange_node.protocol.entity import CAPACITY_PATH
from exchange_node.protocol.httpsig import sign_request
from exchange_node.services import peers, publication
from tests.node.conftest import Federation, assert_problem

if TYPE_CHECKING:  # imported by name, pytest would try to collect the Test* classes
    from tests.node.conftest import TestNode


def poll(sender: TestNode, receiver: TestNode, if_none_match: str | None = None) -> TestResponse:
    """``sender`` asks ``receiver`` for its capacity document, signed with its current key."""
    headers = {"Accept": CAPACITY_MEDIA_TYPE}
    headers |= sign_request(
        "GET",
        receiver.url + CAPACITY_PATH,
        headers,
        b"",
        key=sender.signing_key,
        now=sender.node.now(),
    )
    if if_none_match is not None:
        headers["If-None-Match"] = if_none_match
    return receiver.client().get(CAPACITY_PATH, headers=headers, base_url=receiver.url)


def current_etag(test_node: TestNode) -> str:
    with test_node.node.database.session() as session:
        return publication.current_document(test_node.node, session).etag


def test_trusted_peer_gets_the_signed_document(community: TestNode, clinic: TestNode) -> None:
    service_id = clinic.publish()
    response = poll(community, clinic)

    assert response.status_code == 200
    assert response.mimetype == CAPACITY_MEDIA_TYPE
    token = response.get_data(as_text=True)
    assert response.headers["ETag"] == publication.entity_tag(token)
    assert response.headers["Cache-Control"] == "private, no-cache"
    document = verify_capacity_document(
        token, issuer=clinic.url, issuer_keys=[clinic.signing_key.public()], now=clinic.node.now()
    )
    assert [entry.service_id for entry in document.services] == [service_id]


def test_federation_client_reads_the_feed(community: TestNode, clinic: TestNode) -> None:
    clinic.publish()
    response = community.node.client.signed_request(
        "GET",
        clinic.url + CAPACITY_PATH,
        key=community.signing_key,
        now=community.node.now(),
        accept=CAPACITY_MEDIA_TYPE,
    )
    assert response.status == 200
    assert response.body.decode("ascii").count(".") == 2


def test_unsigned_request_is_refused(clinic: TestNode) -> None:
    response = clinic.client().get(CAPACITY_PATH, base_url=clinic.url)
    assert_problem(response, 401, "signature_missing")


def test_node_that_never_peered_is_refused(federation: Federation, clinic: TestNode) -> None:
    school = federation.add("school", "school")
    assert_problem(poll(school, clinic), 401, "unknown_signer")


@pytest.mark.parametrize("status", [PeerStatus.SUSPENDED, PeerStatus.REMOVED])
def test_peer_no_longer_trusted_is_refused(
    community: TestNode, clinic: TestNode, status: str
) -> None:
    clinic.publish()
    with clinic.node.database.session() as session:
        peers.change_status(clinic.node, session, community.url, status)
    response = poll(community, clinic)
    assert_problem(response, 403, "peer_not_trusted")
    assert "ETag" not in response.headers


@pytest.mark.parametrize(
    "header",
    [
        "{etag}",
        "W/{etag}",
        '"some-older-tag", {etag}',
        "*",
    ],
)
def test_matching_if_none_match_is_not_modified(
    community: TestNode, clinic: TestNode, header: str
) -> None:
    clinic.publish()
    etag = current_etag(clinic)
    response = poll(community, clinic, if_none_match=header.format(etag=etag))

    assert response.status_code == 304
    assert response.headers["ETag"] == etag
    assert response.headers["Cache-Control"] == "private, no-cache"
    assert response.get_data() == b""


@pytest.mark.parametrize("header", ['"some-older-tag"', "", "not-a-tag", 'W/"x", "y"'])
def test_other_if_none_match_gets_the_document(
    community: TestNode, clinic: TestNode, header: str
) -> None:
    clinic.publish()
    response = poll(community, clinic, if_none_match=header)
    assert response.status_code == 200
    assert response.headers["ETag"] == publication.entity_tag(response.get_data(as_text=True))


def test_change_makes_the_held_etag_stale(community: TestNode, clinic: TestNode) -> None:
    clinic.publish()
    held = poll(community, clinic).headers["ETag"]
    assert poll(community, clinic, if_none_match=held).status_code == 304

    clinic.publish()
    response = poll(community, clinic, if_none_match=held)
    assert response.status_code == 200
    assert response.headers["ETag"] != held
    assert poll(community, clinic, if_none_match=response.headers["ETag"]).status_code == 304
