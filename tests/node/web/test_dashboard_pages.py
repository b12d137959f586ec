"""The dashboard: open referrals on both sides, failed deliveries, peers to check."""

from __future__ import annotations

from typing import TYPE_CHECKING

from exchange_node.services import directory_sync, peers
from exchange_node.services.delivery import deliver_until_idle
from tests.node.test_referrals_support import GIVEN_NAME, PHONE, create, draft, list_service
from tests.node.web.conftest import PageClient, add_user

if TYPE_CHECKING:
    from tests.node.conftest import TestClock, TestNode


def signed_in(test_node: TestNode, email: str, role: str = "staff") -> PageClient:
    client = PageClient(test_node)
    assert client.sign_in(add_user(test_node, email, role)).status_code == 303
    return client


def section(page: str, heading_id: str) -> str:
    """The part of the page from one section's heading to the next section."""
    start = page.index(f'id="{heading_id}"')
    end = page.find("<section", start)
    return page[start : end if end != -1 else len(page)]


def test_a_received_referral_waits_on_the_clinics_dashboard_for_staff_and_admin(
    community: TestNode, clinic: TestNode, staff: PageClient
) -> None:
    referral_id = create(community, draft(clinic, list_service(community, clinic))).referral_id
    assert deliver_until_idle(community.node).delivered == 1

    for client in (
        signed_in(clinic, "intake@clinic.example"),
        signed_in(clinic, "admin@clinic.example", "admin"),
    ):
        page = client.get("/").get_data(as_text=True)
        incoming = section(page, "incoming")
        assert f'href="/referrals/{referral_id}"' in incoming
        assert "Youth drop-in" in incoming
        assert "Community" in incoming  # who sent it
        assert "Requested" in incoming
        assert "1 received referrals waiting for action" in page
        assert GIVEN_NAME not in page
        assert PHONE not in page
        assert client.get(f"/referrals/{referral_id}").status_code == 200
    sent = section(staff.get("/").get_data(as_text=True), "outgoing")
    assert f'href="/referrals/{referral_id}"' in sent
    assert "Clinic" in sent


def test_a_failed_delivery_shows_with_the_peers_error_code(
    community: TestNode, clinic: TestNode, staff: PageClient, admin: PageClient
) -> None:
    referral_id = create(community, draft(clinic, list_service(community, clinic))).referral_id
    with clinic.node.database.session() as session:
        peers.change_status(clinic.node, session, community.url, "suspended")
    assert deliver_until_idle(community.node).failed == 1

    for client in (staff, admin):
        page = client.get("/").get_data(as_text=True)
        failed = section(page, "failed")
        assert "Failed deliveries (1)" in failed
        assert f'href="/referrals/{referral_id}"' in failed
        assert "peer_not_trusted" in failed
        assert "No delivery has failed." not in page
        assert GIVEN_NAME not in page


def test_a_peer_without_fresh_capacity_is_listed_to_check(
    community: TestNode, clinic: TestNode, staff: PageClient, clock: TestClock
) -> None:
    peers_section = section(staff.get("/").get_data(as_text=True), "peers")
    assert "Clinic" in peers_section
    assert "No capacity information has been received from this peer yet." in peers_section

    clinic.publish()
    directory_sync.sync_peer(community.node, clinic.url, force=True)
    peers_section = section(staff.get("/").get_data(as_text=True), "peers")
    assert "Every trusted peer is answering and up to date." in peers_section

    clock.advance(86_400 + 1)  # the capacity document's lifetime
    peers_section = section(staff.get("/").get_data(as_text=True), "peers")
    assert "Its capacity information has expired" in peers_section
    assert "Stale" in peers_section
