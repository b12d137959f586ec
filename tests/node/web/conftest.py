"""Fixtures for the web app's pages: a node, a signed-in browser-like client.

Pages call the same services that the tests in tests/node check on SQLite and
PostgreSQL, so page tests run on SQLite only (they test the pages, not storage).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from werkzeug.test import TestResponse

from exchange_node.services import users
from tests.node.conftest import TestNode

PASSWORD = "correct horse battery staple"


@pytest.fixture
def database_kind() -> str:
    return "sqlite"


class PageClient:
    """A Flask test client at the node's own https URL (the cookie is Secure), sending
    the session's CSRF token with every form unless told otherwise."""

    __test__ = False

    def __init__(self, node: TestNode) -> None:
        self.node = node
        self.client = node.app.test_client()
        self.base_url = node.url

    def get(self, path: str, **options: Any) -> TestResponse:
        return self.client.get(path, base_url=self.base_url, **options)

    def post(
        self, path: str, data: Mapping[str, Any] | None = None, *, csrf: bool = True, **options: Any
    ) -> TestResponse:
        form = dict(data or {})
        if csrf:
            form.setdefault("csrf_token", self.csrf_token())
        return self.client.post(path, data=form, base_url=self.base_url, **options)

    def csrf_token(self) -> str:
        with self.client.session_transaction(base_url=self.base_url) as session:
            if "csrf" not in session:
                self.get("/login")
        with self.client.session_transaction(base_url=self.base_url) as session:
            return str(session["csrf"])

    def sign_in(self, email: str, password: str = PASSWORD) -> TestResponse:
        return self.post("/login", {"email": email, "password": password})


def add_user(node: TestNode, email: str, role: str = "staff") -> str:
    with node.node.database.session() as session:
        users.add_user(session, email, role, PASSWORD, node.node.now())
    return email


@pytest.fixture
def staff(community: TestNode) -> PageClient:
    """A staff member of the community network, signed in."""
    client = PageClient(community)
    response = client.sign_in(add_user(community, "volunteer@community.example"))
    assert response.status_code == 303, response.get_data(as_text=True)
    return client


@pytest.fixture
def admin(community: TestNode) -> PageClient:
    """An administrator of the community network, signed in."""
    client = PageClient(community)
    response = client.sign_in(add_user(community, "admin@community.example", "admin"))
    assert response.status_code == 303, response.get_data(as_text=True)
    return client
