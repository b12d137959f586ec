"""The audit log: what each administrative action appends, the hash chain, and tampering.

Every test runs on SQLite and, with ``EXCHANGE_TEST_DATABASE_URL``, on PostgreSQL.
Tampering is done the way an intruder with database access would: raw SQL.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text

from exchange_node import worker
from exchange_node.cli import main
from exchange_node.db.models import PeerStatus
from exchange_node.errors import InvalidRequestError
from exchange_node.protocol.messages import format_timestamp
from exchange_node.services import audit, clients, peers, users
from tests.conftest import NOW

if TYPE_CHECKING:  # imported by name, pytest would try to collect the Test* classes
    from tests.node.conftest import TestClock, TestNode

PASSWORD = "correct horse battery"


def logged(test_node: TestNode) -> list[tuple[str, str, str]]:
    """(actor, action, subject) of every entry, in order."""
    with test_node.node.database.session() as session:
        return [(e.actor, e.action, e.subject) for e in audit.entries(session, limit=1000)]


def details_of(test_node: TestNode, action: str) -> list[dict[str, Any] | None]:
    with test_node.node.database.session() as session:
        return [e.details for e in audit.entries(session, action=action)]


def verify(test_node: TestNode) -> audit.VerifyResult:
    with test_node.node.database.session() as session:
        return audit.verify(session)


def append(test_node: TestNode, count: int) -> None:
    """``count`` entries, each in a transaction of its own."""
    for number in range(count):
        with test_node.node.database.session() as session:
            audit.record(
                session,
                actor="cli",
                action="test.appended",
                subject=f"thing-{number}",
                details={"number": number},
                now=test_node.node.now(),
            )


def execute(test_node: TestNode, *statements: str) -> None:
    with test_node.node.database.session() as session:
        for statement in statements:
            session.execute(text(statement))


def run(test_node: TestNode, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--home", str(test_node.node.settings.home)])


# What each action appends -------------------------------------------------------------------


def test_peering_is_audited_on_both_sides(community: TestNode, clinic: TestNode) -> None:
    assert logged(community) == [("cli", "peer.added", clinic.url)]
    assert details_of(community, "peer.added") == [
        {"thumbprint": clinic.thumbprint, "previous_status": None, "request_delivered": True}
    ]
    assert logged(clinic) == [
        (f"peer:{community.url}", "peer.requested", community.url),
        ("cli", "peer.accepted", community.url),
    ]
    assert details_of(clinic, "peer.requested") == [
        {"status": "pending", "new": True, "keyid": community.thumbprint}
    ]
    assert verify(community).ok
    assert verify(clinic).ok


def test_status_changes_are_audited_with_the_previous_status(
    community: TestNode, clinic: TestNode
) -> None:
    node = clinic.node
    for status in (PeerStatus.SUSPENDED, PeerStatus.TRUSTED, PeerStatus.REMOVED):
        with node.database.session() as session:
            peers.change_status(node, session, community.url, status)
    assert logged(clinic)[2:] == [
        ("cli", "peer.suspended", community.url),
        ("cli", "peer.resumed", community.url),
        ("cli", "peer.removed", community.url),
    ]
    with node.database.session() as session:
        shown = [e.details for e in audit.entries(session, after_seq=2)]
    assert shown == [
        {"previous_status": "trusted"},
        {"previous_status": "suspended"},
        {"previous_status": "trusted"},
    ]


def test_key_rotation_is_audited_at_the_node_and_by_the_worker_at_its_peer(
    community: TestNode, clinic: TestNode, clock: TestClock
) -> None:
    with clinic.node.database.session() as session:
        new = clinic.node.keystore.rotate(session, clock(), 7_200)
    assert logged(clinic)[-1] == ("cli", "keys.rotated", new[0].kid)
    assert details_of(clinic, "keys.rotated") == [
        {"encryption_kid": new[1].kid, "active_from": clock() + 7_200}
    ]
    clock.advance(3_600)  # the peer is due; the new keys are published, the old ones sign
    assert worker.run_round(community.node).refreshed == 1
    assert logged(community)[-1] == ("worker", "peer.key_rotated", clinic.url)
    assert details_of(community, "peer.key_rotated") == [
        {
            "keys_added": 2,
            "keys_removed": 0,
            "signing_keys": " ".join(sorted([clinic.thumbprint, new[0].kid])),
        }
    ]
    clock.advance(3_600)  # the new keys sign; the same keys are published: nothing to audit
    assert worker.run_round(community.node).refreshed == 1
    assert [action for _, action, _ in logged(community)].count("peer.key_rotated") == 1


def test_users_and_clients_are_audited_by_id_never_by_email(community: TestNode) -> None:
    node, email = community.node, "ada.lovelace@clinic.example"
    with node.database.session() as session:
        user_id = users.add_user(session, email, "staff", PASSWORD, node.now()).id
        client, _ = clients.add_client(session, "Bed board", ["capacity:write"], node.now())
    for _ in range(2):  # the second time changes nothing, and logs nothing
        with node.database.session() as session:
            users.disable_user(session, email, node.now())
            clients.revoke_client(session, client.client_id, node.now())
    assert logged(community) == [
        ("cli", "user.added", str(user_id)),
        ("cli", "client.added", client.client_id),
        ("cli", "user.disabled", str(user_id)),
        ("cli", "client.revoked", client.client_id),
    ]
    assert details_of(community, "user.added") == [{"role": "staff"}]
    assert details_of(community, "client.added") == [{"scopes": "capacity:write"}]
    with node.database.session() as session:
        rows = session.execute(text("SELECT * FROM audit_entries")).all()
    stored = " ".join(str(value) for row in rows for value in row)
    assert "ada.lovelace" not in stored.lower()
    assert "Bed board" not in stored  # a client's name is free text: not logged


def test_an_entry_rolls_back_with_its_action(community: TestNode) -> None:
    def act_then_fail() -> None:
        with community.node.database.session() as session:
            audit.record(session, actor="cli", action="test.appended", subject="x", now=1)
            raise RuntimeError("the action failed after its entry was appended")

    with pytest.raises(RuntimeError):
        act_then_fail()
    assert logged(community) == []


@pytest.mark.parametrize(
    ("entry", "pointer"),
    [
        ({"actor": "ada@clinic.example"}, "/actor"),
        ({"subject": "ada@clinic.example"}, "/subject"),
        ({"details": {"email": "ada@clinic.example"}}, "/details/email"),
        ({"details": {"nested": {"name": "Ada"}}}, "/details/nested"),
        ({"details": {"names": ["Ada"]}}, "/details/names"),
        ({"details": {"score": 1.5}}, "/details/score"),
        ({"details": {"big": 2**60}}, "/details/big"),
        ({"details": {"Name": "x"}}, "/details"),
        ({"details": {"note": "x" * 1100}}, "/details"),
        ({"action": "Peer Added"}, "/action"),
        ({"actor": ""}, "/actor"),
        ({"subject": "x" * 513}, "/subject"),
    ],
)
def test_personal_or_unshaped_data_is_refused(
    community: TestNode, entry: dict[str, Any], pointer: str
) -> None:
    values: dict[str, Any] = {"actor": "cli", "action": "test.appended", "subject": "x"} | entry
    with (
        community.node.database.session() as session,
        pytest.raises(InvalidRequestError, match="audit entry refused") as caught,
    ):
        audit.record(session, now=1, **values)
    assert list(caught.value.fields) == [pointer]


# The chain ----------------------------------------------------------------------------------


def test_hash_is_what_the_module_docstring_says(community: TestNode) -> None:
    append(community, 2)
    with community.node.database.session() as session:
        first, second = audit.entries(session)
    content = (
        '{"action":"test.appended","actor":"cli","details":{"number":0},"seq":1,'
        f'"subject":"thing-0","time":{first.time}}}'
    )
    assert first.prev_hash == "0" * 64
    assert first.hash == audit.entry_hash("0" * 64, content.encode())
    assert second.prev_hash == first.hash


def test_entries_page_and_filter(community: TestNode) -> None:
    append(community, 5)
    with community.node.database.session() as session:
        assert [e.seq for e in audit.entries(session, after_seq=2, limit=2)] == [3, 4]
        assert audit.entries(session, action="peer.added") == []
        assert len(audit.entries(session, action="test.appended")) == 5


def test_concurrent_appends_keep_one_chain(community: TestNode) -> None:
    errors: list[BaseException] = []

    def appender() -> None:
        try:
            append(community, 10)
        except BaseException as e:  # reported below, in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=appender) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    result = verify(community)
    assert (result.ok, result.entries) == (True, 40)
    with community.node.database.session() as session:
        assert [e.seq for e in audit.entries(session)] == list(range(1, 41))


@pytest.mark.parametrize(
    ("statements", "seq", "problem", "says"),
    [
        (["UPDATE audit_entries SET subject = 'other' WHERE seq = 3"], 3, "changed", "content"),
        (["UPDATE audit_entries SET time = time + 1 WHERE seq = 3"], 3, "changed", "content"),
        (["UPDATE audit_entries SET actor = 'worker' WHERE seq = 1"], 1, "changed", "content"),
        (["UPDATE audit_entries SET prev_hash = hash WHERE seq = 3"], 3, "changed", "content"),
        (
            ["""UPDATE audit_entries SET details = '{"number": 7}' WHERE seq = 3"""],
            3,
            "changed",
            "content",
        ),
        (["DELETE FROM audit_entries WHERE seq = 3"], 3, "removed", "entry 3 is missing"),
        (["DELETE FROM audit_entries WHERE seq = 1"], 1, "removed", "entry 1 is missing"),
        (["DELETE FROM audit_entries WHERE seq IN (3, 4)"], 3, "removed", "entries 3 to 4 are"),
        (
            [
                "UPDATE audit_entries SET seq = 0 WHERE seq = 3",
                "UPDATE audit_entries SET seq = 3 WHERE seq = 4",
                "UPDATE audit_entries SET seq = 4 WHERE seq = 0",
            ],
            3,
            "reordered",
            "entry 3 follows entry 4, not entry 2",
        ),
        (["UPDATE audit_entries SET seq = 0 WHERE seq = 1"], 0, "reordered", "out of sequence"),
    ],
)
def test_tampering_is_named_at_the_first_entry_affected(
    community: TestNode, statements: list[str], seq: int, problem: str, says: str
) -> None:
    append(community, 5)
    execute(community, *statements)
    result = verify(community)
    assert (result.ok, result.broken_seq, result.problem) == (False, seq, problem)
    assert says in result.detail
    assert result.entries == max(seq - 1, 0)


def test_an_entry_rehashed_after_a_change_is_caught_at_the_next(community: TestNode) -> None:
    append(community, 5)
    with community.node.database.session() as session:
        third = audit.entries(session, after_seq=2, limit=1)[0]
    content = audit.canonical_content(3, third.time, "cli", third.action, "other", {})
    forged = audit.entry_hash(third.prev_hash, content)
    with community.node.database.session() as session:
        session.execute(
            text(
                "UPDATE audit_entries SET subject = 'other', details = '{}', hash = :forged "
                "WHERE seq = 3"
            ),
            {"forged": forged},
        )
    result = verify(community)
    assert (result.broken_seq, result.problem) == (4, "removed")
    assert "entry 4 does not follow entry 3" in result.detail


def test_details_that_are_not_json_are_a_change(community: TestNode) -> None:
    if community.node.database.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL refuses text that is not JSON in a json column")
    append(community, 3)
    execute(community, "UPDATE audit_entries SET details = 'not json' WHERE seq = 2")
    assert (verify(community).broken_seq, verify(community).problem) == (2, "changed")
    assert run(community, "audit", "list").exit_code == 0  # listing still works


def test_verify_reads_in_batches(community: TestNode, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit, "VERIFY_BATCH", 2)
    append(community, 7)
    assert verify(community).entries == 7
    execute(community, "DELETE FROM audit_entries WHERE seq = 5")
    assert (verify(community).broken_seq, verify(community).problem) == (5, "removed")


def test_a_cut_tail_verifies_but_changes_the_last_hash(community: TestNode) -> None:
    """The chain alone cannot show entries removed at the end: the noted last hash does."""
    append(community, 4)
    before = run(community, "audit", "verify")
    execute(community, "DELETE FROM audit_entries WHERE seq = 4")
    after = run(community, "audit", "verify")
    assert (before.exit_code, after.exit_code) == (0, 0)
    assert "intact: 4 entries" in before.output
    assert "intact: 3 entries" in after.output
    assert before.output.split()[-1] != after.output.split()[-1]


# The commands -------------------------------------------------------------------------------


def test_audit_list_shows_a_table_and_json(community: TestNode, clinic: TestNode) -> None:
    table = run(clinic, "audit", "list")
    assert table.exit_code == 0, table.output
    header, *lines = table.output.splitlines()
    assert header.split() == ["SEQ", "TIME", "ACTOR", "ACTION", "SUBJECT"]
    assert [line.split() for line in lines] == [
        ["1", format_timestamp(NOW), f"peer:{community.url}", "peer.requested", community.url],
        ["2", format_timestamp(NOW), "cli", "peer.accepted", community.url],
    ]
    shown = json.loads(run(clinic, "audit", "list", "--json", "--action", "peer.accepted").output)
    assert [(e["seq"], e["action"], e["subject"]) for e in shown] == [
        (2, "peer.accepted", community.url)
    ]
    assert shown[0]["time"].endswith("Z")
    assert shown[0]["details"] == {"thumbprint": community.thumbprint}
    after = json.loads(run(clinic, "audit", "list", "--json", "--after", "1").output)
    assert [e["seq"] for e in after] == [2]


def test_audit_verify_exits_1_naming_the_broken_entry(community: TestNode) -> None:
    append(community, 3)
    intact = run(community, "audit", "verify", "--json")
    assert intact.exit_code == 0
    assert json.loads(intact.output) | {"last_hash": "-"} == {
        "ok": True,
        "entries": 3,
        "last_hash": "-",
        "broken_seq": None,
        "problem": None,
        "detail": "",
    }
    execute(community, "UPDATE audit_entries SET subject = 'other' WHERE seq = 2")
    broken = run(community, "audit", "verify")
    assert broken.exit_code == 1
    assert broken.output.startswith("audit log broken at entry 2: changed: ")
    assert json.loads(run(community, "audit", "verify", "--json").output)["broken_seq"] == 2
