"""OAuth 2 clients: secrets shown once and stored hashed, scopes, revocation, the CLI."""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select

from exchange_node.cli import main
from exchange_node.db.models import AccessToken
from exchange_node.errors import InvalidRequestError, NotFoundError
from exchange_node.services import clients

if TYPE_CHECKING:  # imported at run time, pytest would try to collect the class TestNode
    from tests.node.conftest import Federation, TestNode


@pytest.fixture
def clinic_node(federation: Federation) -> TestNode:
    return federation.add("clinic")


def run(test_node: TestNode, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--home", str(test_node.node.settings.home)])


def test_secret_is_random_and_stored_only_as_a_hash(clinic_node: TestNode) -> None:
    with clinic_node.node.database.session() as session:
        first, secret = clients.add_client(
            session, " Bed board ", ["capacity:write"], clinic_node.node.now()
        )
        second, other_secret = clients.add_client(
            session, "Bed board", ["capacity:write"], clinic_node.node.now()
        )
    assert first.name == "Bed board"
    assert first.client_id != second.client_id
    assert secret != other_secret
    assert len(secret) >= 43  # 32 random bytes
    assert secret not in first.secret_hash
    assert first.secret_hash.startswith("sha256:")
    assert clients.check_client_secret(first, secret)
    assert not clients.check_client_secret(first, other_secret)
    assert not clients.check_client_secret(second, secret)


@pytest.mark.parametrize(
    ("name", "scopes", "message"),
    [
        ("Beds", ["capacity:read"], "unknown scope capacity:read: choose from capacity:write, "
         "directory:read, referrals:read, referrals:write"),
        ("Beds", [], "at least one scope: choose from capacity:write"),
        ("Beds", [" "], "at least one scope"),
        ("  ", ["capacity:write"], "a client name needs 1 to 200 characters"),
        ("x" * 201, ["capacity:write"], "a client name needs 1 to 200 characters"),
    ],
)  # fmt: skip
def test_bad_names_and_scopes_are_refused(
    clinic_node: TestNode, name: str, scopes: list[str], message: str
) -> None:
    with (
        clinic_node.node.database.session() as session,
        pytest.raises(InvalidRequestError, match=message),
    ):
        clients.add_client(session, name, scopes, clinic_node.node.now())


def test_scopes_are_kept_once_each(clinic_node: TestNode) -> None:
    with clinic_node.node.database.session() as session:
        client, _ = clients.add_client(
            session,
            "Case system",
            ["referrals:read", "referrals:write", "referrals:read"],
            clinic_node.node.now(),
        )
    assert client.scopes == ["referrals:read", "referrals:write"]


def test_revoking_refuses_the_client_and_deletes_its_tokens(clinic_node: TestNode) -> None:
    now = clinic_node.node.now()
    with clinic_node.node.database.session() as session:
        client, _ = clients.add_client(session, "Beds", ["capacity:write"], now)
        clients.store_token(session, client, "a-token", ["capacity:write"], now, 3600)
    with clinic_node.node.database.session() as session:
        revoked = clients.revoke_client(session, client.client_id, now + 5)
        assert revoked.revoked_at == now + 5
        again = clients.revoke_client(session, client.client_id, now + 9)
        assert again.revoked_at == now + 5
    with clinic_node.node.database.session() as session:
        assert session.scalar(select(func.count()).select_from(AccessToken)) == 0
        assert clients.find_active_client(session, client.client_id) is None
        assert clients.get_client(session, client.client_id).revoked_at == now + 5
        with pytest.raises(NotFoundError, match="no client nope"):
            clients.revoke_client(session, "nope", now)


def test_cli_add_shows_the_secret_once_and_list_never(clinic_node: TestNode) -> None:
    added = run(
        clinic_node, "client", "add", "Bed board", "--scope", "capacity:write",
        "--scope", "referrals:read,referrals:write", "--json",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    shown = json.loads(added.output)
    secret = shown["client_secret"]
    assert shown["scopes"] == ["capacity:write", "referrals:read", "referrals:write"]
    with clinic_node.node.database.session() as session:
        stored = clients.get_client(session, shown["client_id"])
        assert clients.check_client_secret(stored, secret)
    for args in (["client", "list"], ["client", "list", "--json"]):
        listed = run(clinic_node, *args)
        assert listed.exit_code == 0, listed.output
        assert shown["client_id"] in listed.output
        assert secret not in listed.output
        assert stored.secret_hash.removeprefix("sha256:") not in listed.output
        assert "secret" not in listed.output
    [row] = json.loads(run(clinic_node, "client", "list", "--json").output)
    assert row["status"] == "active"
    assert row["revoked_at"] is None


def test_cli_add_prints_the_secret_with_a_warning(clinic_node: TestNode) -> None:
    added = run(clinic_node, "client", "add", "Beds", "--scope", "capacity:write")
    assert added.exit_code == 0, added.output
    lines = dict(line.split(None, 1) for line in added.output.splitlines()[:4])
    assert set(lines) == {"client_id", "client_secret", "name", "scopes"}
    assert "it is not shown again" in added.output
    with clinic_node.node.database.session() as session:
        stored = clients.get_client(session, lines["client_id"])
        assert clients.check_client_secret(stored, lines["client_secret"])


def test_cli_revoke(clinic_node: TestNode) -> None:
    added = json.loads(
        run(clinic_node, "client", "add", "Beds", "--scope", "capacity:write", "--json").output
    )
    revoked = run(clinic_node, "client", "revoke", added["client_id"])
    assert revoked.exit_code == 0, revoked.output
    assert revoked.output == f"{added['client_id']} (Beds) is revoked; its tokens no longer work.\n"
    [row] = json.loads(run(clinic_node, "client", "list", "--json").output)
    assert row["status"] == "revoked"
    assert row["revoked_at"] is not None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["client", "add", "Beds", "--scope", "capacity:read"],
         "Error: unknown scope capacity:read: choose from capacity:write, directory:read, "
         "referrals:read, referrals:write [invalid_request]"),
        (["client", "add", "Beds"], "Error: a client needs at least one scope"),
        (["client", "revoke", "nope"], "Error: no client nope: see 'exchange-node client list'"),
    ],
)  # fmt: skip
def test_cli_errors_are_one_line_without_traceback(
    clinic_node: TestNode, args: list[str], message: str
) -> None:
    result = run(clinic_node, *args)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    [line] = result.output.splitlines()
    assert line.startswith(message)


def test_client_ids_never_look_like_a_command_line_option(monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by CI: a client id starting with '-' was taken by 'client revoke' for an option."""
    monkeypatch.setattr(secrets, "token_urlsafe", lambda _n: "-wJ3dashedtoken")
    assert not clients.new_client_id().startswith("-")
