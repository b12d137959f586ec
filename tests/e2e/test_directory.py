"""Two real nodes show each other's services, with live capacity, through the command line only.

The clinic publishes a service, the community network syncs and finds it by text,
language, category and age; the clinic changes its capacity, and after the next
``directory sync`` the community's search shows the change. The clinic finds the
community's service the same way, so the directory works both ways.
"""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import NodeProcess, run_commands, succeeded


def peer(community: NodeProcess, clinic: NodeProcess) -> None:
    """Both administrators confirm the other's thumbprint."""
    community.ok("peer", "add", clinic.url, "--thumbprint", clinic.thumbprint)
    clinic.ok("peer", "accept", community.url, "--thumbprint", community.thumbprint)


def search(node: NodeProcess, *arguments: str) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = node.json("directory", "search", *arguments)["results"]
    return results


def add_service(node: NodeProcess, name: str, *options: str) -> str:
    added = node.json("service", "add", "--name", name, *options)
    return str(added["service"]["id"])


def test_a_capacity_change_shows_in_the_peers_search_after_sync(
    two_nodes: tuple[NodeProcess, NodeProcess],
) -> None:
    community, clinic = two_nodes
    peer(community, clinic)
    drop_in = add_service(
        clinic,
        "Youth sexual health drop-in",
        "--description", "Confidential sexual health care, no appointment needed.",
        "--language", "ar=Arabic", "--language", "en=English",
        "--category", "sexual-health=Sexual health", "--affirming",
        "--minimum-age", "13", "--maximum-age", "25", "--area", "Riverside",
    )  # fmt: skip
    clinic.ok(
        "capacity", "set", drop_in, "--status", "waitlist", "--not-accepting",
        "--wait-days", "14", "--intake-field", "preferred_name", "--intake-field", "phone",
    )  # fmt: skip
    circle = add_service(community, "Peer support circle", "--language", "ar=Arabic")
    community.ok("capacity", "set", circle, "--status", "capacity", "--accepting")

    synced = succeeded(run_commands(community.args("directory", "sync"))[0])
    assert clinic.url in synced

    [found] = search(community, "sexual health", "--language", "Arabic", "--age", "16")
    assert found["service"]["id"] == drop_in
    assert found["peer"]["entity_id"] == clinic.url
    assert found["capacity"]["status"] == "waitlist"
    assert found["capacity"]["accepting_referrals"] is False
    assert found["capacity"]["wait_days"] == 14
    assert found["capacity"]["intake_fields"] == ["preferred_name", "phone"]
    assert found["capacity"]["verified_at"] is not None
    assert found["stale"] is False
    assert search(community, "--category", "sexual-health", "--affirming")[0]["service"]["id"] == (
        drop_in
    )
    assert search(community, "sexual health", "--age", "40") == []
    assert search(community, "--accepting") == []

    clinic.ok("capacity", "set", drop_in, "--status", "capacity", "--accepting", "--wait-days", "2")
    assert search(community, "--accepting") == []  # nothing changes here before a sync
    community.ok("directory", "sync")
    [now_open] = search(community, "--accepting")
    assert now_open["service"]["id"] == drop_in
    assert now_open["capacity"]["status"] == "capacity"
    assert now_open["capacity"]["wait_days"] == 2

    clinic.ok("directory", "sync")
    [circle_found] = search(clinic, "support")
    assert circle_found["service"]["id"] == circle
    assert circle_found["peer"]["entity_id"] == community.url
    assert circle_found["capacity"]["accepting_referrals"] is True
