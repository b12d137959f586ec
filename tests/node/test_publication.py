"""The capacity document this node signs (services/publication.py): content, version, re-signing.

Services are stored with ``TestNode.publish`` (rows plus a raised version, as the
catalog writes them). Every record published is checked against the official HSDS
3.1 schema from the standard's own folder with python ``jsonschema``, apart from the
copy and the validator the node itself uses.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema
import pytest
from sqlalchemy import event, select, update

from exchange_node.db.models import CapacityPublication, Service
from exchange_node.protocol.capacity import CapacityDocument, verify_capacity_document
from exchange_node.protocol.messages import format_timestamp
from exchange_node.services import publication
from exchange_node.services.publication import PublishedDocument
from tests.node.conftest import Federation, hsds_service

if TYPE_CHECKING:  # imported by name, pytest would try to collect the Test* classes
    from tests.node.conftest import TestClock, TestNode

STANDARD = Path(__file__).resolve().parents[3] / "shared" / "standards" / "hsds-3.1"
OVERLAP = 3_600  # the federation fixture's key_overlap_seconds


@cache
def official_validator(name: str) -> jsonschema.protocols.Validator:
    """A ``jsonschema`` validator, formats checked, for a compiled schema of the standard."""
    path = STANDARD / "schema" / "compiled" / name
    if not path.exists():
        pytest.skip(f"the HSDS 3.1 standard is not at {STANDARD}")
    schema = json.loads(path.read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)
    return validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)


def standard_example(name: str) -> dict[str, Any]:
    path = STANDARD / "examples" / name
    if not path.exists():
        pytest.skip(f"the HSDS 3.1 standard is not at {STANDARD}")
    example: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return example


def published(test_node: TestNode) -> PublishedDocument:
    with test_node.node.database.session() as session:
        return publication.current_document(test_node.node, session)


def verified(test_node: TestNode, document: PublishedDocument) -> CapacityDocument:
    return verify_capacity_document(
        document.token,
        issuer=test_node.url,
        issuer_keys=[test_node.signing_key.public()],
        now=test_node.node.now(),
    )


def raise_version(test_node: TestNode, service_id: str, **capacity: Any) -> None:
    """Change a service's capacity columns and raise the version, as the catalog does."""
    with test_node.node.database.session() as session:
        session.execute(update(Service).where(Service.id == service_id).values(**capacity))
        session.execute(
            update(CapacityPublication)
            .where(CapacityPublication.id == 1)
            .values(version=CapacityPublication.version + 1)
        )


@pytest.fixture
def clinic(federation: Federation) -> TestNode:
    """One node on its own: publication needs no peer."""
    return federation.add("clinic")


def test_document_carries_every_service_with_its_capacity(
    clinic: TestNode, clock: TestClock
) -> None:
    full = standard_example("service_full.json")
    first = clinic.publish(full, status="waitlist", wait_days=14, notes="Call first")
    second = clinic.publish(
        hsds_service("Legal clinic"),
        accepting=False,
        status="no-capacity",
        intake_fields=("preferred_name",),
        verified_at=clock() - 3_600,
    )
    document = verified(clinic, published(clinic))

    assert document.version == 3  # seeded at 1, raised by each publish
    assert sorted(entry.service_id for entry in document.services) == sorted([first, second])
    full_entry, legal = document.service(first), document.service(second)
    assert full_entry is not None
    assert legal is not None
    assert dict(full_entry.service) == full
    assert (full_entry.status, full_entry.wait_days, full_entry.notes) == (
        "waitlist",
        14,
        "Call first",
    )
    assert full_entry.intake_fields == ("given_name", "phone")
    assert full_entry.verified_at is None
    assert full_entry.accepting_referrals is True
    assert (legal.status, legal.accepting_referrals) == ("no-capacity", False)
    assert legal.intake_fields == ("preferred_name",)
    assert legal.verified_at == format_timestamp(clock() - 3_600)
    assert legal.updated_at == format_timestamp(clock())


def test_every_published_record_is_valid_hsds(clinic: TestNode) -> None:
    clinic.publish(standard_example("service_full.json"))
    for example in standard_example("service_list.json")["contents"]:
        clinic.publish({**example, "id": str(uuid.uuid4())})  # the examples share an id
    clinic.publish(hsds_service("Drop-in", description="Walk in, no appointment"))
    document = verified(clinic, published(clinic))

    assert len(document.services) == 2 + len(standard_example("service_list.json")["contents"])
    validator = official_validator("service_with_definitions.json")
    for entry in document.services:
        errors = [error.message for error in validator.iter_errors(dict(entry.service))]
        assert errors == [], entry.service_id


def test_capacity_entry_leaves_out_absent_members(clinic: TestNode) -> None:
    service_id = clinic.publish()
    with clinic.node.database.session() as session:
        entry = publication.capacity_entry(session.get_one(Service, service_id))
    assert set(entry) == {"status", "accepting_referrals", "intake_fields", "updated_at"}


def test_empty_node_publishes_an_empty_document(clinic: TestNode) -> None:
    document = verified(clinic, published(clinic))
    assert (document.version, document.services) == (1, ())


def test_version_rises_with_each_change_and_only_then(clinic: TestNode) -> None:
    service_id = clinic.publish()
    first = published(clinic)
    assert published(clinic) == first  # nothing changed: the very same bytes

    clinic.publish(hsds_service("Second"))
    second = published(clinic)
    raise_version(clinic, service_id, capacity_status="no-capacity", accepting_referrals=False)
    third = published(clinic)

    assert [first.version, second.version, third.version] == [2, 3, 4]
    assert len({first.etag, second.etag, third.etag}) == 3
    changed = verified(clinic, third).service(service_id)
    assert changed is not None
    assert (changed.status, changed.accepting_referrals) == ("no-capacity", False)


@contextmanager
def statements(test_node: TestNode) -> Iterator[list[str]]:
    """The SQL statements the node's database runs inside the block."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    engine = test_node.node.database.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_unchanged_document_costs_one_query_and_no_signing(
    clinic: TestNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    clinic.publish()
    first = published(clinic)
    signed: list[object] = []
    monkeypatch.setattr(publication, "sign_capacity_document", lambda *a: signed.append(a))
    with statements(clinic) as seen:
        assert published(clinic) == first
    assert signed == []
    assert len(seen) == 1, seen


def test_etag_is_the_digest_of_the_token(clinic: TestNode) -> None:
    document = published(clinic)
    # SPEC 4.1: '"' + base64url(SHA-256(token)) + '"', 43 characters inside the quotes.
    assert document.etag == publication.entity_tag(document.token)
    assert (document.etag[0], document.etag[-1], len(document.etag)) == ('"', '"', 45)
    assert publication.entity_tag(document.token + "x") != document.etag


def test_half_life_resigns_with_the_same_version(clinic: TestNode, clock: TestClock) -> None:
    clinic.publish()
    first = published(clinic)
    lifetime = clinic.node.settings.limits.capacity_lifetime
    clock.advance(lifetime // 2 - 1)
    assert published(clinic) == first

    clock.advance(1)
    second = published(clinic)
    assert second.version == first.version
    assert second.issued_at == clock() > first.issued_at
    assert second.expires_at == clock() + lifetime
    assert second.token != first.token
    assert verified(clinic, second).services == verified(clinic, first).services


def test_key_rotation_resigns_with_the_new_key(clinic: TestNode, clock: TestClock) -> None:
    clinic.publish()
    before = published(clinic)
    assert verified(clinic, before).signed_by == clinic.thumbprint
    with clinic.node.database.session() as session:
        new = clinic.node.keystore.rotate(session, clock(), OVERLAP)
    new_kid = next(key.kid for key in new if key.use == "sig")

    clock.advance(OVERLAP - 1)  # the new key is published, not active: nothing to re-sign
    with statements(clinic) as seen:
        assert published(clinic) == before
    assert len(seen) == 1, seen
    clock.advance(1)
    document = published(clinic)
    assert clinic.thumbprint == new_kid
    assert verified(clinic, document).signed_by == new_kid
    assert document.version == 2


def test_invalid_record_is_left_out_and_logged(
    clinic: TestNode, caplog: pytest.LogCaptureFixture
) -> None:
    good = clinic.publish()
    bad = clinic.publish(hsds_service("Broken"))
    with clinic.node.database.session() as session:  # as a hand edit of the database would
        service = session.get_one(Service, bad)
        service.record = {**service.record, "minimum_age": "twelve"}
        session.execute(update(CapacityPublication).values(version=CapacityPublication.version + 1))
    with caplog.at_level(logging.ERROR, logger="exchange_node.publication"):
        document = verified(clinic, published(clinic))

    assert [entry.service_id for entry in document.services] == [good]
    assert f"service {bad} left out" in caplog.text
    assert "/service/minimum_age" in caplog.text
    assert "twelve" not in caplog.text


def test_signature_is_stored_once_for_every_worker(clinic: TestNode) -> None:
    clinic.publish()
    document = published(clinic)
    with clinic.node.database.session() as session:
        row = session.execute(select(CapacityPublication)).scalar_one()
        assert (row.token, row.etag, row.signed_version) == (
            document.token,
            document.etag,
            document.version,
        )
        assert (row.issued_at, row.expires_at) == (document.issued_at, document.expires_at)


def test_concurrent_workers_sign_once_and_serve_the_same_bytes(
    clinic: TestNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several web workers find the document out of date at once: one signs, all serve it."""
    clinic.publish()
    signed: list[str] = []
    sign = publication.sign_capacity_document

    def counted(claims: Any, key: Any, limits: Any) -> str:
        signed.append(key.kid)
        time.sleep(0.05)  # hold the lock long enough for the others to queue behind it
        return sign(claims, key, limits)

    monkeypatch.setattr(publication, "sign_capacity_document", counted)
    barrier = threading.Barrier(4)

    def worker() -> PublishedDocument:
        barrier.wait()
        return published(clinic)

    with ThreadPoolExecutor(4) as pool:
        documents = list(pool.map(lambda _: worker(), range(4)))
    assert len({document.token for document in documents}) == 1
    assert len(signed) == 1
