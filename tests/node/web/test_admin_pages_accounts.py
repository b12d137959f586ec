"""Administration pages for accounts: users who sign in, and integration clients."""

from __future__ import annotations

import re

from sqlalchemy import select

from exchange_node.db.models import AuditEntry, OAuthClient, User
from exchange_node.services import clients
from tests.node.conftest import TestNode
from tests.node.web.conftest import PASSWORD, PageClient

NEW_EMAIL = "intake@community.example"


def text(response: object) -> str:
    return response.get_data(as_text=True)  # type: ignore[attr-defined, no-any-return]


def find_user(node: TestNode, email: str) -> User | None:
    with node.node.database.session() as session:
        return session.scalar(select(User).where(User.email == email))


def new_user(**changes: str) -> dict[str, str]:
    form = {"email": NEW_EMAIL, "role": "staff", "password": PASSWORD, "password_again": PASSWORD}
    return form | changes


def test_a_bad_password_keeps_the_form_and_stores_no_user(
    admin: PageClient, community: TestNode
) -> None:
    short = admin.post("/admin/users/add", new_user(password="short", password_again="short"))
    assert short.status_code == 400
    page = text(short)
    assert "The password needs at least 12 characters." in page
    assert f'value="{NEW_EMAIL}"' in page
    assert 'value="short"' not in page  # a password is never sent back
    assert '<option value="staff" selected>' in page
    differ = admin.post("/admin/users/add", new_user(password_again="something else entirely"))
    assert differ.status_code == 400
    assert "The two passwords differ" in text(differ)
    same = admin.post("/admin/users/add", new_user(password=NEW_EMAIL, password_again=NEW_EMAIL))
    assert "must not be the e-mail address" in text(same)
    bad_email = admin.post("/admin/users/add", new_user(email="not an address"))
    assert "Give an e-mail address like name@example.org." in text(bad_email)
    assert find_user(community, NEW_EMAIL) is None


def test_an_administrator_adds_a_user_who_can_sign_in(
    admin: PageClient, community: TestNode
) -> None:
    added = admin.post("/admin/users/add", new_user(role="admin"))
    assert added.status_code == 303
    user = find_user(community, NEW_EMAIL)
    assert user is not None
    assert user.role == "admin"
    listing = text(admin.get(added.headers["Location"]))
    assert "The account was added" in listing
    assert NEW_EMAIL in listing
    assert "$argon2" not in listing
    assert user.password_hash not in listing
    with community.node.database.session() as session:
        entry = session.scalar(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1))
    assert entry is not None
    assert (entry.action, entry.subject) == ("user.added", str(user.id))
    assert PageClient(community).sign_in(NEW_EMAIL).status_code == 303
    taken = admin.post("/admin/users/add", new_user())
    assert taken.status_code == 409
    assert "There is already an account with this e-mail address." in text(taken)


def test_a_user_is_disabled_but_not_yourself(
    admin: PageClient, staff: PageClient, community: TestNode
) -> None:
    me = find_user(community, "admin@community.example")
    volunteer = find_user(community, "volunteer@community.example")
    assert me is not None
    assert volunteer is not None
    refused = admin.post(f"/admin/users/{me.id}/disable")
    assert refused.status_code == 303
    assert "You cannot disable your own account." in text(admin.get("/admin/users"))
    assert find_user(community, me.email).disabled is False  # type: ignore[union-attr]

    assert staff.get("/").status_code == 200
    assert admin.post(f"/admin/users/{volunteer.id}/disable").status_code == 303
    assert find_user(community, volunteer.email).disabled is True  # type: ignore[union-attr]
    assert staff.get("/").status_code == 302  # the session ended
    assert "Disabled" in text(admin.get("/admin/users"))
    assert admin.post("/admin/users/99999/disable").status_code == 404


def test_a_new_client_secret_is_shown_once(admin: PageClient, community: TestNode) -> None:
    none_chosen = admin.post("/admin/clients/add", {"name": "Booking system"})
    assert none_chosen.status_code == 400
    assert "Choose at least one scope." in text(none_chosen)
    assert 'value="Booking system"' in text(none_chosen)

    created = admin.post(
        "/admin/clients/add",
        {"name": "Booking system", "scopes": ["capacity:write", "directory:read"]},
    )
    assert created.status_code == 200
    assert "no-store" in created.headers["Cache-Control"]
    page = text(created)
    secret = re.search(r'<code class="secret">([^<]+)</code>', page)
    client_id = re.search(r"<code>(c[A-Za-z0-9_-]{20,})</code>", page)
    assert secret is not None
    assert client_id is not None
    assert "shown only this once" in page
    with community.node.database.session() as session:
        client = clients.get_client(session, client_id.group(1))
        assert clients.check_client_secret(client, secret.group(1))
        assert client.scopes == ["capacity:write", "directory:read"]

    for _ in range(2):
        listing = text(admin.get("/admin/clients"))
        assert client_id.group(1) in listing
        assert secret.group(1) not in listing
    assert admin.post(f"/admin/clients/{client_id.group(1)}/revoke").status_code == 303
    with community.node.database.session() as session:
        revoked = session.scalar(
            select(OAuthClient.revoked_at).where(OAuthClient.client_id == client_id.group(1))
        )
    assert revoked == community.node.now()
    assert "Revoked" in text(admin.get("/admin/clients"))


def test_staff_cannot_add_accounts(staff: PageClient, community: TestNode) -> None:
    assert staff.post("/admin/users/add", new_user()).status_code == 403
    assert find_user(community, NEW_EMAIL) is None
    assert (
        staff.post("/admin/clients/add", {"name": "x", "scopes": "capacity:write"}).status_code
        == 403
    )
    with community.node.database.session() as session:
        assert session.scalars(select(OAuthClient)).all() == []
