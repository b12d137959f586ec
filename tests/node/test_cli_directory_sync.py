"""``exchange-node directory sync`` and ``directory peers`` on nodes of a test federation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner, Result

from exchange_node.cli import directory_sync as cli
from exchange_node.cli import main
from exchange_node.db.models import PeerStatus
from exchange_node.node import Node
from exchange_node.services import peers
from tests.node.conftest import Federation, hsds_service

if TYPE_CHECKING:  # imported by name, pytest would try to collect the Test* classes
    from tests.node.conftest import TestClock, TestNode


@pytest.fixture(autouse=True)
def through_the_federation(monkeypatch: pytest.MonkeyPatch, community: TestNode) -> None:
    """The commands run on the community node, whose peers are reached in memory."""

    def open_community(home: Path | None) -> Node:
        return community.node

    monkeypatch.setattr(cli, "open_node", open_community)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["directory", *args])


def test_sync_prints_a_line_per_peer_and_a_summary(
    federation: Federation, community: TestNode, clinic: TestNode, clock: TestClock
) -> None:
    school = federation.add("school", "school")
    federation.peer(community, school)
    clinic.publish(hsds_service("Drop-in"))
    clinic.publish(hsds_service("Counselling"))
    result = run("sync")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert sorted(lines[:2]) == [
        f"{clinic.url}: updated to version 3; holding version 3, 2 services, "
        "synced 2027-01-01 00:00:00Z",
        f"{school.url}: updated to version 1; holding version 1, 0 services, "
        "synced 2027-01-01 00:00:00Z",
    ]
    assert lines[2:] == ["2 peers: 2 updated, 0 unchanged, 0 failed."]
    clock.advance(60)
    again = run("sync").output.splitlines()
    assert again[-1] == "2 peers: 0 updated, 2 unchanged, 0 failed."  # forced: polled at once


def test_sync_reports_a_failed_peer_and_exits_1(
    federation: Federation, community: TestNode, clinic: TestNode, clock: TestClock
) -> None:
    clinic.publish()
    run("sync")
    del federation.transport.apps[clinic.url]
    clock.advance(86_400)
    result = run("sync")
    assert result.exit_code == 1
    first = result.output.splitlines()[0]
    assert first.startswith(f"{clinic.url}: failed: peer_unreachable: ")
    assert first.endswith(
        "holding version 2, 1 services, synced 2027-01-01 00:00:00Z, "
        "stale since 2027-01-02 00:00:00Z"
    )


def test_sync_json_lists_each_peers_outcome(clinic: TestNode) -> None:
    clinic.publish()
    result = run("sync", "--json")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)
    assert (row["entity_id"], row["outcome"], row["version"], row["services"]) == (
        clinic.url,
        "updated",
        2,
        1,
    )
    assert (row["stale"], row["failures"], row["last_error"]) == (False, 0, None)


def test_sync_one_peer(federation: Federation, community: TestNode, clinic: TestNode) -> None:
    school = federation.add("school", "school")
    federation.peer(community, school)
    result = run("sync", "--peer", school.url)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"{school.url}: updated to version 1; holding version 1, 0 services, "
        "synced 2027-01-01 00:00:00Z",
        "1 peer: 1 updated, 0 unchanged, 0 failed.",
    ]


def test_sync_of_a_suspended_peer_is_one_line(community: TestNode, clinic: TestNode) -> None:
    with community.node.database.session() as session:
        peers.change_status(community.node, session, clinic.url, PeerStatus.SUSPENDED)
    result = run("sync", "--peer", clinic.url)
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {clinic.url} is suspended; only trusted peers are synced [conflict]\n"
    )


def test_sync_without_peers_says_so(community: TestNode) -> None:
    result = run("sync")
    assert (result.exit_code, result.output) == (0, "No trusted peers to sync.\n")


def test_peers_shows_what_is_held_of_each_peer(clinic: TestNode, clock: TestClock) -> None:
    assert json.loads(run("peers", "--json").output)[0]["version"] is None
    clinic.publish()
    run("sync")
    clock.advance(86_400)
    (row,) = json.loads(run("peers", "--json").output)
    assert (row["entity_id"], row["version"], row["services"], row["stale"]) == (
        clinic.url,
        2,
        1,
        True,
    )
    table = run("peers").output.splitlines()
    assert table[0].split() == [
        "ENTITY_ID",
        "VERSION",
        "SERVICES",
        "SYNCED_AT",
        "STALE",
        "FAILURES",
        "LAST_ERROR",
        "NEXT_SYNC_AT",
    ]
    assert table[1].startswith(f"{clinic.url}  2 ")
