"""Two real nodes on 127.0.0.1, administered through the command line only.

The community network adds the clinic by thumbprint (a wrong one is refused),
the clinic accepts it, and the community's signed requests to the clinic's
``peer-status`` endpoint are accepted, refused once suspended, and accepted
again when resumed. Then the community rotates its keys and the clinic's worker
follows with no administrator: the new key is accepted before and after it
starts signing, and the retired one is refused.

Signed requests are made in the test process with the community's own key
file and database (what its node would send), so each refusal shows its code.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Mapping

import pytest
import requests

from exchange_node.node import Node
from exchange_node.protocol.httpsig import sign_request
from exchange_node.protocol.keys import NodeKey
from exchange_node.settings import load_settings
from tests.e2e.conftest import NodeProcess, run_commands, succeeded, wait_for

PEER_STATUS = "/federation/v1/peer-status"
#: Bound on waiting for the clinic's worker (a round every second) or the key overlap (2 s).
FOLLOW_SECONDS = 10.0


@pytest.fixture
def community_node(two_nodes: tuple[NodeProcess, NodeProcess]) -> Iterator[Node]:
    """The community node opened in this process, to sign with its keys."""
    node = Node.open(load_settings(two_nodes[0].home, environ={}))
    yield node
    node.database.dispose()


def active_signing_key(node: Node) -> NodeKey:
    with node.database.session() as session:
        return node.ring(session).signing_key


def signed_headers(url: str, key: NodeKey) -> dict[str, str]:
    """Headers of a GET of ``url`` signed now by ``key``, with a fresh nonce."""
    headers = {"Accept": "application/json"}
    return headers | sign_request("GET", url, headers, b"", key=key, now=int(time.time()))


def get(http: requests.Session, url: str, headers: Mapping[str, str]) -> requests.Response:
    return http.get(url, headers=dict(headers), timeout=5)


def problem_code(response: requests.Response) -> str:
    assert response.headers["Content-Type"].startswith("application/problem+json")
    return str(response.json()["code"])


def statuses_in(listing: str) -> dict[str, str]:
    """``peer list --json`` output as {entity_id: status}."""
    return {row["entity_id"]: row["status"] for row in json.loads(listing)}


def peer_through_the_command_line(community: NodeProcess, clinic: NodeProcess) -> None:
    """A wrong thumbprint is refused; add; the clinic sees the request and accepts it."""
    refused = community.run("peer", "add", clinic.url, "--thumbprint", community.thumbprint)
    assert refused.returncode == 1
    assert "Traceback" not in refused.stdout + refused.stderr
    assert len(refused.stderr.splitlines()) == 1, refused.stderr
    assert refused.stderr.startswith(f"Error: {clinic.url} is not signed by thumbprint ")
    assert refused.stderr.rstrip().endswith("[invalid_request]")

    added = community.ok("peer", "add", clinic.url, "--thumbprint", clinic.thumbprint)
    assert f"{clinic.url} (Clinic) is now trusted." in added
    assert "A peering request was sent" in added

    listed, requested = run_commands(
        community.args("peer", "list", "--json"), clinic.args("peer", "requests", "--json")
    )
    assert statuses_in(succeeded(listed)) == {clinic.url: "trusted"}
    [request] = json.loads(succeeded(requested))
    assert request["entity_id"] == community.url
    assert request["organization"] == "Community"
    assert request["status"] == "pending"
    assert request["thumbprints"] == community.thumbprint

    accepted = clinic.ok("peer", "accept", community.url, "--thumbprint", community.thumbprint)
    assert f"{community.url} (Community) is now trusted." in accepted
    community_view, clinic_view = run_commands(
        community.args("peer", "list", "--json"), clinic.args("peer", "list", "--json")
    )
    assert statuses_in(succeeded(community_view)) == {clinic.url: "trusted"}
    assert statuses_in(succeeded(clinic_view)) == {community.url: "trusted"}


def check_signed_requests(
    http: requests.Session, community: NodeProcess, community_node: Node, clinic: NodeProcess
) -> None:
    """Accepted once, a replay refused, refused while suspended, accepted when resumed."""
    url = clinic.url + PEER_STATUS
    headers = signed_headers(url, active_signing_key(community_node))
    answer = get(http, url, headers)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"entity_id": community.url, "status": "trusted", "seen_by": clinic.url}
    replayed = get(http, url, headers)
    assert (replayed.status_code, problem_code(replayed)) == (401, "replayed")
    unsigned = get(http, url, {"Accept": "application/json"})
    assert (unsigned.status_code, problem_code(unsigned)) == (401, "signature_missing")

    suspended = clinic.ok("peer", "suspend", community.url)
    assert f"{community.url} is now suspended." in suspended
    refused = get(http, url, signed_headers(url, active_signing_key(community_node)))
    assert (refused.status_code, problem_code(refused)) == (403, "peer_not_trusted")

    resumed_output = clinic.ok("peer", "resume", community.url)
    assert f"{community.url} is now trusted." in resumed_output
    resumed = get(http, url, signed_headers(url, active_signing_key(community_node)))
    assert resumed.status_code == 200, resumed.text


def rotate_and_check_the_peer_follows(
    http: requests.Session, community: NodeProcess, community_node: Node, clinic: NodeProcess
) -> None:
    """``keys rotate``; the clinic's worker learns the new key, then forgets the retired one."""
    url = clinic.url + PEER_STATUS
    old = community_node.keystore.load()[community.thumbprint]
    rotated = community.ok("keys", "rotate")
    found = re.search(r"New signing key (\S+) is published now", rotated)
    assert found, rotated
    new = community_node.keystore.load(force=True)[found.group(1)]

    def accepted(key: NodeKey) -> bool:
        answer = get(http, url, signed_headers(url, key))
        assert answer.status_code in (200, 401), answer.text
        return answer.status_code == 200

    # The clinic's worker refreshes the community's entity configuration, signed by the
    # old key and listing the pre-published new one, and trusts the new key from then on.
    wait_for(lambda: accepted(new), FOLLOW_SECONDS, "the clinic to learn the new key")
    wait_for(
        lambda: active_signing_key(community_node).kid == new.kid,
        FOLLOW_SECONDS,
        "the overlap to end and the new key to sign",
    )
    answer = get(http, url, signed_headers(url, active_signing_key(community_node)))
    assert answer.status_code == 200, answer.text

    keys = {row["kid"]: row for row in community.json("keys", "show") if row["use"] == "sig"}
    assert keys[new.kid]["state"] == "active"
    assert keys[old.kid]["state"] in ("retiring", "retired")

    # Retired one overlap after the switch; the clinic's next refresh drops it.
    def old_key_refused() -> bool:
        answer = get(http, url, signed_headers(url, old))
        if answer.status_code == 200:
            return False
        assert (answer.status_code, problem_code(answer)) == (401, "unknown_signer")
        return True

    wait_for(old_key_refused, FOLLOW_SECONDS, "the clinic to forget the retired key")
    assert accepted(new)


def test_two_nodes_peer_and_follow_a_key_rotation(
    two_nodes: tuple[NodeProcess, NodeProcess], community_node: Node, http: requests.Session
) -> None:
    community, clinic = two_nodes
    peer_through_the_command_line(community, clinic)
    check_signed_requests(http, community, community_node, clinic)
    rotate_and_check_the_peer_follows(http, community, community_node, clinic)
