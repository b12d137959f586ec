"""``exchange-node referral ...`` end to end, on nodes of a test federation."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from exchange_node.cli import main
from exchange_node.cli import referrals as cli
from exchange_node.db.models import AuditEntry
from exchange_node.protocol.messages import Referral as ReferralBody
from tests.node.test_referrals_support import (
    CONTACT_NOTES,
    GIVEN_NAME,
    PHONE,
    list_service,
    open_at,
    outbox_rows,
    receive,
    service_id,
)

if TYPE_CHECKING:
    from tests.node.conftest import TestNode

__all__ = ["service_id"]


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run ``referral ARGS`` on a node of the federation (its peers are reached in memory)."""

    def invoke(test_node: TestNode, *args: str) -> Result:
        monkeypatch.setattr(cli, "open_node", lambda home: test_node.node)
        return CliRunner().invoke(main, ["referral", *args])

    return invoke


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def one_line_error(result: Result, *fragments: str, exit_code: int = 1) -> str:
    assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.output
    [line] = [line for line in result.output.splitlines() if line.startswith("Error")]
    for fragment in fragments:
        assert fragment in line
    return line


FIELDS = ("--field", f"given_name={GIVEN_NAME}", "--field", f"phone={PHONE}")


def create_args(
    clinic: TestNode, sid: str, *extra: str, fields: tuple[str, ...] = FIELDS
) -> list[str]:
    return [
        *("create", "--peer", clinic.url, "--service", sid),
        *fields,
        *("--consent-category", "identity", "--consent-category", "contact"),
        *("--purpose", "Referral to the drop-in", "--method", "verbal"),
        *("--captured-by", "staff-1", "--expires-days", "30"),
        *("--channel", "sms", "--channel", "phone-call", "--no-voicemail"),
        *("--window", "mon-fri=15:30-18:00", "--window", "sat,sun=10:00-12:00"),
        *("--time-zone", "Europe/London", "--do-not-disclose", "the clinic's name"),
        *("--contact-notes", CONTACT_NOTES),
        *extra,
    ]


def test_create_queues_a_referral_with_the_given_data(
    run: Any, community: TestNode, clinic: TestNode, service_id: str
) -> None:
    created = json.loads(ok(run(community, *create_args(clinic, service_id, "--json"))))
    assert set(created) == {"referral_id", "consent_code", "status"}
    assert created["status"] == "requested"
    [row] = outbox_rows(community)
    body = open_at(clinic, community, row.envelope or "").body
    assert isinstance(body, ReferralBody)
    assert body.referral_id == created["referral_id"]
    assert dict(body.person) == {"given_name": GIVEN_NAME, "phone": PHONE}
    assert body.consent.data_categories == ("identity", "contact")
    assert body.consent.expires_at == "2027-01-31T00:00:00Z"
    safe = body.safe_contact
    assert safe.channels == ("sms", "phone-call")
    assert (safe.voicemail_allowed, safe.may_name_organization) == (False, False)
    assert [(w.days, w.start, w.end) for w in safe.windows] == [
        (("mon", "tue", "wed", "thu", "fri"), "15:30", "18:00"),
        (("sat", "sun"), "10:00", "12:00"),
    ]
    assert (safe.time_zone, safe.do_not_disclose) == ("Europe/London", ("the clinic's name",))
    assert safe.notes == CONTACT_NOTES
    assert community.node.outbox_signal.is_set()


def test_create_prints_the_receipt_code(
    run: Any, community: TestNode, clinic: TestNode, service_id: str
) -> None:
    output = ok(run(community, *create_args(clinic, service_id)))
    [code_line] = [line for line in output.splitlines() if line.startswith("Consent receipt code")]
    code = code_line.split(": ")[1]
    assert f"exchange-node referral receipt {code}" in output
    assert GIVEN_NAME not in output


def test_a_refusal_is_one_line_that_names_the_field_not_the_value(
    run: Any, community: TestNode, clinic: TestNode, service_id: str
) -> None:
    result = run(community, *create_args(clinic, service_id, "--field", "email=zq@example.org"))
    line = one_line_error(result, "person/email", "not requested by this service")
    assert "zq@example.org" not in result.output
    assert "[invalid_request]" in line
    assert outbox_rows(community) == []


@pytest.mark.parametrize(
    ("option", "value", "fragment"),
    [
        ("--field", GIVEN_NAME, "expected NAME=VALUE"),
        ("--field", f"nickname={GIVEN_NAME}", "no intake field 'nickname'"),
        ("--window", "mon-fri 9-5", "expected DAYS=HH:MM-HH:MM"),
        ("--window", "fri-mon=09:00-17:00", "expected DAYS=HH:MM-HH:MM"),
        ("--consent-category", "everything", "'everything' is not one of"),
    ],
)
def test_bad_options_are_usage_errors(
    run: Any,
    community: TestNode,
    clinic: TestNode,
    service_id: str,
    option: str,
    value: str,
    fragment: str,
) -> None:
    result = run(community, *create_args(clinic, service_id, option, value))
    assert result.exit_code == 2, result.output
    assert fragment in result.output
    assert GIVEN_NAME not in result.output


def test_not_accepting_needs_an_override(run: Any, community: TestNode, clinic: TestNode) -> None:
    sid = list_service(community, clinic, accepting=False)
    one_line_error(run(community, *create_args(clinic, sid)), "[service_not_accepting]")
    created = run(community, *create_args(clinic, sid, "--override", "Urgent", "--json"))
    referral_id = json.loads(ok(created))["referral_id"]
    shown = json.loads(ok(run(community, "show", referral_id, "--json")))
    assert shown["override"] is True


def test_list_and_show_without_personal_data(
    run: Any, community: TestNode, clinic: TestNode, service_id: str
) -> None:
    created = json.loads(ok(run(community, *create_args(clinic, service_id, "--json"))))
    rows = json.loads(ok(run(community, "list", "--role", "sent", "--json")))
    assert [row["referral_id"] for row in rows] == [created["referral_id"]]
    table = ok(run(community, "list"))
    assert created["referral_id"] in table
    assert "pending" in table
    assert ok(run(community, "list", "--role", "received")) == "(none)\n"
    shown = json.loads(ok(run(community, "show", created["consent_code"], "--json")))
    assert shown["referral_id"] == created["referral_id"]
    assert "person" not in shown
    text = ok(run(community, "show", created["referral_id"][:8]))
    assert "Clinic (https://clinic.example)" in text
    assert "requested by the sender" in text
    for output in (table, json.dumps(shown), text):
        assert GIVEN_NAME not in output
        assert CONTACT_NOTES not in output


def test_show_personal_opens_the_data_and_is_audited(
    run: Any, community: TestNode, clinic: TestNode, service_id: str
) -> None:
    created = json.loads(ok(run(community, *create_args(clinic, service_id, "--json"))))
    referral_id = created["referral_id"]
    shown = json.loads(ok(run(community, "show", referral_id, "--personal", "--json")))
    assert shown["person"] == {"given_name": GIVEN_NAME, "phone": PHONE}
    assert shown["safe_contact"]["notes"] == CONTACT_NOTES
    assert GIVEN_NAME in ok(run(community, "show", referral_id, "--personal"))
    with community.node.database.session() as session:
        viewed = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "referral.personal_data_viewed")
        ).all()
        assert [(e.actor, e.subject) for e in viewed] == [("cli", referral_id)] * 2


def test_update_changes_the_status_or_names_what_is_allowed(
    run: Any, community: TestNode, clinic: TestNode, service_id: str
) -> None:
    received = receive(clinic, community, service_id)
    reference = received.referral_id
    line = one_line_error(run(clinic, "update", reference, "--status", "completed"))
    assert "the receiver may choose: accepted, rejected, entered-in-error" in line
    assert "[illegal_transition]" in line
    one_line_error(run(clinic, "update", reference, "--status", "rejected"), "reason code")
    output = ok(run(clinic, "update", reference, "--status", "accepted", "--note", "See you"))
    assert output == f"Referral {reference} is now accepted; the peer will be told.\n"
    result = run(clinic, "update", reference, "--status", "rejected", "--reason", "nope")
    assert result.exit_code == 2
    [row] = outbox_rows(clinic, "referral-status")
    assert row.state == "pending"


def test_withdraw_then_show_the_tombstone_and_the_receipt(
    run: Any, community: TestNode, clinic: TestNode, service_id: str
) -> None:
    created = json.loads(ok(run(community, *create_args(clinic, service_id, "--json"))))
    code = created["consent_code"]
    receipt = ok(run(community, "receipt", code))
    assert receipt.startswith(f"Consent receipt {code}")
    assert "- your name" in receipt
    assert ok(run(community, "receipt", code, "--html")).startswith("<!DOCTYPE html>")
    output = ok(run(community, "withdraw", code))
    assert f"Consent for referral {created['referral_id']} withdrawn" in output
    one_line_error(run(community, "withdraw", code), "already withdrawn", "[conflict]")
    shown = json.loads(ok(run(community, "show", code, "--personal", "--json")))
    assert (shown["person"], shown["purge_reason"]) == (None, "withdrawn")
    assert "You withdrew your consent" in ok(run(community, "receipt", code))


def test_an_unknown_referral_is_one_line(run: Any, community: TestNode) -> None:
    one_line_error(run(community, "show", "4a8e2f10-0000"), "no referral", "[not_found]")


def test_fields_from_standard_input_stay_out_of_the_command_line(
    community: TestNode, clinic: TestNode, service_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "open_node", lambda home: community.node)
    args = create_args(clinic, service_id, fields=())
    stdin = f"# the person\ngiven_name={GIVEN_NAME}\n\nphone={PHONE}\n"
    result = CliRunner().invoke(main, ["referral", *args, "--fields-file", "-", "--json"], stdin)
    created = json.loads(ok(result))
    [row] = outbox_rows(community)
    body = open_at(clinic, community, row.envelope or "").body
    assert isinstance(body, ReferralBody)
    assert body.referral_id == created["referral_id"]
    assert dict(body.person) == {"given_name": GIVEN_NAME, "phone": PHONE}


@pytest.mark.parametrize(
    ("stdin", "extra", "message"),
    [
        (f"given_name {GIVEN_NAME}\n", (), "line 1: expected NAME=VALUE"),
        (f"\nnickname={GIVEN_NAME}\n", (), "line 2: no intake field 'nickname'"),
        (f"given_name={GIVEN_NAME}\n", ("--field", "given_name=Other"), "given twice"),
    ],
)
def test_a_bad_fields_file_names_the_line_never_the_value(
    community: TestNode,
    clinic: TestNode,
    service_id: str,
    monkeypatch: pytest.MonkeyPatch,
    stdin: str,
    extra: tuple[str, ...],
    message: str,
) -> None:
    monkeypatch.setattr(cli, "open_node", lambda home: community.node)
    args = [*create_args(clinic, service_id, *extra, fields=()), "--fields-file", "-"]
    result = CliRunner().invoke(main, ["referral", *args], stdin)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert GIVEN_NAME not in result.output
    assert outbox_rows(community) == []
