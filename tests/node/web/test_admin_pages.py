"""Administration pages: who may open them; peers, keys and the audit log."""

from __future__ import annotations

import re

from sqlalchemy import select, update

from exchange_node.db.models import AuditEntry, OwnKey, Peer, PeerStatus, User
from exchange_node.services import audit, peers
from tests.node.conftest import Federation, TestNode
from tests.node.web.conftest import PageClient

ADMIN_PAGES = (
    "/admin",
    "/admin/peers",
    "/admin/peers/add",
    "/admin/peers/1",
    "/admin/users",
    "/admin/users/add",
    "/admin/clients",
    "/admin/clients/add",
    "/admin/keys",
    "/admin/keys/rotate",
    "/admin/audit",
)
ADMIN_ACTIONS = (
    "/admin/peers/add",
    "/admin/peers/1/accept",
    "/admin/peers/1/suspend",
    "/admin/peers/1/resume",
    "/admin/peers/1/remove",
    "/admin/peers/1/refresh",
    "/admin/users/add",
    "/admin/users/1/disable",
    "/admin/clients/add",
    "/admin/clients/c1/revoke",
    "/admin/keys/rotate",
)


def text(response: object) -> str:
    return response.get_data(as_text=True)  # type: ignore[attr-defined, no-any-return]


def peer_row(node: TestNode, entity_id: str) -> Peer | None:
    with node.node.database.session() as session:
        return session.scalar(select(Peer).where(Peer.entity_id == entity_id))


def admin_id(node: TestNode) -> int:
    with node.node.database.session() as session:
        return int(session.scalar(select(User.id).where(User.role == "admin")) or 0)


def last_entry(node: TestNode) -> AuditEntry:
    with node.node.database.session() as session:
        entry = session.scalar(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1))
        assert entry is not None
        return entry


def test_staff_get_403_on_every_administration_page_and_action(
    staff: PageClient, clinic: TestNode, community: TestNode
) -> None:
    for path in ADMIN_PAGES:
        response = staff.get(path)
        assert response.status_code == 403, path
        assert "Your account cannot open this page" in text(response)
    for path in ADMIN_ACTIONS:
        assert staff.post(path, {"thumbprint": clinic.thumbprint}).status_code == 403, path
    assert peer_row(community, clinic.url).status == PeerStatus.TRUSTED  # type: ignore[union-attr]
    assert "Administration" not in text(staff.get("/"))  # not in the menu either


def test_someone_signed_out_is_sent_to_sign_in(community: TestNode) -> None:
    response = PageClient(community).get("/admin/keys")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/admin/keys"


def test_a_peer_is_added_only_with_the_thumbprint_that_signs_it(
    admin: PageClient, federation: Federation, community: TestNode
) -> None:
    school = federation.add("school")
    wrong = admin.post("/admin/peers/add", {"url": school.url, "thumbprint": community.thumbprint})
    assert wrong.status_code == 400
    page = text(wrong)
    assert "is not signed by this thumbprint" in page
    assert f'value="{school.url}"' in page  # what was typed is kept
    assert peer_row(community, school.url) is None

    added = admin.post("/admin/peers/add", {"url": school.url, "thumbprint": school.thumbprint})
    assert added.status_code == 303
    peer = peer_row(community, school.url)
    assert peer is not None
    assert peer.status == PeerStatus.TRUSTED
    assert peer.pinned_thumbprint == school.thumbprint
    assert added.headers["Location"] == f"/admin/peers/{peer.id}"
    shown = text(admin.get(added.headers["Location"]))
    assert "Trusted" in shown
    assert "is now trusted" in shown
    assert last_entry(community).action == "peer.added"
    assert last_entry(community).actor == f"user:{admin_id(community)}"
    # The school was asked to trust the community network: a pending request there.
    assert peer_row(school, community.url).status == PeerStatus.PENDING  # type: ignore[union-attr]


def test_an_unreachable_peer_is_a_clear_message(admin: PageClient, community: TestNode) -> None:
    thumbprint = "A" * 43
    response = admin.post(
        "/admin/peers/add", {"url": "https://nowhere.example", "thumbprint": thumbprint}
    )
    assert response.status_code == 502
    assert "could not be reached" in text(response)
    malformed = admin.post(
        "/admin/peers/add", {"url": "https://nowhere.example", "thumbprint": "x"}
    )
    assert malformed.status_code == 400
    assert "A thumbprint has 43 letters" in text(malformed)
    assert peer_row(community, "https://nowhere.example") is None


def test_a_peering_request_is_accepted_only_with_its_thumbprint(
    admin: PageClient, federation: Federation, community: TestNode
) -> None:
    school = federation.add("school")
    with school.node.database.session() as session:
        peers.add_peer(school.node, session, community.url, community.thumbprint)
    pending = peer_row(community, school.url)
    assert pending is not None
    assert pending.status == PeerStatus.PENDING
    listing = text(admin.get("/admin/peers"))
    assert "Review the request" in listing
    assert f"/admin/peers/{pending.id}" in listing

    path = f"/admin/peers/{pending.id}/accept"
    wrong = admin.post(path, {"thumbprint": community.thumbprint})
    assert wrong.status_code == 400
    assert "is not signed by this thumbprint" in text(wrong)
    assert peer_row(community, school.url).status == PeerStatus.PENDING  # type: ignore[union-attr]
    accepted = admin.post(path, {"thumbprint": school.thumbprint})
    assert accepted.status_code == 303
    assert peer_row(community, school.url).status == PeerStatus.TRUSTED  # type: ignore[union-attr]
    assert last_entry(community).action == "peer.accepted"


def test_a_peering_request_can_be_declined(
    admin: PageClient, federation: Federation, community: TestNode
) -> None:
    school = federation.add("school")
    with school.node.database.session() as session:
        peers.add_peer(school.node, session, community.url, community.thumbprint)
    pending = peer_row(community, school.url)
    assert pending is not None
    assert "Decline the request" in text(admin.get(f"/admin/peers/{pending.id}"))
    assert admin.post(f"/admin/peers/{pending.id}/remove").status_code == 303
    assert peer_row(community, school.url).status == PeerStatus.REMOVED  # type: ignore[union-attr]


def test_a_peer_is_suspended_and_resumed(
    admin: PageClient, clinic: TestNode, community: TestNode
) -> None:
    peer = peer_row(community, clinic.url)
    assert peer is not None
    suspended = admin.post(f"/admin/peers/{peer.id}/suspend")
    assert suspended.status_code == 303
    assert peer_row(community, clinic.url).status == PeerStatus.SUSPENDED  # type: ignore[union-attr]
    assert last_entry(community).action == "peer.suspended"
    assert last_entry(community).actor == f"user:{admin_id(community)}"
    page = text(admin.get(suspended.headers["Location"]))
    assert "The peer is suspended" in page
    assert "Resume: trust again" in page

    again = admin.post(f"/admin/peers/{peer.id}/suspend")
    assert again.status_code == 303
    assert "This change is not possible" in text(admin.get(again.headers["Location"]))

    assert admin.post(f"/admin/peers/{peer.id}/resume").status_code == 303
    assert peer_row(community, clinic.url).status == PeerStatus.TRUSTED  # type: ignore[union-attr]
    assert last_entry(community).action == "peer.resumed"
    listing = text(admin.get("/admin/peers"))
    assert clinic.url in listing
    assert clinic.thumbprint in listing


def test_a_refresh_that_fails_is_a_message_kept_on_the_peer(
    admin: PageClient, clinic: TestNode, community: TestNode, federation: Federation
) -> None:
    peer = peer_row(community, clinic.url)
    assert peer is not None
    assert admin.post(f"/admin/peers/{peer.id}/refresh").status_code == 303
    assert "were fetched again" in text(admin.get(f"/admin/peers/{peer.id}"))
    del federation.transport.apps[clinic.url]  # the clinic is down
    response = admin.post(f"/admin/peers/{peer.id}/refresh")
    assert response.status_code == 303
    page = text(admin.get(f"/admin/peers/{peer.id}"))
    assert "could not be refreshed" in page
    assert "cannot be reached" in page
    assert peer_row(community, clinic.url).refresh_failures == 1  # type: ignore[union-attr]


def test_keys_are_rotated_after_a_confirmation(admin: PageClient, community: TestNode) -> None:
    before = community.thumbprint
    keys = text(admin.get("/admin/keys"))
    assert before in keys
    assert "Rotate keys…" in keys
    confirm = text(admin.get("/admin/keys/rotate"))
    assert "After the overlap of 1 hour" in confirm  # the test nodes' key_overlap_seconds
    assert admin.post("/admin/keys/rotate", csrf=False).status_code == 400
    with community.node.database.session() as session:
        assert len(session.scalars(select(OwnKey)).all()) == 2

    rotated = admin.post("/admin/keys/rotate")
    assert rotated.status_code == 303
    with community.node.database.session() as session:
        kids = {key.kid for key in session.scalars(select(OwnKey))}
    assert len(kids) == 4
    page = text(admin.get("/admin/keys"))
    assert "New keys are published" in page
    assert "A rotation is under way" in page
    assert page.count("Next (published, not signing yet)") == 2
    assert last_entry(community).action == "keys.rotated"

    again = admin.post("/admin/keys/rotate")
    assert "A rotation is already under way" in text(admin.get(again.headers["Location"]))
    with community.node.database.session() as session:
        assert len(session.scalars(select(OwnKey)).all()) == 4


def test_the_audit_log_page_names_a_tampered_entry(
    admin: PageClient, clinic: TestNode, community: TestNode
) -> None:
    page = text(admin.get("/admin/audit"))
    assert "Verified" in page
    assert "peer.added" in page
    entries = [int(seq) for seq in re.findall(r"<tr>\s*<td>(\d+)", page)]
    assert entries == sorted(entries, reverse=True)  # newest first
    assert "Verified" in text(admin.get("/admin"))

    with community.node.database.session() as session:
        session.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(subject="changed"))
    broken = text(admin.get("/admin/audit"))
    assert "Not verified" in broken
    assert "entry 2 was changed" in broken
    assert "The 1 entry before it checks out." in broken
    assert "entry 2 was changed" in text(admin.get("/admin"))


def test_the_audit_log_is_shown_a_page_at_a_time(admin: PageClient, community: TestNode) -> None:
    with community.node.database.session() as session:
        for number in range(60):
            audit.record(session, actor="cli", action="test.entry", subject=str(number), now=1)
    first = text(admin.get("/admin/audit"))
    shown = [int(seq) for seq in re.findall(r"<tr>\s*<td>(\d+)", first)]
    assert len(shown) == 50
    older = re.search(r'href="/admin/audit\?before=(\d+)">Older entries', first)
    assert older is not None
    rest = text(admin.get(f"/admin/audit?before={older.group(1)}"))
    more = [int(seq) for seq in re.findall(r"<tr>\s*<td>(\d+)", rest)]
    assert more == list(range(min(shown) - 1, 0, -1))
    assert "Newer entries" in rest
    assert "Older entries" not in rest
