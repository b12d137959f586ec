"""Authenticating peer requests (SPEC 7.2 steps 1-6) on ``GET /federation/v1/peer-status``.

Requests are signed here by hand with ``sign_request`` and sent through the Flask
test client with the exact headers and body, so each test can break one thing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import pytest
from werkzeug.test import TestResponse

from exchange_node.db.models import PeerStatus
from exchange_node.protocol.httpsig import sign_request
from exchange_node.protocol.keys import NodeKey, generate_key
from exchange_node.services import peers
from tests.node.conftest import Federation, assert_problem

if TYPE_CHECKING:  # imported by name, pytest would try to collect the Test* classes
    from tests.node.conftest import TestClock, TestNode

PEER_STATUS = "/federation/v1/peer-status"


def signed_headers(
    sender: TestNode,
    url: str,
    *,
    now: int,
    method: str = "GET",
    body: bytes = b"",
    content_type: str | None = None,
    key: NodeKey | None = None,
) -> dict[str, str]:
    headers = {"Accept": "application/json"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    key = key or sender.signing_key
    return headers | sign_request(method, url, headers, body, key=key, now=now)


def send(
    receiver: TestNode,
    headers: Mapping[str, str],
    *,
    path: str = PEER_STATUS,
    method: str = "GET",
    body: bytes = b"",
) -> TestResponse:
    return receiver.client().open(
        path, method=method, headers=dict(headers), data=body, base_url=receiver.url
    )


def peer_status_headers(sender: TestNode, receiver: TestNode, clock: TestClock) -> dict[str, str]:
    return signed_headers(sender, receiver.url + PEER_STATUS, now=clock())


def set_status(holder: TestNode, other: TestNode, status: str) -> None:
    with holder.node.database.session() as session:
        peers.change_status(holder.node, session, other.url, status)


def test_trusted_peer_gets_its_status(
    community: TestNode, clinic: TestNode, clock: TestClock
) -> None:
    response = send(clinic, peer_status_headers(community, clinic, clock))
    assert response.status_code == 200
    assert response.get_json() == {
        "entity_id": community.url,
        "status": "trusted",
        "seen_by": clinic.url,
    }


def test_unsigned_request_is_signature_missing(clinic: TestNode) -> None:
    assert_problem(send(clinic, {"Accept": "application/json"}), 401, "signature_missing")


def test_node_that_never_peered_is_unknown_signer(
    federation: Federation, clinic: TestNode, clock: TestClock
) -> None:
    school = federation.add("school", "school")
    assert_problem(send(clinic, peer_status_headers(school, clinic, clock)), 401, "unknown_signer")


def test_encryption_key_cannot_sign_requests(
    community: TestNode, clinic: TestNode, clock: TestClock
) -> None:
    with community.node.database.session() as session:
        encryption_kid = community.node.ring(session).published_encryption[0].kid
    headers = peer_status_headers(community, clinic, clock)
    headers["Signature-Input"] = headers["Signature-Input"].replace(
        community.thumbprint, encryption_kid
    )
    assert_problem(send(clinic, headers), 401, "unknown_signer")


def test_suspended_peer_is_not_trusted(
    community: TestNode, clinic: TestNode, clock: TestClock
) -> None:
    set_status(clinic, community, PeerStatus.SUSPENDED)
    assert_problem(
        send(clinic, peer_status_headers(community, clinic, clock)), 403, "peer_not_trusted"
    )


def test_removed_peer_with_known_keys_is_not_trusted(
    community: TestNode, clinic: TestNode, clock: TestClock
) -> None:
    """SPEC 7.2 step 5: ``removed`` with keys still known is 403, not 401."""
    set_status(clinic, community, PeerStatus.REMOVED)
    assert_problem(
        send(clinic, peer_status_headers(community, clinic, clock)), 403, "peer_not_trusted"
    )


def test_pending_peer_is_not_trusted(
    federation: Federation, community: TestNode, clock: TestClock
) -> None:
    school = federation.add("school", "school")
    with community.node.database.session() as session:  # school lists community as pending
        peers.add_peer(community.node, session, school.url, school.thumbprint)
    assert_problem(
        send(school, peer_status_headers(community, school, clock)), 403, "peer_not_trusted"
    )


def test_same_request_twice_is_replayed(
    community: TestNode, clinic: TestNode, clock: TestClock
) -> None:
    headers = peer_status_headers(community, clinic, clock)
    assert send(clinic, headers).status_code == 200
    assert_problem(send(clinic, headers), 401, "replayed")


def test_refused_request_does_not_use_up_its_nonce(
    community: TestNode, clinic: TestNode, clock: TestClock
) -> None:
    """The nonce is recorded after the peer-state check, so the same request works later."""
    headers = peer_status_headers(community, clinic, clock)
    set_status(clinic, community, PeerStatus.SUSPENDED)
    assert_problem(send(clinic, headers), 403, "peer_not_trusted")
    set_status(clinic, community, PeerStatus.TRUSTED)
    assert send(clinic, headers).status_code == 200


def test_signature_past_expires_and_skew_is_expired(
    community: TestNode, clinic: TestNode, clock: TestClock
) -> None:
    headers = peer_status_headers(community, clinic, clock)
    limits = clinic.node.settings.limits
    clock.advance(limits.http_signature_window + limits.clock_skew + 1)
    assert_problem(send(clinic, headers), 401, "signature_expired")


def test_signature_at_the_edge_of_the_skew_is_accepted(
    community: TestNode, clinic: TestNode, clock: TestClock
) -> None:
    headers = peer_status_headers(community, clinic, clock)
    limits = clinic.node.settings.limits
    clock.advance(limits.http_signature_window + limits.clock_skew)
    assert send(clinic, headers).status_code == 200


def test_signature_created_in_the_future_is_not_yet_valid(
    community: TestNode, clinic: TestNode, clock: TestClock
) -> None:
    skew = clinic.node.settings.limits.clock_skew
    headers = signed_headers(community, clinic.url + PEER_STATUS, now=clock() + skew + 1)
    assert_problem(send(clinic, headers), 401, "signature_not_yet_valid")


def test_expired_signature_is_refused_before_peer_state(
    community: TestNode, clinic: TestNode, clock: TestClock
) -> None:
    """SPEC 12.4: HTTP signature before peer state."""
    headers = peer_status_headers(community, clinic, clock)
    set_status(clinic, community, PeerStatus.SUSPENDED)
    clock.advance(1_000)
    assert_problem(send(clinic, headers), 401, "signature_expired")


def test_body_not_matching_content_digest_is_digest_mismatch(
    community: TestNode, clinic: TestNode, clock: TestClock
) -> None:
    headers = signed_headers(
        community,
        clinic.url + PEER_STATUS,
        now=clock(),
        body=b'{"status": "trusted"}',
        content_type="application/json",
    )
    response = send(clinic, headers, body=b'{"status": "removed"}')
    assert_problem(response, 401, "digest_mismatch")


def test_missing_content_digest_is_digest_mismatch(
    community: TestNode, clinic: TestNode, clock: TestClock
) -> None:
    headers = peer_status_headers(community, clinic, clock)
    del headers["Content-Digest"]
    assert_problem(send(clinic, headers), 401, "digest_mismatch")


def test_body_on_a_request_signed_without_content_type_is_signature_invalid(
    community: TestNode, clinic: TestNode, clock: TestClock
) -> None:
    headers = peer_status_headers(community, clinic, clock)
    assert_problem(send(clinic, headers, body=b"smuggled"), 401, "signature_invalid")


def test_oversized_body_is_too_large_before_anything_is_parsed(clinic: TestNode) -> None:
    """Garbage signature fields would be ``signature_invalid``; the size check comes first."""
    body = b"x" * (clinic.node.settings.limits.max_body_bytes + 1)
    headers = {"Signature-Input": "not a signature", "Signature": "(", "Content-Type": "text/plain"}
    assert_problem(send(clinic, headers, body=body), 413, "too_large")


def test_oversized_header_is_too_large(
    community: TestNode, clinic: TestNode, clock: TestClock
) -> None:
    headers = peer_status_headers(community, clinic, clock)
    headers["Signature"] += ", padding=:" + "A" * 8_192 + ":"
    assert_problem(send(clinic, headers), 413, "too_large")


@pytest.mark.parametrize(
    "signed_url",
    [
        "https://clinic.example/federation/v1/peer-status?as=admin",
        "https://clinic.example/federation/v1/capacity",
        "https://school.example/federation/v1/peer-status",
        "http://clinic.example/federation/v1/peer-status",
    ],
)
def test_signature_for_another_url_is_signature_invalid(
    community: TestNode, clinic: TestNode, clock: TestClock, signed_url: str
) -> None:
    headers = signed_headers(community, signed_url, now=clock())
    assert_problem(send(clinic, headers), 401, "signature_invalid")


def test_signature_for_another_method_is_signature_invalid(
    community: TestNode, clinic: TestNode, clock: TestClock
) -> None:
    headers = signed_headers(community, clinic.url + PEER_STATUS, now=clock(), method="HEAD")
    assert_problem(send(clinic, headers), 401, "signature_invalid")


def test_key_not_matching_the_keyid_is_signature_invalid(
    community: TestNode, clinic: TestNode, clock: TestClock
) -> None:
    """An attacker names the peer's keyid but signs with a key of its own."""
    forged = signed_headers(
        community, clinic.url + PEER_STATUS, now=clock(), key=generate_key("sig")
    )
    forged["Signature-Input"] = forged["Signature-Input"].replace(
        forged["Signature-Input"].split('keyid="')[1].split('"')[0], community.thumbprint
    )
    assert_problem(send(clinic, forged), 401, "signature_invalid")
