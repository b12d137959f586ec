"""Referral delivery under faults, with real nodes on 127.0.0.1 (issue 5, item 9).

Community networks refer people to a clinic through the command line. The
clinic's public URL is a fault-injecting proxy's (:mod:`tests.e2e.fault_proxy`)
in front of its real server, so the tests can hold, fail or stall the clinic's
inbox while everything else passes through. Checked each time, on both sides:
every referral reaches the clinic exactly once (its ``referral list`` and its
audit log's ``referral.received`` entries name each id once), and the sender
shows each delivered, or failed with the clinic's error code when the clinic
said no.

The cases: the clinic is down while referrals are sent and comes back; the
senders are SIGKILLed while their requests are in flight (the clinic accepted
them, the proxy holds the receipts) and restarted; the clinic answers 500, then
nothing before the sender's timeout, and recovers; the clinic refuses with a 4xx
(a real ``field_not_requested``, an injected ``409``).

There are two senders when ``EXCHANGE_TEST_DATABASE_URL`` is set: "community"
on SQLite and "network" on PostgreSQL, sending at the same time in the outage
and the crash (leases, locks and unique keys are where the databases differ);
how an answer is read does not depend on the database, so the 500 and 4xx cases
use the first. The nodes are made and peered once for the module; each test
starts with every node serving, the proxy passing and nothing left pending,
whatever the one before it did. Senders run with a short timeout, lease and
backoff (``EXCHANGE_*`` settings), so that retries happen within seconds.
"""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, LiteralString

import pytest
import requests
from sqlalchemy import select

from exchange_node.db import Database, normalize_url
from exchange_node.db.models import OutboxMessage, Referral
from exchange_node.settings import load_settings
from tests.e2e.conftest import TunedNode, finish, free_ports, succeeded, thumbprint_in, wait_for
from tests.e2e.fault_proxy import FaultProxy

POSTGRES_URL = os.environ.get("EXCHANGE_TEST_DATABASE_URL")
#: The senders' servers: short timeouts, leases and backoff, so retries happen within a test.
SENDER_SERVER_SETTINGS = {
    "EXCHANGE_HTTP_TIMEOUT_SECONDS": "1.5",
    "EXCHANGE_DELIVERY_POLL_SECONDS": "0.2",
    "EXCHANGE_DELIVERY_LEASE_SECONDS": "4",
    "EXCHANGE_DELIVERY_BACKOFF_SECONDS": "1",
    "EXCHANGE_DELIVERY_MAX_BACKOFF_SECONDS": "2",
}
#: No refresh or capacity poll of peers during the tests (the clinic's intake fields
#: change behind the senders' backs in the 4xx test).
QUIET_SETTINGS = {"EXCHANGE_PEER_REFRESH_SECONDS": "3600", "EXCHANGE_CAPACITY_POLL_SECONDS": "3600"}
#: Longer than the senders' timeout: a request the proxy stalls this long times out.
HANG_SECONDS = 3.0
#: Bound on any wait for deliveries (backoff is capped at two seconds above).
DELIVERY_SECONDS = 20.0


@dataclass
class Sender:
    """A community network that refers people to the clinic."""

    node: TunedNode
    #: Its database, read by the tests only to wait less (they assert through the CLI).
    database: Database | None = None

    def states(self) -> dict[str, str]:
        """Referral id -> state of the outbox message that carries it."""
        assert self.database is not None
        with self.database.session() as session:
            rows = session.execute(
                select(Referral.referral_id, OutboxMessage.state)
                .join(OutboxMessage, OutboxMessage.referral_pk == Referral.id)
                .where(OutboxMessage.message_type == "referral")
            )
            return {referral_id: state for referral_id, state in rows}

    def settled(self) -> bool:
        return "pending" not in self.states().values()


@dataclass
class Federation:
    senders: list[Sender]
    clinic: TunedNode
    proxy: FaultProxy
    http: requests.Session
    #: Two services of the clinic: one keeps its intake fields, one drops "phone".
    drop_in: str = ""
    counselling: str = ""
    schemas: list[str] = field(default_factory=list)

    @property
    def nodes(self) -> list[TunedNode]:
        return [sender.node for sender in self.senders] + [self.clinic]

    def ensure_serving(self) -> None:
        for node in self.nodes:
            if not node.serving:
                node.serve()
        for node in self.nodes:
            node.wait_until_healthy(self.http)


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    """The senders and the clinic, peered; the clinic publishes two services and the
    senders have synced their directories."""
    home = tmp_path_factory.mktemp("faults")
    check_sender_settings(home)
    ports = free_ports(4)
    proxy = FaultProxy(f"http://127.0.0.1:{ports[0]}", ports[1]).start()
    clinic = TunedNode(
        "clinic", home / "clinic", ports[0], settings=QUIET_SETTINGS, public_url=proxy.url
    )
    http = requests.Session()
    http.trust_env = False
    federation = Federation([sender(home, "community", ports[2], {})], clinic, proxy, http)
    if POSTGRES_URL:
        federation.schemas.append(f"exnode_faults_{uuid.uuid4().hex[:12]}")
        database = {"EXCHANGE_DATABASE_URL": _create_schema(federation.schemas[-1])}
        federation.senders.append(sender(home, "network", ports[3], database))
    try:
        _initialize(federation)
        yield federation
    finally:
        for node in federation.nodes:
            node.stop()
            print(f"--- {node.name} server log ---\n{node.logged()}")  # shown on failure
        for one in federation.senders:
            if one.database is not None:
                one.database.dispose()
        proxy.close()
        http.close()
        for schema in federation.schemas:
            _admin("DROP SCHEMA IF EXISTS {} CASCADE", schema)


def check_sender_settings(home: Path) -> None:
    """Fail at once, saying why, if the node does not read the short delivery settings
    (the tests would otherwise wait for leases and backoff of production length)."""
    settings = load_settings(home, environ=SENDER_SERVER_SETTINGS)
    expected = {"delivery_lease_seconds": 4, "delivery_backoff_seconds": 1}
    expected["delivery_max_backoff_seconds"] = 2
    read = {name: getattr(settings, name, None) for name in expected}
    if read != expected:
        pytest.fail(f"the node does not read the delivery settings these tests need: {read}")


def sender(home: Path, name: str, port: int, database: Mapping[str, str]) -> Sender:
    settings = QUIET_SETTINGS | dict(database)
    return Sender(
        TunedNode(
            name, home / name, port, settings=settings, server_settings=SENDER_SERVER_SETTINGS
        )
    )


def _initialize(federation: Federation) -> None:
    clinic = federation.clinic
    initialized = side_by_side(
        *((one.node, ["init", "--name", one.node.name.title(), "--kind", "community-network",
                      "--url", one.node.url]) for one in federation.senders),
        (clinic, ["init", "--name", "Clinic", "--kind", "clinic", "--url", clinic.url]),
        parse=False,
    )  # fmt: skip
    for node, output in zip(federation.nodes, initialized, strict=True):
        node.thumbprint = thumbprint_in(output)
    for one in federation.senders:
        one.database = Database(
            load_settings(one.node.home, environ=one.node.settings).database_url
        )
    federation.ensure_serving()
    side_by_side(
        *((one.node, ["peer", "add", clinic.url, "--thumbprint", clinic.thumbprint])
          for one in federation.senders),
        parse=False,
    )  # fmt: skip
    for one in federation.senders:
        clinic.ok("peer", "accept", one.node.url, "--thumbprint", one.node.thumbprint)
    added = side_by_side(
        *((clinic, ["service", "add", "--name", name]) for name in ("Drop-in", "Counselling"))
    )
    federation.drop_in, federation.counselling = (service["service"]["id"] for service in added)
    for service in (federation.drop_in, federation.counselling):
        clinic.ok(
            "capacity", "set", service, "--status", "capacity", "--accepting",
            "--intake-field", "preferred_name", "--intake-field", "phone",
        )  # fmt: skip
    side_by_side(*((one.node, ["directory", "sync"]) for one in federation.senders), parse=False)


@pytest.fixture
def nodes(federation: Federation) -> Iterator[Federation]:
    """Every node serving, the proxy passing everything, nothing left to deliver from an
    earlier test, and a clean log of attempts."""
    federation.proxy.pass_through()
    federation.ensure_serving()
    for one in federation.senders:
        wait_for(one.settled, DELIVERY_SECONDS, f"what {one.node.name} sent before to settle")
    federation.proxy.forget()
    yield federation
    federation.proxy.pass_through()


# Steps ---------------------------------------------------------------------------------------


def side_by_side(*calls: tuple[TunedNode, list[str]], parse: bool = True) -> list[Any]:
    """Run commands side by side (with ``--json`` when ``parse``); their outputs, in order."""
    children = [node.start(*command, *(["--json"] if parse else [])) for node, command in calls]
    try:
        results = [finish(child) for child in children]
    finally:
        for child in children:  # after a timeout, the others are not left running
            if child.poll() is None:
                child.kill()
                child.communicate()
    outputs = [succeeded(result) for result in results]
    return [json.loads(output) for output in outputs] if parse else outputs


def refer(nodes: Federation, senders: list[Sender], count: int, service: str = "") -> list[str]:
    """Create ``count`` referrals at each of ``senders``, all side by side; their ids."""
    service = service or nodes.drop_in
    created = side_by_side(
        *((one.node, referral_command(nodes, number, service))
          for one in senders for number in range(count))
    )  # fmt: skip
    return [str(referral["referral_id"]) for referral in created]


def referral_command(nodes: Federation, number: int, service: str) -> list[str]:
    return [
        "referral", "create", "--peer", nodes.clinic.url, "--service", service,
        "--field", f"preferred_name=Sam {number}", "--field", f"phone=+4477009000{number:02d}",
        "--consent-category", "identity", "--consent-category", "contact",
        "--purpose", "Sexual health appointment", "--method", "verbal",
        "--captured-by", "staff-7", "--channel", "sms",
    ]  # fmt: skip


def sent_lists(senders: list[Sender]) -> list[tuple[TunedNode, list[str]]]:
    return [
        (one.node, ["referral", "list", "--role", "sent", "--limit", "1000"]) for one in senders
    ]


def deliveries(listings: list[Any], ids: list[str]) -> dict[str, dict[str, Any]]:
    """The delivery of each referral of ``ids`` (state, attempts, last error) as shown
    in the senders' ``referral list``."""
    rows = [row for listing in listings for row in listing]
    return {row["referral_id"]: row["delivery"] for row in rows if row["referral_id"] in ids}


def wait_until_delivered(senders: list[Sender], ids: list[str]) -> None:
    def delivered() -> bool:
        held = {referral: state for one in senders for referral, state in one.states().items()}
        states = {held[referral] for referral in ids}
        assert "failed" not in states
        return states == {"delivered"}

    wait_for(delivered, DELIVERY_SECONDS, f"{len(ids)} referrals to be delivered")


def assert_delivered_once(nodes: Federation, senders: list[Sender], ids: list[str]) -> None:
    """The senders show each referral delivered; the clinic holds each once, and recorded
    receiving each once."""
    *listings, received, audited = side_by_side(
        *sent_lists(senders),
        (nodes.clinic, ["referral", "list", "--role", "received", "--limit", "1000"]),
        (nodes.clinic, ["audit", "list", "--action", "referral.received", "--limit", "1000"]),
    )
    shown = deliveries(listings, ids)
    assert {d["state"] for d in shown.values()} == {"delivered"}, shown
    assert all(d["delivered_at"] and d["last_error_code"] is None for d in shown.values()), shown
    held = Counter(row["referral_id"] for row in received)
    assert {referral: held[referral] for referral in ids} == dict.fromkeys(ids, 1)
    assert set(held.values()) == {1}, held
    assert {row["status"] for row in received if row["referral_id"] in ids} == {"requested"}
    recorded = Counter(entry["subject"] for entry in audited)
    assert {referral: recorded[referral] for referral in ids} == dict.fromkeys(ids, 1)
    assert set(recorded.values()) == {1}, recorded


# Tests ---------------------------------------------------------------------------------------


def test_referrals_sent_while_the_clinic_is_down_arrive_once_each_when_it_is_back(
    nodes: Federation,
) -> None:
    nodes.clinic.stop()
    ids = refer(nodes, nodes.senders, 5 if len(nodes.senders) == 1 else 4)
    tried = {one.node.thumbprint for one in nodes.senders}

    def every_sender_tried() -> bool:
        return {attempt.keyid for attempt in nodes.proxy.attempts} == tried

    wait_for(every_sender_tried, DELIVERY_SECONDS, "each sender to try")
    waiting = deliveries(side_by_side(*sent_lists(nodes.senders)), ids)
    assert {attempt.status for attempt in nodes.proxy.attempts} == {0}  # no answer at all
    assert {d["state"] for d in waiting.values()} == {"pending"}, waiting
    errors = {d["last_error_code"] for d in waiting.values() if d["attempts"]}
    assert errors == {"peer_unreachable"}, waiting

    nodes.ensure_serving()
    wait_until_delivered(nodes.senders, ids)
    assert_delivered_once(nodes, nodes.senders, ids)


def test_senders_killed_during_delivery_lose_and_duplicate_nothing(nodes: Federation) -> None:
    nodes.proxy.hold()  # the clinic accepts; its receipts do not get back
    ids = refer(nodes, nodes.senders, 2)

    def each_waits_for_a_receipt() -> bool:
        return all(nodes.proxy.held(one.node.thumbprint) for one in nodes.senders)

    wait_for(each_waits_for_a_receipt, DELIVERY_SECONDS, "a receipt held from each sender")
    for one in nodes.senders:
        one.node.kill()
    accepted_unknown = nodes.proxy.forwarded_bodies()
    nodes.proxy.release()

    nodes.ensure_serving()  # the leases run out, and the same envelopes are sent again
    wait_until_delivered(nodes.senders, ids)
    assert_delivered_once(nodes, nodes.senders, ids)
    # What the clinic had accepted before the kill came again, byte for byte, and was
    # answered with its receipt, not stored twice.
    again = nodes.proxy.forwarded_bodies()
    assert sum(again[body] >= 2 for body in accepted_unknown) >= len(nodes.senders), again


def test_a_clinic_answering_500_then_nothing_is_retried_with_backoff_until_it_recovers(
    nodes: Federation,
) -> None:
    senders = nodes.senders[:1]
    nodes.proxy.fail(500)
    [referral] = refer(nodes, senders, 1)
    wait_for(lambda: nodes.proxy.statuses()[500] >= 2, DELIVERY_SECONDS, "two 500s")
    nodes.proxy.hang(HANG_SECONDS)  # longer than the sender's timeout

    def timed_out_twice() -> bool:
        return sum(attempt.mode == "hang" for attempt in nodes.proxy.attempts) >= 2

    wait_for(timed_out_twice, DELIVERY_SECONDS, "two attempts to time out")
    waiting = deliveries(side_by_side(*sent_lists(senders)), [referral])[referral]
    assert waiting["state"] == "pending"
    assert waiting["attempts"] >= 3
    assert waiting["last_error_code"] == "peer_unreachable"
    # Backed off: a second or more between attempts. The clock has whole seconds, so two
    # attempts may fall close across a second's boundary, but not three.
    times = [attempt.at for attempt in nodes.proxy.attempts]
    assert times[-1] - times[0] >= len(times) - 2, times

    nodes.proxy.pass_through()
    wait_until_delivered(senders, [referral])
    assert_delivered_once(nodes, senders, [referral])


def test_a_clinic_refusing_with_a_4xx_gets_the_message_marked_failed_with_its_code(
    nodes: Federation,
) -> None:
    [community] = senders = nodes.senders[:1]
    # The clinic stops asking for phone numbers; the sender's directory does not know yet.
    nodes.clinic.ok(
        "capacity", "set", nodes.counselling, "--status", "capacity", "--accepting",
        "--intake-field", "preferred_name",
    )  # fmt: skip
    [not_requested] = refer(nodes, senders, 1, nodes.counselling)
    wait_for(lambda: nodes.proxy.statuses()[422] >= 1, DELIVERY_SECONDS, "the clinic's 422")
    nodes.proxy.fail(409, "illegal_transition")
    [conflicting] = refer(nodes, senders, 1)
    wait_for(lambda: nodes.proxy.statuses()[409] >= 1, DELIVERY_SECONDS, "the injected 409")
    refused = {not_requested: "field_not_requested", conflicting: "illegal_transition"}

    def recorded() -> bool:
        return {community.states()[referral] for referral in refused} == {"failed"}

    wait_for(recorded, DELIVERY_SECONDS, "the refusals to be recorded")
    *shown, failures, received = side_by_side(
        *((community.node, ["referral", "show", referral]) for referral in refused),
        (community.node, ["audit", "list", "--action", "message.failed", "--limit", "1000"]),
        (nodes.clinic, ["referral", "list", "--role", "received", "--limit", "1000"]),
    )
    for one in shown:
        code = refused[one["referral_id"]]
        assert one["delivery"]["state"] == "failed"
        assert one["delivery"]["attempts"] == 1  # the peer said no: not retried
        assert one["delivery"]["last_error_code"] == code
        assert code in one["delivery"]["last_error"]
        assert [failed["last_error_code"] for failed in one["failed_messages"]] == [code]
        kinds = [(event["kind"], event["reason_code"]) for event in one["timeline"]]
        assert kinds[-1] == ("delivery-failed", code)
    assert {(e["subject"], e["details"]["code"]) for e in failures} >= set(refused.items())
    assert not set(refused) & {row["referral_id"] for row in received}
    assert len(nodes.proxy.attempts) == 2  # and nothing was sent again


# Plumbing ------------------------------------------------------------------------------------


def _create_schema(schema: str) -> str:
    """A schema of its own in the test database (cheaper than a database); its URL."""
    _admin("CREATE SCHEMA {}", schema)
    return f"{normalize_url(POSTGRES_URL or '')}?options=-csearch_path%3D{schema}"


def _admin(statement: LiteralString, schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(POSTGRES_URL or "", autocommit=True) as connection:
        connection.execute(sql.SQL(statement).format(sql.Identifier(schema)))
