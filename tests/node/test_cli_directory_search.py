"""``exchange-node directory search``: the readable table, ``--json``, and refusals."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from click.testing import CliRunner, Result

from exchange_node.cli import main
from exchange_node.hsds import affirming_attribute
from tests.node.conftest import TestClock, TestNode
from tests.node.test_directory_search import DAY, language, located, offer, stock


def run(test_node: TestNode, *args: str) -> Result:
    home = str(test_node.node.settings.home)
    return CliRunner().invoke(main, ["directory", "search", *args, "--home", home])


@pytest.fixture
def directory(community: TestNode, clinic: TestNode, clock: TestClock) -> TestNode:
    """The clinic's services, held by the community; on the real clock, which the CLI uses."""
    clock.now = int(time.time())
    stock(
        community,
        clinic.url,
        [
            offer(
                "Youth drop-in",
                languages=[language("Arabic", "ar")],
                attributes=[affirming_attribute(str(uuid.uuid4()))],
                service_at_locations=located(51.5074, -0.1278),
                verified_days_ago=3,
                now=clock.now,
            ),
            offer("استشارة نفسية", status="waitlist", wait_days=14, now=clock.now),
            offer("Food bank", status="no-capacity", accepting=False, now=clock.now),
        ],
    )
    return community


def test_table_shows_peer_capacity_verification_and_staleness(directory: TestNode) -> None:
    result = run(directory)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["PEER", "SERVICE", "CAPACITY", "ACCEPTING", "VERIFIED", "STALE"]
    assert " ".join(lines[1].split()) == "Clinic Youth drop-in capacity yes verified 3 days ago"
    assert "waitlist (wait 14 days)" in lines[2]
    assert "استشارة نفسية" in lines[2]
    assert "never verified" in lines[2]
    assert lines[3].split()[2:7] == ["bank", "no-capacity", "no", "never", "verified"]
    assert lines[-1] == "1-3 of 3 services."


def test_filters_and_pages(directory: TestNode) -> None:
    result = run(directory, "youth", "--language", "Arabic", "--affirming", "--age", "16")
    assert result.exit_code == 0, result.output
    assert "Youth drop-in" in result.output
    assert result.output.splitlines()[-1] == "1-1 of 1 services."
    result = run(directory, "--status", "waitlist", "--status", "no-capacity", "--limit", "1")
    assert "استشارة نفسية" in result.output
    assert result.output.splitlines()[-1] == "1-1 of 2 services. Next page: --offset 1."
    result = run(directory, "--near", "51.5,-0.12", "--radius", "5")
    assert result.output.splitlines()[0].split()[-1] == "DISTANCE"
    assert result.output.splitlines()[1].rstrip().endswith("1.0 km")
    result = run(directory, "--not-accepting", "--kind", "clinic")
    assert [line.split()[1] for line in result.output.splitlines()[1:-1]] == ["Food"]
    assert run(directory, "dentist").output == "(none)\n0 services match.\n"


def test_json_is_the_api_answer(directory: TestNode) -> None:
    result = run(directory, "--json", "--limit", "2")
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert (body["total"], body["limit"], body["offset"]) == (3, 2, 0)
    first = body["results"][0]
    assert first["peer"] == {
        "entity_id": "https://clinic.example",
        "organization": "Clinic",
        "kind": "clinic",
    }
    assert first["service"]["name"] == "Youth drop-in"
    assert first["capacity"]["status"] == "capacity"
    assert first["verified_days_ago"] == 3
    assert first["stale"] is False
    assert "استشارة نفسية" in result.output  # printed as it is, not escaped


def test_stale_services_are_marked(directory: TestNode, clinic: TestNode, clock: TestClock) -> None:
    stock(directory, clinic.url, [offer("Old shelter", now=clock.now)], expires_in=-DAY)
    result = run(directory)
    assert result.output.splitlines()[1].rstrip().endswith("STALE")
    assert "the peer's capacity document has expired" in result.output.splitlines()[-1]


BAD_CRITERIA = [
    (["--age", "-3"], "Error: age: must be from 0 to 200 [invalid_request]"),
    (["--near", "london"], "Error: near must be LAT,LON in decimal degrees"),
    (["--near", "0,0", "--radius", "900"], "Error: radius_km: must be from 0.1 to 500.0"),
    (["***"], "Error: q: has no letters or digits to search for [invalid_request]"),
    (["--status", "open"], "Invalid value for '--status'"),
]


def test_bad_criteria_are_one_line_errors(directory: TestNode) -> None:
    for args, message in BAD_CRITERIA:
        result = run(directory, *args)
        assert result.exit_code in (1, 2), args
        assert message in result.output, args
        assert "Traceback" not in result.output
