"""Issue 5 item 6, sending side: the database never holds a referral's personal data in clear.

After a referral is created (and a status change with free text is made), the SQLite
file and its write-ahead log, or every row of every table on PostgreSQL, are searched
for the person's name, phone number and the contact notes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text

from exchange_node.services.referrals import update_status
from tests.node.test_referrals_support import (
    CONTACT_NOTES,
    GIVEN_NAME,
    PHONE,
    create,
    draft,
    service_id,
)

if TYPE_CHECKING:
    from tests.node.conftest import TestNode

__all__ = ["service_id"]

REASON_TEXT = "Quorvathine moved to Lindqvistholm"
SECRETS = (GIVEN_NAME, PHONE, CONTACT_NOTES, REASON_TEXT)


def stored_bytes(test_node: TestNode) -> bytes:
    """Everything the database holds, as bytes: the files on SQLite, the rows on PostgreSQL."""
    database = test_node.node.database
    if database.is_sqlite:
        path = Path(database.url.removeprefix("sqlite:///"))
        files = [path, path.with_name(path.name + "-wal")]
        assert path.stat().st_size > 0
        return b"".join(file.read_bytes() for file in files if file.exists())
    tables = inspect(database.engine).get_table_names()
    assert "referrals" in tables
    assert "outbox" in tables
    dump = []
    with database.engine.connect() as connection:
        for table in tables:
            rows = connection.execute(text(f'SELECT t::text FROM "{table}" AS t'))  # noqa: S608
            dump += [row[0] for row in rows]
    return "\n".join(dump).encode()


def test_the_referring_node_stores_no_personal_data_in_clear(
    community: TestNode, clinic: TestNode, service_id: str
) -> None:
    sent = create(community, draft(clinic, service_id))
    node = community.node
    with node.database.session() as session:
        update_status(
            node,
            session,
            sent.referral_id,
            status="cancelled",
            reason_code="other",
            reason_text=REASON_TEXT,
            note=CONTACT_NOTES,
            actor="cli",
            now=node.now(),
        )
    stored = stored_bytes(community)
    assert sent.referral_id.encode() in stored  # the search does see the rows
    for secret in SECRETS:
        assert secret.encode() not in stored, secret
        assert secret.encode("utf-16-le") not in stored, secret
