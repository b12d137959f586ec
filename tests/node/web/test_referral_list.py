"""The referral list a page at a time: older pages reached, the query count flat."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from html import unescape
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import event

from exchange_node.services.delivery import deliver_until_idle
from exchange_node.services.referral_pages import LIST_PAGE
from tests.node.test_referrals_support import create, draft, list_service

if TYPE_CHECKING:
    from werkzeug.test import TestResponse

    from tests.node.conftest import TestNode
    from tests.node.web.conftest import PageClient


@contextmanager
def statements(test_node: TestNode) -> Iterator[list[str]]:
    """The SQL statements the node runs inside the block."""
    run: list[str] = []
    engine = test_node.node.database.engine

    def count(*args: Any) -> None:
        run.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield run
    finally:
        event.remove(engine, "before_cursor_execute", count)


def shown_ids(response: TestResponse) -> list[str]:
    return re.findall(r'href="/referrals/([0-9a-f-]{36})"', response.get_data(as_text=True))


def older_link(response: TestResponse) -> str | None:
    page = response.get_data(as_text=True)
    found = re.search(r'<a href="([^"]*)"[^>]*>Older referrals</a>', page)
    return unescape(found[1]) if found else None


@pytest.fixture
def sent_ids(community: TestNode, clinic: TestNode) -> list[str]:
    """More sent referrals than a page holds, oldest first (all made at the same second)."""
    service_id = list_service(community, clinic)
    return [create(community, draft(clinic, service_id)).referral_id for _ in range(LIST_PAGE + 3)]


def test_older_referrals_are_a_link_away_and_each_page_costs_the_same_queries(
    staff: PageClient, community: TestNode, sent_ids: list[str]
) -> None:
    assert deliver_until_idle(community.node).delivered == len(sent_ids)
    with statements(community) as first_run:
        first = staff.get("/referrals?role=sent")
    assert first.status_code == 200
    newest = list(reversed(sent_ids))
    assert shown_ids(first) == newest[:LIST_PAGE]
    assert "Delivered" in first.get_data(as_text=True)

    link = older_link(first)
    assert link is not None
    assert link.startswith("/referrals?role=sent&before=")
    with statements(community) as second_run:
        second = staff.get(link)
    assert second.status_code == 200
    assert shown_ids(second) == newest[LIST_PAGE:]
    assert older_link(second) is None  # the last page
    assert "Newest referrals" in second.get_data(as_text=True)
    # 50 rows or 3: the same statements (the rows with the peer's name, their deliveries).
    assert len(first_run) == len(second_run), (first_run, second_run)
    assert len([s for s in first_run if "outbox" in s]) == 1


def test_both_tables_page_apart_and_a_bad_cursor_is_refused(
    staff: PageClient, sent_ids: list[str]
) -> None:
    both = staff.get("/referrals")
    assert shown_ids(both) == list(reversed(sent_ids))[:LIST_PAGE]
    assert "No incoming referrals." in both.get_data(as_text=True)
    assert older_link(both) == older_link(staff.get("/referrals?role=sent"))
    assert staff.get("/referrals?before=abc").status_code == 400
    assert staff.get("/referrals?before=" + "9" * 40).status_code == 400
