"""``exchange-node service ...`` and ``exchange-node capacity ...`` against a node's home."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner, Result

from exchange_node.cli import main
from exchange_node.db.models import CapacityPublication, Service
from tests.node.conftest import hsds_service
from tests.test_hsds import assert_official

if TYPE_CHECKING:
    from tests.node.conftest import Federation, TestNode


@pytest.fixture
def clinic_node(federation: Federation) -> TestNode:
    return federation.add("clinic")


def run(test_node: TestNode, *args: str, stdin: str | None = None) -> Result:
    home = ["--home", str(test_node.node.settings.home)]
    return CliRunner().invoke(main, [*args, *home], input=stdin)


def ok(test_node: TestNode, *args: str, stdin: str | None = None) -> str:
    result = run(test_node, *args, stdin=stdin)
    assert result.exit_code == 0, result.output
    return result.output


def one_line_error(result: Result, fragment: str, exit_code: int = 1) -> None:
    assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.output
    assert fragment in errors[0]


def services(test_node: TestNode) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(ok(test_node, "service", "list", "--json"))
    return rows


def stored(test_node: TestNode, service_id: str) -> Service:
    with test_node.node.database.session() as session:
        service = session.get_one(Service, service_id)
        session.expunge(service)
        return service


def version(test_node: TestNode) -> int:
    with test_node.node.database.session() as session:
        return session.get_one(CapacityPublication, 1).version


def add_from_options(test_node: TestNode) -> str:
    output = ok(
        test_node,
        *("service", "add", "--name", "Youth drop-in", "--description", "Sexual health"),
        *("--language", "ar=Arabic", "--language", "en", "--minimum-age", "13"),
        *("--maximum-age", "25", "--area", "Leeds", "--category", "sexual-health=Sexual health"),
        *("--affirming", "--email", "clinic@example.org", "--phone", "+44 113 000 0000"),
        *("--location-name", "Main", "--address", "1 Park Row", "--city", "Leeds"),
        *("--region", "West Yorkshire", "--postal-code", "LS1 5AB", "--country", "GB"),
        *("--latitude", "53.8", "--longitude", "-1.55", "--safe-location", "Shelter"),
        *("--safe-phone", "+44 113 000 0001", "--assured-date", "2026-12-01", "--json"),
    )
    shown = json.loads(output)
    return str(shown["service"]["id"])


def test_add_from_options_builds_a_valid_private_record(clinic_node: TestNode) -> None:
    service_id = add_from_options(clinic_node)
    service = stored(clinic_node, service_id)
    assert_official(service.record)
    assert service.public is False
    assert service.capacity_status == "no-capacity"
    record = service.record
    assert record["organization"]["name"] == "Clinic"
    assert [lang["code"] for lang in record["languages"]] == ["ar", "en"]
    physical, safe = (item["location"] for item in record["service_at_locations"])
    assert physical["addresses"][0]["city"] == "Leeds"
    assert safe["location_type"] == "virtual"
    assert "addresses" not in safe
    assert "latitude" not in safe
    assert [row["id"] for row in services(clinic_node)] == [service_id]


def test_edit_changes_only_what_is_given(clinic_node: TestNode) -> None:
    service_id = add_from_options(clinic_node)
    before, start = stored(clinic_node, service_id).record, version(clinic_node)
    ok(clinic_node, "service", "edit", "Youth drop-in", "--status", "inactive", "--public")
    after = stored(clinic_node, service_id)
    assert after.public is True
    assert after.record == {**before, "status": "inactive"}
    assert version(clinic_node) == start + 1
    one_line_error(run(clinic_node, "service", "edit", service_id), "nothing to change", 2)


def test_edit_with_a_file_replaces_the_record_and_keeps_the_id(
    clinic_node: TestNode, tmp_path: Path
) -> None:
    service_id = add_from_options(clinic_node)
    path = tmp_path / "record.json"
    path.write_text(json.dumps({"name": "Renamed", "status": "active"}))
    ok(clinic_node, "service", "edit", service_id, "--file", str(path))
    assert stored(clinic_node, service_id).record == {
        "id": service_id,
        "name": "Renamed",
        "status": "active",
    }
    one_line_error(
        run(clinic_node, "service", "edit", service_id, "--file", str(path), "--name", "X"),
        "--file replaces the whole record",
        2,
    )


def test_add_refuses_bad_input_in_one_line(clinic_node: TestNode, tmp_path: Path) -> None:
    one_line_error(run(clinic_node, "service", "add"), "a service needs a name")
    one_line_error(
        run(clinic_node, "service", "add", "--name", "A", "--language", "Arabic language"),
        "is not an ISO 639 code",
    )
    one_line_error(
        run(clinic_node, "service", "add", "--name", "A", "--address", "1 Park Row"),
        "an address needs city, state_province, postal_code, country",
    )
    one_line_error(
        run(clinic_node, "service", "add", "--name", "A", "--safe-location", "Shelter"),
        "needs a contact route",
    )
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(hsds_service("A", email="nobody")))
    one_line_error(run(clinic_node, "service", "add", "--file", str(path)), "/email")
    assert services(clinic_node) == []


def test_capacity_set_verify_and_list(clinic_node: TestNode) -> None:
    service_id = add_from_options(clinic_node)
    ok(
        clinic_node,
        *("capacity", "set", service_id, "--status", "waitlist", "--accepting"),
        *("--wait-days", "7", "--notes", "Call first", "--intake-field", "given_name"),
        *("--intake-field", "phone", "--available", "2", "--maximum", "10", "--unit", "places"),
    )
    service = stored(clinic_node, service_id)
    assert (service.capacity_status, service.accepting_referrals) == ("waitlist", True)
    assert (service.wait_days, service.notes) == (7, "Call first")
    assert service.intake_fields == ["given_name", "phone"]
    assert service.verified_at is not None  # a person set it: verified
    assert service.record["capacities"][0]["available"] == 2
    ok(clinic_node, "capacity", "set", service_id, "--no-wait-days", "--not-verified")
    again = stored(clinic_node, service_id)
    assert again.wait_days is None
    assert again.intake_fields == ["given_name", "phone"]
    ok(clinic_node, "capacity", "verify", service_id)
    rows = json.loads(ok(clinic_node, "capacity", "list", "--json"))
    assert [(r["capacity"], r["accepting"]) for r in rows] == [("waitlist", "yes")]
    one_line_error(
        run(clinic_node, "capacity", "set", service_id, "--intake-field", "shoe_size"),
        "'shoe_size' is not one of",
        2,
    )
    one_line_error(
        run(clinic_node, "capacity", "set", service_id, "--available", "3"),
        "need --available and --unit",
        2,
    )
    one_line_error(run(clinic_node, "capacity", "verify", "Nothing"), "no service 'Nothing'")


def test_import_from_stdin_then_export(clinic_node: TestNode, tmp_path: Path) -> None:
    records = [hsds_service("Food"), hsds_service("Legal advice", email="law@example.org")]
    output = ok(clinic_node, "service", "import", "-", stdin=json.dumps(records))
    assert "2 services added, 0 updated." in output
    renamed = [{**records[0], "name": "Food bank"}]
    assert "0 services added, 1 updated." in ok(
        clinic_node, "service", "import", "-", stdin=json.dumps(renamed)
    )
    one_line_error(
        run(clinic_node, "service", "import", "-", stdin=json.dumps([{"name": "No status"}])),
        "nothing was imported",
    )
    one_line_error(run(clinic_node, "service", "import", "-", stdin="{not json"), "not JSON")
    target = tmp_path / "export.json"
    ok(clinic_node, "service", "export", "--output", str(target))
    exported = json.loads(target.read_text())
    assert [r["name"] for r in exported] == ["Food bank", "Legal advice"]
    for record in exported:
        assert_official(record)
    assert json.loads(ok(clinic_node, "service", "export")) == exported


def test_show_and_remove(clinic_node: TestNode) -> None:
    service_id = add_from_options(clinic_node)
    shown = json.loads(ok(clinic_node, "service", "show", service_id, "--json"))
    assert shown["capacity"]["status"] == "no-capacity"
    assert shown["service"]["id"] == service_id
    assert "Youth drop-in" in ok(clinic_node, "service", "show", service_id)
    result = run(clinic_node, "service", "remove", service_id, stdin="n\n")
    assert result.exit_code == 1
    assert len(services(clinic_node)) == 1
    ok(clinic_node, "service", "remove", service_id, "--yes")
    assert services(clinic_node) == []
    one_line_error(run(clinic_node, "service", "show", service_id), "no service")
