"""The directory page: searching what trusted peers published, filters, refusals, staleness."""

from __future__ import annotations

import re
import uuid
from html import unescape
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import pytest

from exchange_node.services import directory_sync
from tests.node.conftest import hsds_service
from tests.node.web.conftest import PageClient

if TYPE_CHECKING:
    from tests.node.conftest import TestClock, TestNode

DAY = 86_400
LIFETIME = 86_400  # the default capacity document lifetime


def arabic() -> list[dict[str, str]]:
    return [{"id": str(uuid.uuid4()), "code": "ar", "name": "Arabic"}]


@pytest.fixture
def listed(community: TestNode, clinic: TestNode) -> dict[str, str]:
    """Two clinic services, synced into the community's directory."""
    now = clinic.node.now()
    counselling = clinic.publish(
        hsds_service("Counselling", languages=arabic(), description="Talking therapy"),
        wait_days=4,
        verified_at=now - 3 * DAY,
    )
    homework = clinic.publish(
        hsds_service("Homework club"), status="waitlist", accepting=False, verified_at=now
    )
    directory_sync.sync_peer(community.node, clinic.url, force=True)
    return {"counselling": counselling, "homework": homework}


def cards(page: str) -> list[str]:
    """The result cards of a page, in order."""
    return [part.split("</li>")[0] for part in page.split('<li class="card')[1:]]


def test_search_finds_a_synced_service_with_its_badge_and_verified_age(
    staff: PageClient, clinic: TestNode, listed: dict[str, str]
) -> None:
    response = staff.get("/directory?q=counsel")
    assert response.status_code == 200
    (card,) = cards(response.get_data(as_text=True))
    assert "Counselling" in card
    assert "Open places" in card
    assert "Verified 3 days ago" in card
    assert "About 4 days" in card
    assert "Arabic" in card
    assert "Clinic" in card
    assert "Stale" not in card
    [refer] = re.findall(r'href="(/referrals/new\?[^"]*)"', unescape(card))
    assert parse_qs(urlsplit(refer).query) == {
        "peer": [clinic.url],
        "service": [listed["counselling"]],
    }
    assert "Refer someone" in card
    assert staff.get(refer).status_code == 200  # the referral form for this service

    assert staff.post("/language", {"lang": "ar", "next": "/"}).status_code == 303
    arabic_page = staff.get("/directory?q=counsel")
    assert arabic_page.status_code == 200
    assert 'dir="rtl"' in arabic_page.get_data(as_text=True)


def test_filters_narrow_the_results_and_pages_follow_them(
    staff: PageClient, listed: dict[str, str]
) -> None:
    everything = cards(staff.get("/directory").get_data(as_text=True))
    assert [("Counselling" in c, "Homework club" in c) for c in everything] == [
        (True, False),
        (False, True),
    ]
    assert "Not accepting referrals" in everything[1]

    for query in ("language=ar", "accepting=true", "status=capacity"):
        found = cards(staff.get(f"/directory?{query}").get_data(as_text=True))
        assert len(found) == 1, query
        assert "Counselling" in found[0], query

    first = staff.get("/directory?language=&limit=1").get_data(as_text=True)
    assert len(cards(first)) == 1
    assert 'href="/directory?language=&amp;limit=1&amp;offset=1"' in first
    second = staff.get("/directory?language=&limit=1&offset=1").get_data(as_text=True)
    assert "Homework club" in cards(second)[0]
    assert "Previous page" in second


def test_a_bad_filter_shows_the_form_again_with_the_reason(
    staff: PageClient, community: TestNode, listed: dict[str, str]
) -> None:
    response = staff.get("/directory?q=counselling&age=abc&status=capacity")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Give the age in whole years, from 0 to 200." in page
    assert 'value="abc"' in page
    assert 'value="counselling"' in page
    assert 'aria-invalid="true"' in page
    assert 'value="capacity" checked' in page
    assert cards(page) == []

    far = staff.get("/directory?radius_km=10")
    assert far.status_code == 400
    assert "A distance needs a point" in far.get_data(as_text=True)
    assert PageClient(community).get("/directory").status_code == 302  # not signed in


def test_stale_services_are_marked(
    staff: PageClient, listed: dict[str, str], clock: TestClock
) -> None:
    clock.advance(LIFETIME + 2 * 3_600)
    page = staff.get("/directory?q=counselling").get_data(as_text=True)
    (card,) = cards(page)
    assert '<span class="badge bad">Stale</span>' in card
    assert "Out of date: this information expired 2 hours ago." in card
