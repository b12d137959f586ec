"""The inbox under concurrent deliveries, what it leaves at rest and in logs, and its documentation.

Issue 5 item 6 for the receiving side: after a referral with a distinctive name, phone
and contact notes (and a status note) is received, neither the SQLite file (nor its
WAL) nor any PostgreSQL row holds them in plain text.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import text

from exchange_node.db.models import Base, InboxMessage, Referral
from exchange_node.openapi import build_openapi
from exchange_node.protocol.envelope import ENVELOPE_MEDIA_TYPE
from exchange_node.protocol.httpsig import sign_request
from exchange_node.transport import HttpResponse
from tests.node.test_inbox import INBOX, count, post, referral_body, seal
from tests.test_openapi import check_documented

if TYPE_CHECKING:  # imported by name, pytest would try to collect the Test* classes
    from tests.node.conftest import TestNode

NAME, PHONE = "Zebulon", "+44 7700 983456"
CONTACT_NOTES = "Quietly-Distinctive contact notes"
STATUS_NOTE = "Harbourmaster-Distinctive note"
SECRETS = (NAME, PHONE, CONTACT_NOTES, STATUS_NOTE)


def at_the_same_time(calls: list[Callable[[], HttpResponse]]) -> list[HttpResponse]:
    """Run ``calls`` in threads released together; their answers in order."""
    barrier = threading.Barrier(len(calls))
    answers: list[HttpResponse | None] = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        answers[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(answer is not None for answer in answers)
    return [answer for answer in answers if answer is not None]


def test_concurrent_deliveries_of_one_envelope_store_one_message(
    community: TestNode, clinic: TestNode
) -> None:
    envelope = seal(community, clinic, "referral", referral_body(clinic, clinic.publish())).token
    answers = at_the_same_time([lambda: post(community, clinic, envelope) for _ in range(8)])
    assert [answer.status for answer in answers] == [202] * 8
    assert len({answer.body for answer in answers}) == 1
    assert count(clinic, InboxMessage) == 1
    assert count(clinic, Referral) == 1


def test_concurrent_copies_of_one_referral_store_one_referral(
    community: TestNode, clinic: TestNode
) -> None:
    """Re-sealed copies (each its own jti) racing for the referral's row: one wins, all 202."""
    body = referral_body(clinic, clinic.publish())
    envelopes = [seal(community, clinic, "referral", body).token for _ in range(6)]
    answers = at_the_same_time(
        [lambda envelope=envelope: post(community, clinic, envelope) for envelope in envelopes]
    )
    assert [answer.status for answer in answers] == [202] * 6
    assert len({answer.body for answer in answers}) == 6
    assert count(clinic, InboxMessage) == 6
    assert count(clinic, Referral) == 1


def test_no_personal_data_at_rest_or_in_logs(
    community: TestNode,
    clinic: TestNode,
    database_kind: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    service_id = clinic.publish(intake_fields=("given_name", "phone"))
    body = referral_body(
        clinic, service_id, person={"given_name": NAME, "phone": PHONE}, notes=CONTACT_NOTES
    )
    assert post(community, clinic, seal(community, clinic, "referral", body).token).status == 202
    cancel = {
        "referral_id": body["referral_id"],
        "status": "cancelled",
        "sequence": 1,
        "changed_at": "2027-01-01T00:00:00Z",
        "reason": {"code": "other", "text": STATUS_NOTE},
        "note": STATUS_NOTE,
    }
    sealed = seal(community, clinic, "referral-status", cancel)
    assert post(community, clinic, sealed.token).status == 202

    stored = stored_text(clinic, database_kind)
    for identifier in (body["referral_id"], sealed.jti, "Counselling"):  # the rows were read
        assert identifier.encode("ascii") in stored
    for secret in SECRETS:
        assert secret.encode("utf-8") not in stored, secret
        assert secret not in caplog.text, secret


def stored_text(test_node: TestNode, database_kind: str) -> bytes:
    """Everything the node's database holds: the SQLite files, or every PostgreSQL row as text."""
    engine = test_node.node.database.engine
    if database_kind == "sqlite":
        path = Path(engine.url.database or "")
        files = [path, path.with_name(path.name + "-wal")]
        return b"".join(file.read_bytes() for file in files if file.exists())
    rows: list[str] = []
    with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            query = text(f'SELECT t::text FROM "{table.name}" t')  # noqa: S608 (our table names)
            rows += connection.scalars(query).all()
    return "\n".join(rows).encode("utf-8")


def test_answers_are_as_documented(community: TestNode, clinic: TestNode) -> None:
    document = build_openapi()
    envelope = seal(community, clinic, "referral", referral_body(clinic, clinic.publish())).token
    accepted = signed_post(community, clinic, envelope, ENVELOPE_MEDIA_TYPE)
    assert accepted.status_code == 202
    check_documented(document, "post", INBOX, accepted)
    wrong_type = signed_post(community, clinic, envelope, "application/json")
    assert wrong_type.status_code == 400
    check_documented(document, "post", INBOX, wrong_type)


def signed_post(sender: TestNode, receiver: TestNode, envelope: str, content_type: str) -> Any:
    body, headers = envelope.encode("ascii"), {"Content-Type": content_type}
    url = receiver.url + INBOX
    headers |= sign_request(
        "POST", url, headers, body, key=sender.signing_key, now=sender.node.now()
    )
    return receiver.client().post(INBOX, headers=headers, data=body, base_url=receiver.url)
