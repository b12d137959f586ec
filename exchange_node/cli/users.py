"""``exchange-node user ...``: the people who sign in to the web app.

Passwords are asked for with a hidden prompt (typed twice) or read from the
first line of standard input with ``--password-stdin``; they are never printed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from exchange_node.cli.common import emit, emit_one, home_option, json_option, open_node, timestamp
from exchange_node.db.models import User
from exchange_node.node import Node
from exchange_node.services import users as service


def describe(user: User) -> dict[str, Any]:
    return {
        "email": user.email,
        "role": user.role,
        "disabled": user.disabled,
        "created_at": timestamp(user.created_at),
    }


@click.group()
def user() -> None:
    """Web app accounts: add, list, disable."""


@user.command("add")
@home_option
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(service.ROLES), help="What they may do.")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input instead of prompting.",
)
@json_option
def add(home: Path | None, email: str, role: str, password_stdin: bool, as_json: bool) -> None:
    """Add a user who signs in with EMAIL and a password (at least 12 characters)."""
    node = _open(home)
    email = service.normalize_email(email)  # refuse a bad address before asking for a password
    password = _read_password(password_stdin)
    with node.database.session() as session:
        added = describe(service.add_user(session, email, role, password, node.now()))
    if as_json:
        emit_one(added, True)
    else:
        click.echo(f"Added {added['email']} ({added['role']}).")


@user.command("list")
@home_option
@json_option
def list_(home: Path | None, as_json: bool) -> None:
    """List users."""
    node = _open(home)
    with node.database.session() as session:
        rows = [describe(u) for u in service.list_users(session)]
    emit(rows, ["email", "role", "disabled", "created_at"], as_json)


@user.command("disable")
@home_option
@click.argument("email")
def disable(home: Path | None, email: str) -> None:
    """Stop a user from signing in (the account is kept)."""
    node = _open(home)
    with node.database.session() as session:
        disabled = service.disable_user(session, email, node.now())
        click.echo(f"{disabled.email} is disabled and can no longer sign in.")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        return line.removesuffix("\n").removesuffix("\r")
    password: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


def _open(home: Path | None) -> Node:
    """The node, with its database connections closed when the command ends."""
    node = open_node(home)
    click.get_current_context().call_on_close(node.database.dispose)
    return node


COMMANDS = [user]
