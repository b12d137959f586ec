"""Web app accounts: argon2id hashes, password and e-mail rules, and the ``user`` commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner, Result

from exchange_node.cli import main
from exchange_node.errors import AuthenticationError, ConflictError, InvalidRequestError
from exchange_node.services import users

if TYPE_CHECKING:  # imported at run time, pytest would try to collect the class TestNode
    from tests.node.conftest import Federation, TestNode

PASSWORD = "correct horse battery staple"


@pytest.fixture
def clinic_node(federation: Federation) -> TestNode:
    return federation.add("clinic")


def add(test_node: TestNode, email: str = "Ada@Clinic.Example ", role: str = "staff") -> None:
    with test_node.node.database.session() as session:
        users.add_user(session, email, role, PASSWORD, test_node.node.now())


def run(test_node: TestNode, *args: str, stdin: str | None = None) -> Result:
    home = str(test_node.node.settings.home)
    return CliRunner().invoke(main, [*args, "--home", home], input=stdin)


def test_passwords_are_stored_as_argon2id_and_verified(clinic_node: TestNode) -> None:
    add(clinic_node)
    with clinic_node.node.database.session() as session:
        [stored] = users.list_users(session)
        assert stored.email == "ada@clinic.example"
        assert stored.password_hash.startswith("$argon2id$")
        assert PASSWORD not in stored.password_hash
        assert users.verify_password(session, " ADA@clinic.example", PASSWORD).id == stored.id


def test_wrong_password_and_unknown_email_are_refused_alike(
    clinic_node: TestNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(clinic_node)
    checked: list[str] = []
    real_matches = users._matches

    def spy(password_hash: str, password: str) -> bool:
        checked.append(password_hash)
        return real_matches(password_hash, password)

    monkeypatch.setattr(users, "_matches", spy)
    with clinic_node.node.database.session() as session:
        messages = []
        for email, password in [
            ("ada@clinic.example", PASSWORD + "!"),
            ("bob@x.example", PASSWORD),
        ]:
            with pytest.raises(AuthenticationError) as caught:
                users.verify_password(session, email, password)
            messages.append(caught.value.detail)
    assert messages == ["wrong e-mail address or password"] * 2
    assert len(checked) == 2, "an unknown address must cost a hash verification too"
    assert checked[1].startswith("$argon2id$")


def test_disabled_user_is_refused_even_with_the_right_password(clinic_node: TestNode) -> None:
    add(clinic_node)
    with clinic_node.node.database.session() as session:
        assert users.disable_user(session, "ada@clinic.example", clinic_node.node.now()).disabled
        assert users.disable_user(
            session, "ada@clinic.example", clinic_node.node.now()
        ).disabled  # twice: no change
    with (
        clinic_node.node.database.session() as session,
        pytest.raises(AuthenticationError, match="disabled"),
    ):
        users.verify_password(session, "ada@clinic.example", PASSWORD)


def test_duplicate_email_is_refused_whatever_its_case(clinic_node: TestNode) -> None:
    add(clinic_node)
    with pytest.raises(ConflictError, match="already exists"):
        add(clinic_node, "ADA@clinic.example", "admin")
    with clinic_node.node.database.session() as session:
        assert len(users.list_users(session)) == 1


@pytest.mark.parametrize(
    ("email", "password", "message"),
    [
        ("ada@clinic.example", "short pass", "at least 12 characters"),
        ("ada@clinic.example", "x" * 1025, "at most 1024 characters"),
        ("ada@clinic.example", " Ada@Clinic.Example", "must not be the e-mail address"),
        ("ada", PASSWORD, "not an e-mail address"),
        ("ada@clinic", PASSWORD, "not an e-mail address"),
        ("a da@clinic.example", PASSWORD, "not an e-mail address"),
        ("ada@@clinic.example", PASSWORD, "not an e-mail address"),
        ("", PASSWORD, "not an e-mail address"),
    ],
)
def test_bad_emails_and_passwords_are_refused(
    clinic_node: TestNode, email: str, password: str, message: str
) -> None:
    with (
        clinic_node.node.database.session() as session,
        pytest.raises(InvalidRequestError, match=message),
    ):
        users.add_user(session, email, "staff", password, clinic_node.node.now())


def test_unknown_role_is_refused(clinic_node: TestNode) -> None:
    with pytest.raises(InvalidRequestError, match="choose one of admin, staff"):
        add(clinic_node, role="root")


def test_an_outdated_hash_is_replaced_on_sign_in(clinic_node: TestNode) -> None:
    add(clinic_node)
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024).hash(PASSWORD)
    with clinic_node.node.database.session() as session:
        users.get_user(session, "ada@clinic.example").password_hash = weak
    with clinic_node.node.database.session() as session:
        users.verify_password(session, "ada@clinic.example", PASSWORD)
    with clinic_node.node.database.session() as session:
        renewed = users.get_user(session, "ada@clinic.example").password_hash
    assert renewed != weak
    assert renewed.startswith("$argon2id$")


def test_cli_adds_lists_and_disables_users(clinic_node: TestNode) -> None:
    added = run(
        clinic_node, "user", "add", "Ada@Clinic.Example", "--role", "admin", "--password-stdin",
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert added.output == "Added ada@clinic.example (admin).\n"
    listed = run(clinic_node, "user", "list", "--json")
    assert listed.exit_code == 0, listed.output
    [row] = json.loads(listed.output)
    assert (row["email"], row["role"], row["disabled"]) == ("ada@clinic.example", "admin", False)
    assert set(row) == {"email", "role", "disabled", "created_at"}
    disabled = run(clinic_node, "user", "disable", "ada@clinic.example")
    assert disabled.exit_code == 0, disabled.output
    table = run(clinic_node, "user", "list").output.splitlines()
    assert table[0].split() == ["EMAIL", "ROLE", "DISABLED", "CREATED_AT"]
    assert table[1].split()[:3] == ["ada@clinic.example", "admin", "True"]
    with (
        clinic_node.node.database.session() as session,
        pytest.raises(AuthenticationError, match="disabled"),
    ):
        users.verify_password(session, "ada@clinic.example", PASSWORD)


def test_cli_prompts_for_the_password_twice_without_echoing_it(clinic_node: TestNode) -> None:
    result = run(
        clinic_node, "user", "add", "ada@clinic.example", "--role", "staff",
        stdin=f"{PASSWORD}\n{PASSWORD}\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    assert "Repeat for confirmation" in result.output
    with clinic_node.node.database.session() as session:
        assert users.verify_password(session, "ada@clinic.example", PASSWORD)


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["user", "add", "ada@clinic.example", "--role", "staff", "--password-stdin"],
         "short\n", "Error: the password must have at least 12 characters: choose another"),
        (["user", "add", "ada@clinic.example", "--role", "staff", "--password-stdin"],
         PASSWORD + "\n", "Error: a user ada@clinic.example already exists"),
        (["user", "add", "not-an-address", "--role", "staff", "--password-stdin"],
         PASSWORD + "\n", "Error: 'not-an-address' is not an e-mail address"),
        (["user", "disable", "bob@clinic.example"], None, "Error: no user bob@clinic.example"),
    ],
)  # fmt: skip
def test_cli_errors_are_one_line_without_traceback(
    clinic_node: TestNode, args: list[str], stdin: str | None, message: str
) -> None:
    add(clinic_node, "ada@clinic.example")
    result = run(clinic_node, *args, stdin=stdin)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    [line] = result.output.splitlines()
    assert line.startswith(message)
    assert PASSWORD not in result.output


def test_cli_on_a_folder_without_a_node_says_to_run_init(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["user", "list", "--home", str(tmp_path)])
    assert result.exit_code == 1
    [line] = result.output.splitlines()
    assert "run 'exchange-node init'" in line
