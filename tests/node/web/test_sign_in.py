"""Signing in and out, sessions, CSRF, security headers and the language switch."""

from __future__ import annotations

from urllib.parse import unquote

from sqlalchemy import update

from exchange_node.db.models import User
from exchange_node.web.ui_pages import CONTENT_SECURITY_POLICY
from tests.node.conftest import TestNode
from tests.node.web.conftest import PASSWORD, PageClient, add_user


def test_pages_need_a_signed_in_user(community: TestNode) -> None:
    response = PageClient(community).get("/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/"


def test_sign_in_sets_a_hardened_cookie_and_shows_the_dashboard(community: TestNode) -> None:
    client = PageClient(community)
    response = client.sign_in(add_user(community, "volunteer@community.example"))
    assert response.status_code == 303
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "Secure" in cookie
    assert "SameSite=Lax" in cookie
    page = client.get("/")
    assert page.status_code == 200
    assert "Dashboard" in page.get_data(as_text=True)


def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(
    community: TestNode,
) -> None:
    client = PageClient(community)
    add_user(community, "volunteer@community.example")
    wrong = client.sign_in("volunteer@community.example", "not the password at all")
    unknown = client.sign_in("nobody@community.example")
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong e-mail address or password" in wrong.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_a_form_without_the_csrf_token_is_refused(community: TestNode) -> None:
    client = PageClient(community)
    add_user(community, "volunteer@community.example")
    response = client.post(
        "/login",
        {"email": "volunteer@community.example", "password": "x" * 20},
        csrf=False,
    )
    assert response.status_code == 400
    assert "bad_request" in response.get_data(as_text=True)
    forged = client.post("/login", {"csrf_token": "forged"})
    assert forged.status_code == 400


def test_a_form_from_another_origin_is_refused(staff: PageClient) -> None:
    response = staff.post("/logout", headers={"Origin": "https://evil.example"})
    assert response.status_code == 400
    assert staff.get("/").status_code == 200  # still signed in


def test_next_never_leaves_the_site(community: TestNode) -> None:
    client = PageClient(community)
    email = add_user(community, "volunteer@community.example")
    for target in (
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "/\t/evil.example",  # browsers drop the tab: //evil.example
        "/\n/evil.example",
        "/\r\nSet-Cookie: x=1",
        "javascript:alert(1)",
    ):
        response = client.post(
            "/login", {"email": email, "password": "correct horse battery staple", "next": target}
        )
        assert response.headers["Location"] == "/", target


def test_signing_out_ends_the_session(staff: PageClient) -> None:
    assert staff.post("/logout").status_code == 303
    assert staff.get("/").status_code == 302


def test_a_disabled_account_or_new_password_ends_its_sessions(
    staff: PageClient, community: TestNode
) -> None:
    with community.node.database.session() as session:
        session.execute(update(User).values(password_hash="$argon2id$v=19$changed"))
    assert staff.get("/").status_code == 302


def test_every_page_has_the_security_headers(staff: PageClient) -> None:
    for path in ("/", "/login", "/healthz", "/no-such-page"):
        headers = staff.get(path).headers
        assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "same-origin"


def test_the_language_switch_turns_the_page_right_to_left(staff: PageClient) -> None:
    response = staff.post("/language", {"lang": "ar", "next": "/"})
    assert response.status_code == 303
    page = staff.get("/").get_data(as_text=True)
    assert '<html lang="ar" dir="rtl">' in page
    assert staff.post("/language", {"lang": "en", "next": "/"}).status_code == 303
    assert '<html lang="en" dir="ltr">' in staff.get("/").get_data(as_text=True)


def test_the_browser_language_is_the_default(community: TestNode) -> None:
    page = PageClient(community).get("/login", headers={"Accept-Language": "ar,en;q=0.5"})
    assert 'dir="rtl"' in page.get_data(as_text=True)


def test_pages_are_never_cached(staff: PageClient) -> None:
    assert "no-store" in staff.get("/").headers["Cache-Control"]


def test_two_nodes_on_one_host_keep_separate_sessions(
    community: TestNode, clinic: TestNode
) -> None:
    """Browsers share cookies across ports of a host: each node names its cookie its own way."""
    name = community.app.config["SESSION_COOKIE_NAME"]
    assert name != clinic.app.config["SESSION_COOKIE_NAME"]
    assert name.startswith("exchange_session_")
    client = PageClient(community)
    response = client.sign_in(add_user(community, "volunteer@community.example"))
    assert response.headers["Set-Cookie"].startswith(f"{name}=")


def test_signed_in_next_with_control_characters_stays_on_the_site(staff: PageClient) -> None:
    for target in ("/%09/evil.example", "/%0A/x", "/%0D%0ALocation:%20//evil.example"):
        response = staff.get(f"/login?next={target}")
        assert response.status_code == 302, target
        assert response.headers["Location"] == "/", target
        language = staff.post("/language", {"lang": "ar", "next": unquote(target)})
        assert language.headers["Location"] == "/"


def test_forms_work_behind_a_tls_proxy(community: TestNode) -> None:
    """The proxy speaks plain http to the node; the browser names the public https origin."""
    client = PageClient(community)
    email = add_user(community, "volunteer@community.example")
    client.base_url = "http://community.example"  # what the app sees behind the proxy
    token = client.csrf_token()
    response = client.post(
        "/login",
        {"email": email, "password": PASSWORD, "csrf_token": token},
        headers={"Origin": community.url},
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    other = client.post("/login", {"csrf_token": token}, headers={"Origin": "https://evil.example"})
    assert other.status_code == 400


def test_every_main_page_offers_the_language_switch(admin: PageClient) -> None:
    for path in (
        "/",
        "/referrals",
        "/directory",
        "/directory?q=counselling",
        "/services",
        "/admin",
    ):
        page = admin.get(path).get_data(as_text=True)
        assert 'name="lang" value="ar"' in page, path


def test_an_unknown_address_is_a_page_for_browsers_and_a_problem_for_programs(
    staff: PageClient,
) -> None:
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    page = staff.get("/no-such-page", headers=browser)
    assert page.status_code == 404
    assert page.mimetype == "text/html"
    assert "not_found" in page.get_data(as_text=True)
    assert "Sign out" in page.get_data(as_text=True)  # the signed-in layout
    for path, headers in (("/no-such-page", {}), ("/api/v1/nothing", browser)):
        response = staff.get(path, headers=headers)
        assert response.status_code == 404
        assert response.mimetype == "application/problem+json"
