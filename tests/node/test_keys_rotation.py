"""Key rotation (SPEC 3.7): a peer follows a rotation that chains, and only that one.

The community rotates with the fixture's overlap of one hour; the clinic follows by
refreshing the community's entity configuration, with no administrator involved.
States are read through ``exchange-node keys show --json`` on the test clock.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner
from sqlalchemy import delete

from exchange_node import node as node_module
from exchange_node.cli import keys as keys_command
from exchange_node.cli import main
from exchange_node.db.models import OwnKey
from exchange_node.errors import ConfigurationError, PeerRefusedError
from exchange_node.keystore import KeyRing, KeyStore
from exchange_node.protocol.errors import UntrustedKeyError
from exchange_node.protocol.keys import NodeKey
from exchange_node.services import peers

if TYPE_CHECKING:  # imported by name, pytest would try to collect the Test* classes
    from tests.node.conftest import TestClock, TestNode

OVERLAP = 3_600
PEER_STATUS = "/federation/v1/peer-status"


def rotate(test_node: TestNode) -> str:
    """Rotate ``test_node``'s keys; the new signing key's thumbprint."""
    node = test_node.node
    assert node.settings.key_overlap_seconds == OVERLAP
    with node.database.session() as session:
        new = node.keystore.rotate(session, node.now(), OVERLAP)
    return next(key.kid for key in new if key.use == "sig")


def refresh(holder: TestNode, other: TestNode) -> list[str]:
    """``holder`` refreshes ``other``; the signing keys it trusts for it afterwards."""
    with holder.node.database.session() as session:
        peer = peers.refresh_peer(holder.node, session, peers.get_peer(session, other.url))
        return [key.kid for key in peer.keys if key.use == "sig"]


def failed_refresh(holder: TestNode, other: TestNode) -> Exception:
    """``holder`` fails to refresh ``other``: the error, recorded on the peer as the worker does."""
    with holder.node.database.session() as session:
        try:
            peers.refresh_peer(holder.node, session, peers.get_peer(session, other.url))
        except Exception as e:
            return e
    raise AssertionError("the refresh succeeded")


def trusted_keys(holder: TestNode, other: TestNode) -> list[str]:
    with holder.node.database.session() as session:
        peer = peers.get_peer(session, other.url)
        return [key.kid for key in peer.keys if key.use == "sig"]


def signing_states(test_node: TestNode, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """``keys show --json`` for ``test_node`` (on the test clock), signing keys only."""
    monkeypatch.setattr(keys_command, "open_node", lambda home: test_node.node)
    result = CliRunner().invoke(main, ["keys", "show", "--json"])
    assert result.exit_code == 0, result.output
    return {row["kid"]: row["state"] for row in json.loads(result.output) if row["use"] == "sig"}


def peer_status(sender: TestNode, receiver: TestNode, key: NodeKey | None = None) -> int:
    """Ask ``receiver`` how it sees ``sender``, signed with ``sender``'s current key."""
    node = sender.node
    with node.database.session() as session:
        key = key or node.ring(session).signing_key
    response = node.client.signed_request(
        "GET", receiver.url + PEER_STATUS, key=key, now=node.now()
    )
    return response.status


def test_rotation_publishes_the_next_key_before_it_signs(
    community: TestNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = community.thumbprint
    new = rotate(community)
    assert community.thumbprint == old
    assert signing_states(community, monkeypatch) == {old: "active", new: "next"}
    with community.node.database.session() as session:
        published = [key.kid for key in community.node.ring(session).published_signing]
    assert published == [old, new]


def test_peer_follows_a_rotation_without_an_administrator(
    community: TestNode, clinic: TestNode, clock: TestClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = community.thumbprint
    new = rotate(community)
    assert refresh(clinic, community) == [old, new]

    clock.advance(OVERLAP)
    assert community.thumbprint == new
    assert signing_states(community, monkeypatch) == {old: "retiring", new: "active"}
    assert peer_status(community, clinic) == 200
    assert refresh(clinic, community) == [new, old]

    clock.advance(OVERLAP)
    assert signing_states(community, monkeypatch) == {old: "retired", new: "active"}
    assert refresh(clinic, community) == [new]
    assert peer_status(community, clinic) == 200


def test_retired_key_no_longer_signs_for_the_peer(
    community: TestNode, clinic: TestNode, clock: TestClock
) -> None:
    with community.node.database.session() as session:
        old_key = community.node.ring(session).signing_key
    rotate(community)
    refresh(clinic, community)
    clock.advance(2 * OVERLAP)
    refresh(clinic, community)
    with pytest.raises(PeerRefusedError) as refused:
        peer_status(community, clinic, key=old_key)
    assert (refused.value.peer_status, refused.value.peer_code) == (401, "unknown_signer")


def test_peer_that_missed_the_announcement_needs_an_administrator(
    community: TestNode, clinic: TestNode, clock: TestClock
) -> None:
    """SPEC 3.7: a verifier that never saw the next key refuses the switched document."""
    old = community.thumbprint
    rotate(community)
    clock.advance(OVERLAP)
    assert isinstance(failed_refresh(clinic, community), UntrustedKeyError)
    assert trusted_keys(clinic, community) == [old]


def test_rotation_that_does_not_chain_is_refused_and_the_old_keys_kept(
    community: TestNode, clinic: TestNode
) -> None:
    old = community.thumbprint
    node = community.node
    with node.database.session() as session:  # a brand-new key file, never announced
        session.execute(delete(OwnKey))
        node.keystore.path.unlink()
        node.keystore.create(session, node.now())
    assert community.thumbprint != old

    assert isinstance(failed_refresh(clinic, community), UntrustedKeyError)
    with clinic.node.database.session() as session:
        peer = peers.get_peer(session, community.url)
        assert peer.last_error is not None
        assert peer.last_error.startswith("untrusted_key:")
        assert peer.refresh_failures == 1
        assert [key.kid for key in peer.keys if key.use == "sig"] == [old]
    with pytest.raises(PeerRefusedError) as refused:
        peer_status(community, clinic)
    assert refused.value.peer_code == "unknown_signer"


def test_administrator_re_pins_a_key_that_does_not_chain(
    community: TestNode, clinic: TestNode
) -> None:
    node = community.node
    with node.database.session() as session:
        session.execute(delete(OwnKey))
        node.keystore.path.unlink()
        node.keystore.create(session, node.now())
    with clinic.node.database.session() as session:
        peer = peers.add_peer(clinic.node, session, community.url, community.thumbprint)
        assert (peer.status, peer.pinned_thumbprint) == ("trusted", community.thumbprint)
    assert trusted_keys(clinic, community) == [community.thumbprint]
    assert peer_status(community, clinic) == 200


def test_second_rotation_during_an_unfinished_one_is_refused(
    community: TestNode, clock: TestClock
) -> None:
    rotate(community)
    clock.advance(OVERLAP - 1)
    with pytest.raises(ConfigurationError, match="already under way"):
        rotate(community)
    clock.advance(1)
    rotate(community)  # the first one has switched: the next may start


def test_rotation_also_moves_the_encryption_key(
    community: TestNode, clinic: TestNode, clock: TestClock
) -> None:
    with community.node.database.session() as session:
        old = community.node.ring(session).published_encryption[0].kid
    rotate(community)
    refresh(clinic, community)
    clock.advance(OVERLAP)
    refresh(clinic, community)
    with clinic.node.database.session() as session:
        peer = peers.get_peer(session, community.url)
        encryption = [key.kid for key in peer.keys if key.use == "enc"]
    assert len(encryption) == 2
    assert encryption[1] == old  # senders encrypt to the first, now the new key


# --- the node's cached ring (Node.ring) -------------------------------------------------


def ring_reads(test_node: TestNode, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the reads of the ring from the database, from now on (one item per read)."""
    keystore, reads = test_node.node.keystore, []
    real = keystore.ring_span

    def counted(*args: Any, **kwargs: Any) -> tuple[KeyRing, int, int | None]:
        reads.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(keystore, "ring_span", counted)
    return reads


def ring(test_node: TestNode) -> KeyRing:
    with test_node.node.database.session() as session:
        return test_node.node.ring(session)


def test_ring_is_read_once_while_nothing_changes(
    community: TestNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = ring_reads(community, monkeypatch)
    first = ring(community)
    assert ring(community) is first
    assert len(reads) == 1


def test_cached_ring_switches_keys_on_time_on_the_test_clock(
    community: TestNode, clock: TestClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = community.thumbprint
    new = rotate(community)  # in this process: the cached ring is dropped at once
    assert [key.kid for key in ring(community).published_signing] == [old, new]
    reads = ring_reads(community, monkeypatch)
    clock.advance(OVERLAP - 1)
    assert (community.thumbprint, len(reads)) == (old, 0)
    clock.advance(1)
    assert (community.thumbprint, len(reads)) == (new, 1)
    clock.advance(OVERLAP)  # the old key retires
    assert [key.kid for key in ring(community).published_signing] == [new]


def test_rotation_by_another_process_drops_the_cached_ring(community: TestNode) -> None:
    """Another process (the CLI) rotates: the key file it rewrote tells the ring is stale."""
    node = community.node
    old = community.thumbprint
    other = KeyStore(node.keystore.path, node.settings.key_passphrase)
    with node.database.session() as session:
        new = other.rotate(session, node.now(), OVERLAP)[0].kid
    assert [key.kid for key in ring(community).published_signing] == [old, new]


def test_cached_ring_is_read_again_after_a_few_seconds(
    community: TestNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even when neither the clock's span nor the key file tells it changed."""
    seconds = [1000.0]
    monkeypatch.setattr(node_module.time, "monotonic", lambda: seconds[0])
    reads = ring_reads(community, monkeypatch)
    ring(community)
    seconds[0] += node_module.RING_CACHE_SECONDS - 0.1
    ring(community)
    assert len(reads) == 1
    seconds[0] += 0.2
    ring(community)
    assert len(reads) == 2
