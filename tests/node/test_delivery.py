"""Delivering the outbox (SPEC 7.5, 7.6): receipts, retries with per-peer backoff, refusals,
the deadline and re-sealing, against a peer whose inbox answers what each test scripts."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select

from exchange_node.db.models import AuditEntry, OutboxMessage, OutboxState, Peer, Referral
from exchange_node.errors import PeerUnreachableError
from exchange_node.federation_client import FederationClient
from exchange_node.protocol.keys import NodeKey, generate_key
from exchange_node.protocol.statements import RECEIPT_MEDIA_TYPE, issue_receipt, verify_receipt
from exchange_node.services import outbox, peers, referral_store
from exchange_node.services.delivery import DeliveryReport, deliver_due
from exchange_node.services.delivery_outcomes import backoff_delay
from exchange_node.transport import HttpResponse, Transport
from tests.protocol import factories

if TYPE_CHECKING:  # imported by name, pytest would try to collect the Test* classes
    from tests.node.conftest import TestClock, TestNode

INBOX = "/federation/v1/inbox"
DEADLINE = 86_400  # the default delivery_deadline_seconds
LIFETIME = 600  # the default message lifetime
NOW_TEXT = "2027-01-01T00:00:00Z"
Answer = Callable[[bytes], HttpResponse]


@dataclass
class ScriptedInbox:
    """A transport whose peer inbox answers from ``answers`` (then with real receipts);
    every other request goes through the federation's in-memory transport."""

    fallback: Transport
    receipt: Answer
    answers: list[Answer] = field(default_factory=list)
    posts: list[bytes] = field(default_factory=list)
    headers: list[Mapping[str, str]] = field(default_factory=list)
    delay: float = 0.0

    def send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes, *, max_bytes: int
    ) -> HttpResponse:
        if not (method == "POST" and url.endswith(INBOX)):
            return self.fallback.send(method, url, headers, body, max_bytes=max_bytes)
        self.posts.append(body)
        self.headers.append(headers)
        time.sleep(self.delay)
        return (self.answers.pop(0) if self.answers else self.receipt)(body)


def message_jti(node: TestNode, envelope: bytes) -> str:
    """The jti the sender sealed into ``envelope`` (the outbox keeps the envelope's digest)."""
    from exchange_node.protocol.statements import envelope_sha256

    with node.node.database.session() as session:
        return session.scalars(
            select(OutboxMessage.jti).where(
                OutboxMessage.envelope_sha256 == envelope_sha256(envelope)
            )
        ).one()


def receipt_answer(
    sender: TestNode, receiver: TestNode, *, key: NodeKey | None = None, **claims: Any
) -> Answer:
    """A 202 with a receipt signed by ``receiver`` (or ``key``), overriding ``claims``."""

    def answer(body: bytes) -> HttpResponse:
        token = issue_receipt(
            envelope=claims.get("envelope", body),
            message_jti=claims.get("message_jti") or message_jti(sender, body),
            issuer=receiver.url,
            audience=sender.url,
            signing_key=key or receiver.signing_key,
            now=receiver.node.now(),
        )
        return HttpResponse(202, {"Content-Type": RECEIPT_MEDIA_TYPE}, token.encode())

    return answer


def problem(status: int, code: str | None, **headers: str) -> Answer:
    document = {"type": "about:blank", "title": "No", "status": status, "detail": "said no"}
    if code is not None:
        document |= {"type": f"urn:exchange-node:problem:{code}", "code": code}
    content = {"Content-Type": "application/problem+json", **headers}
    return lambda _body: HttpResponse(status, content, json.dumps(document).encode())


def unreachable(_body: bytes) -> HttpResponse:
    raise PeerUnreachableError("https://clinic.example cannot be reached: ReadTimeout")


@pytest.fixture
def inbox(community: TestNode, clinic: TestNode) -> Iterator[ScriptedInbox]:
    node = community.node
    scripted = ScriptedInbox(node.client.transport, receipt_answer(community, clinic))
    original, node.client = node.client, FederationClient(scripted, node.settings.limits)
    yield scripted
    node.client = original


def make_referral(sender: TestNode, receiver: TestNode, referral_id: str = "ref-1") -> int:
    """A sent referral row (no personal data needed here); returns its primary key."""
    now = sender.node.now()
    with sender.node.database.session() as session:
        referral = Referral(
            referral_id=referral_id,
            role="sent",
            peer_id=peers.get_peer(session, receiver.url).id,
            service_id=factories.SERVICE_ID,
            status="requested",
            consent_id="consent-1",
            consent_expires_at=now + 90 * 86_400,
            created_by="cli",
            created_at=now,
            updated_at=now,
        )
        session.add(referral)
        session.flush()
        return referral.id


def queue(
    sender: TestNode,
    receiver: TestNode,
    referral_pk: int | None = None,
    message_type: str = "referral",
    body: Mapping[str, Any] | None = None,
) -> int:
    """Queue a message (a referral by default) and return the outbox row's id."""
    node = sender.node
    with node.database.session() as session:
        referral = session.get(Referral, referral_pk) if referral_pk is not None else None
        row = outbox.enqueue(
            node,
            session,
            peer=peers.get_peer(session, receiver.url),
            message_type=message_type,
            body=body or factories.referral(receiver.url),
            referral=referral,
            now=node.now(),
        )
        return row.id


def row_of(node: TestNode, row_id: int) -> OutboxMessage:
    with node.node.database.session() as session:
        return session.get_one(OutboxMessage, row_id)


def peer_row(holder: TestNode, other: TestNode) -> Peer:
    with holder.node.database.session() as session:
        return peers.get_peer(session, other.url)


def counts(report: DeliveryReport) -> tuple[int, int, int, int]:
    return report.delivered, report.retried, report.failed, report.resealed


def test_delivered_with_a_receipt_that_verifies(
    community: TestNode, clinic: TestNode, inbox: ScriptedInbox, clock: TestClock
) -> None:
    row_id = queue(community, clinic)
    envelope = row_of(community, row_id).envelope
    assert counts(deliver_due(community.node)) == (1, 0, 0, 0)

    assert envelope is not None
    assert inbox.posts == [envelope.encode()]  # the exact bytes
    headers = inbox.headers[0]
    assert headers["Content-Type"] == "application/jose"
    assert headers["Accept"] == "application/exchange-receipt+jwt, application/problem+json"
    assert "Signature" in headers
    assert "Content-Digest" in headers
    row = row_of(community, row_id)
    assert (row.state, row.attempts, row.delivered_at) == (OutboxState.DELIVERED, 1, clock())
    assert (row.envelope, row.sealed_body, row.lease_until) == (None, None, None)
    assert row.receipt is not None
    assert envelope is not None
    verify_receipt(  # kept as the record of delivery
        row.receipt,
        issuer=clinic.url,
        issuer_keys=[clinic.signing_key.public()],
        audience=community.url,
        envelope=envelope,
        message_jti=row.jti,
        now=clock(),
    )
    assert deliver_due(community.node) == DeliveryReport()  # nothing left
    assert len(inbox.posts) == 1


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        ({"envelope": b"other bytes"}, "invalid_claim"),
        ({"message_jti": "AAAAAAAAAAAAAAAAAAAAAA"}, "invalid_claim"),
        ({"key": generate_key("sig")}, "untrusted_key"),
    ],
    ids=["wrong-digest", "wrong-jti", "wrong-key"],
)
def test_a_receipt_that_does_not_verify_is_not_a_delivery(
    community: TestNode,
    clinic: TestNode,
    inbox: ScriptedInbox,
    clock: TestClock,
    claims: dict[str, Any],
    code: str,
) -> None:
    row_id = queue(community, clinic)
    inbox.answers.append(receipt_answer(community, clinic, **claims))
    assert counts(deliver_due(community.node)) == (0, 1, 0, 0)
    row = row_of(community, row_id)
    assert (row.state, row.attempts, row.last_error_code) == (OutboxState.PENDING, 1, code)
    assert row.receipt is None
    assert row.envelope is not None
    assert row.last_error is not None
    assert "does not verify" in row.last_error
    clock.advance(row.next_attempt_at - clock())
    assert counts(deliver_due(community.node)) == (1, 0, 0, 0)  # a good receipt next time


@pytest.mark.parametrize(
    "answer",
    [problem(500, None), problem(503, None), problem(502, "upstream"), unreachable],
    ids=["500", "503", "502-with-code", "timeout"],
)
def test_an_unavailable_peer_is_retried_after_a_jittered_backoff(
    community: TestNode, clinic: TestNode, inbox: ScriptedInbox, clock: TestClock, answer: Answer
) -> None:
    row_id = queue(community, clinic)
    inbox.answers.append(answer)
    assert counts(deliver_due(community.node)) == (0, 1, 0, 0)
    peer = peer_row(community, clinic)
    row = row_of(community, row_id)
    assert peer.delivery_failures == 1
    assert peer.delivery_retry_at is not None
    assert 1 <= peer.delivery_retry_at - clock() <= 10  # random(0, 10 s), at least 1 s
    assert row.next_attempt_at == peer.delivery_retry_at
    assert (row.state, row.lease_until) == (OutboxState.PENDING, None)

    clock.advance(peer.delivery_retry_at - clock() - 1)
    assert deliver_due(community.node) == DeliveryReport()  # not before retry_at
    assert len(inbox.posts) == 1
    clock.advance(1)
    assert counts(deliver_due(community.node)) == (1, 0, 0, 0)
    peer = peer_row(community, clinic)
    assert (peer.delivery_failures, peer.delivery_retry_at) == (0, None)  # reset


def test_backoff_doubles_per_failure_and_is_capped_at_an_hour(
    community: TestNode, clinic: TestNode, inbox: ScriptedInbox, clock: TestClock
) -> None:
    queue(community, clinic)
    for failures in range(12):
        inbox.answers.append(problem(500, None))
        report = deliver_due(community.node)
        assert report.retried == 1
        peer = peer_row(community, clinic)
        assert peer.delivery_failures == failures + 1
        assert peer.delivery_retry_at is not None
        delay = peer.delivery_retry_at - clock()
        assert 1 <= delay <= min(3_600, 10 * 2**failures)
        clock.advance(delay)
    assert all(1 <= backoff_delay(40) <= 3_600 for _ in range(200))
    assert max(backoff_delay(3) for _ in range(400)) > 40  # jittered over the whole range


def test_one_peer_failing_twice_in_a_batch_backs_off_once(
    community: TestNode, clinic: TestNode, inbox: ScriptedInbox
) -> None:
    first, second = queue(community, clinic), queue(community, clinic)
    inbox.answers += [problem(500, None), problem(500, None)]
    deliver_due(community.node)
    peer = peer_row(community, clinic)
    assert peer.delivery_failures == 1
    assert {row_of(community, row).next_attempt_at for row in (first, second)} == {
        peer.delivery_retry_at
    }


@pytest.mark.parametrize(
    ("status", "headers", "wait"),
    [
        (429, {"Retry-After": "120"}, 120),
        (503, {"Retry-After": formatdate(1_798_761_600 + 300, usegmt=True)}, 300),
    ],
    ids=["429-seconds", "503-date"],
)
def test_retry_after_is_honoured(
    community: TestNode,
    clinic: TestNode,
    inbox: ScriptedInbox,
    clock: TestClock,
    status: int,
    headers: dict[str, str],
    wait: int,
) -> None:
    row_id = queue(community, clinic)
    inbox.answers.append(problem(status, None, **headers))
    assert deliver_due(community.node).retried == 1
    assert peer_row(community, clinic).delivery_retry_at == clock() + wait
    assert row_of(community, row_id).next_attempt_at == clock() + wait


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (409, "illegal_transition"),
        (422, "consent_mismatch"),
        (403, "peer_not_trusted"),
        (404, None),
    ],
)
def test_a_refusal_fails_the_message_with_the_peers_code(
    community: TestNode,
    clinic: TestNode,
    inbox: ScriptedInbox,
    clock: TestClock,
    status: int,
    code: str | None,
) -> None:
    referral_pk = make_referral(community, clinic)
    row_id = queue(community, clinic, referral_pk)
    inbox.answers.append(problem(status, code))
    assert counts(deliver_due(community.node)) == (0, 0, 1, 0)

    expected = code or f"http_{status}"
    row = row_of(community, row_id)
    assert (row.state, row.attempts, row.last_error_code) == (OutboxState.FAILED, 1, expected)
    assert row.last_error == f"{clinic.url} answered HTTP {status} {expected}: said no"
    assert (row.envelope, row.sealed_body, row.lease_until) == (None, None, None)
    with community.node.database.session() as session:
        referral = session.get_one(Referral, referral_pk)
        (event,) = [e for e in referral.events if e.kind == referral_store.DELIVERY_FAILED]
        assert (event.reason_code, event.time) == (expected, clock())
        entry = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
        assert entry is not None
        assert (entry.actor, entry.action, entry.subject) == ("worker", "message.failed", "ref-1")
        assert entry.details == {"message_type": "referral", "code": expected}
    assert peer_row(community, clinic).delivery_retry_at is None  # the peer is up
    assert deliver_due(community.node) == DeliveryReport()


def test_the_deadline_fails_a_message_even_while_its_peer_is_backed_off(
    community: TestNode, clinic: TestNode, inbox: ScriptedInbox, clock: TestClock
) -> None:
    referral_pk = make_referral(community, clinic)
    row_id = queue(community, clinic, referral_pk)
    inbox.answers.append(unreachable)
    deliver_due(community.node)
    clock.advance(DEADLINE - 1)
    with community.node.database.session() as session:  # the peer is backed off for long
        peers.get_peer(session, clinic.url).delivery_retry_at = clock() + 3_600
    assert deliver_due(community.node) == DeliveryReport()
    clock.advance(1)
    assert counts(deliver_due(community.node)) == (0, 0, 1, 0)
    assert len(inbox.posts) == 1  # no attempt after the deadline
    row = row_of(community, row_id)
    assert (row.state, row.last_error_code, row.envelope) == (OutboxState.FAILED, "deadline", None)
    assert row.last_error is not None
    assert "after 1 attempts" in row.last_error
    with community.node.database.session() as session:
        kinds = [e.kind for e in session.get_one(Referral, referral_pk).events]
        assert kinds == [referral_store.DELIVERY_FAILED]
