"""``exchange-node client ...``: OAuth 2 clients of integrations (client-credentials grant).

A new client's secret is printed once, by ``client add``; the node keeps only a
hash of it, so ``client list`` cannot show it and a lost secret means a new client.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from exchange_node.cli.common import emit, emit_one, home_option, json_option, open_node, timestamp
from exchange_node.db.models import OAuthClient
from exchange_node.node import Node
from exchange_node.services import clients as service


def describe(client: OAuthClient) -> dict[str, Any]:
    return {
        "client_id": client.client_id,
        "name": client.name,
        "scopes": list(client.scopes),
        "status": "active" if client.revoked_at is None else "revoked",
        "created_at": timestamp(client.created_at),
        "revoked_at": None if client.revoked_at is None else timestamp(client.revoked_at),
    }


@click.group()
def client() -> None:
    """OAuth 2 clients for integrations: add, list, revoke."""


@client.command("add")
@home_option
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    metavar="SCOPE",
    help=f"A scope the client may request ({', '.join(service.SCOPES)}); repeat for several.",
)
@json_option
def add(home: Path | None, name: str, scopes: tuple[str, ...], as_json: bool) -> None:
    """Add a client called NAME; prints its client_id and secret (shown only this once)."""
    node = _open(home)
    chosen = [scope for value in scopes for scope in value.replace(",", " ").split()]
    with node.database.session() as session:
        row, secret = service.add_client(session, name, chosen, node.now())
        added = describe(row)
    if as_json:
        emit_one({**added, "client_secret": secret}, True)
        return
    emit_one(
        {
            "client_id": added["client_id"],
            "client_secret": secret,
            "name": added["name"],
            "scopes": added["scopes"],
        },
        False,
    )
    click.echo("Store the secret now: it is not shown again. Tokens come from POST /oauth/token.")


@client.command("list")
@home_option
@json_option
def list_(home: Path | None, as_json: bool) -> None:
    """List clients (never their secrets)."""
    node = _open(home)
    with node.database.session() as session:
        rows = [describe(c) for c in service.list_clients(session)]
    if not as_json:
        for row in rows:
            row["scopes"] = " ".join(row["scopes"])
    emit(rows, ["client_id", "name", "scopes", "status", "created_at"], as_json)


@client.command("revoke")
@home_option
@click.argument("client_id")
def revoke(home: Path | None, client_id: str) -> None:
    """Refuse a client from now on; its access tokens stop working at once."""
    node = _open(home)
    with node.database.session() as session:
        revoked = service.revoke_client(session, client_id, node.now())
        click.echo(f"{revoked.client_id} ({revoked.name}) is revoked; its tokens no longer work.")


def _open(home: Path | None) -> Node:
    """The node, with its database connections closed when the command ends."""
    node = open_node(home)
    click.get_current_context().call_on_close(node.database.dispose)
    return node


COMMANDS = [client]
