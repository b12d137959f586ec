"""Throttled sign-in on the page: 429 with Retry-After, before any password is checked."""

from __future__ import annotations

import hashlib
import logging

import pytest
from sqlalchemy import select

from exchange_node.db.models import LoginThrottle
from exchange_node.services.login_throttle import sign_in_keys
from exchange_node.web import ui_auth
from tests.node.conftest import Federation, TestClock, TestNode
from tests.node.web.conftest import PASSWORD, PageClient, add_user

EMAIL = "volunteer@community.example"
WRONG = "not the password at all"


@pytest.fixture
def volunteer(community: TestNode) -> str:
    return add_user(community, EMAIL)


def fail(client: PageClient, times: int) -> None:
    for _ in range(times):
        assert client.sign_in(EMAIL, WRONG).status_code == 401


def test_five_wrong_passwords_lock_the_account_until_the_lock_is_over(
    community: TestNode, volunteer: str, clock: TestClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = PageClient(community)
    fail(client, 5)
    refused = client.sign_in(EMAIL)  # the right password, too late
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "60"
    page = refused.get_data(as_text=True)
    assert "Too many failed sign-ins" in page
    assert "Try again in 1 minute" in page
    assert f'value="{EMAIL}"' in page  # the address stays in the form
    clock.advance(59)
    assert client.sign_in(EMAIL).headers["Retry-After"] == "1"
    clock.advance(1)
    assert client.sign_in(EMAIL).status_code == 303
    assert client.get("/").status_code == 200
    assert EMAIL not in caplog.text
    assert "volunteer" not in caplog.text


def test_a_locked_account_is_refused_before_its_password_is_checked(
    community: TestNode, volunteer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = PageClient(community)
    fail(client, 5)

    def must_not_run(*_: object) -> None:
        raise AssertionError("the password was checked although the account is locked")

    monkeypatch.setattr(ui_auth.users, "verify_password", must_not_run)
    assert client.sign_in(EMAIL).status_code == 429
    # Another browser (another session, the same address) is refused as well.
    assert PageClient(community).sign_in(EMAIL.upper()).status_code == 429


def test_a_success_starts_the_count_again(community: TestNode, volunteer: str) -> None:
    client = PageClient(community)
    fail(client, 4)
    assert client.sign_in(EMAIL).status_code == 303
    assert client.post("/logout").status_code == 303
    fail(client, 4)
    assert client.sign_in(EMAIL, WRONG).status_code == 401  # the fifth since the success
    assert client.sign_in(EMAIL).status_code == 429


def test_the_throttle_table_holds_no_address(community: TestNode, volunteer: str) -> None:
    fail(PageClient(community), 2)
    with community.node.database.session() as session:
        stored = session.execute(select(LoginThrottle)).scalars().all()
        values = [f"{row.key} {row.failures} {row.locked_until} {row.expires_at}" for row in stored]
    assert len(values) == 3  # the account from this address, the address, the account
    assert all(EMAIL not in value and "127.0.0.1" not in value for value in values)
    # keyed: a plain hash of a known address finds nothing in a copy of the table
    plain = {
        hashlib.sha256(f"{kind}\x00{value}".encode()).hexdigest()
        for kind, value in (("account", EMAIL), ("address", "127.0.0.1"))
    }
    assert not plain & {row.key for row in stored}
    assert all(row.failures == 2 for row in stored)


def test_wrong_passwords_from_elsewhere_do_not_lock_the_owner_out(
    community: TestNode, volunteer: str
) -> None:
    attacker = PageClient(community)
    elsewhere = {"REMOTE_ADDR": "203.0.113.66"}

    def attempt(password: str) -> int:
        form = {"email": EMAIL, "password": password}
        return attacker.post("/login", form, environ_base=elsewhere).status_code

    assert [attempt(WRONG) for _ in range(5)] == [401] * 5
    assert attempt(PASSWORD) == 429  # locked, there
    assert PageClient(community).sign_in(EMAIL).status_code == 303  # from the owner's address


def test_a_correct_sign_in_still_works_for_others(community: TestNode, volunteer: str) -> None:
    other = add_user(community, "intake@community.example")
    fail(PageClient(community), 5)
    assert PageClient(community).sign_in(other, PASSWORD).status_code == 303


@pytest.mark.parametrize(("trusted_proxies", "counted"), [(0, "127.0.0.1"), (1, "203.0.113.9")])
def test_behind_trusted_proxies_the_forwarded_address_is_counted(
    federation: Federation, trusted_proxies: int, counted: str
) -> None:
    node = federation.add("proxied", trusted_proxies=trusted_proxies)
    add_user(node, EMAIL)
    client = PageClient(node)
    response = client.post(
        "/login",
        {"email": EMAIL, "password": WRONG},
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
        headers={"X-Forwarded-For": "203.0.113.9"},
    )
    assert response.status_code == 401
    secret = node.app.secret_key
    assert isinstance(secret, bytes)
    expected = sign_in_keys(EMAIL, counted, secret=secret).address
    with node.node.database.session() as session:
        keys = set(session.scalars(select(LoginThrottle.key)))
    assert expected in keys
