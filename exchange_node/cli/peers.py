"""``exchange-node peer ...``: adding, accepting, listing and managing trusted peers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from exchange_node.cli.common import emit, emit_one, home_option, json_option, open_node, timestamp
from exchange_node.db.models import Peer, PeerStatus
from exchange_node.errors import ExchangeError
from exchange_node.protocol.errors import ProtocolError
from exchange_node.services import peers as service


def describe(peer: Peer) -> dict[str, Any]:
    return {
        "entity_id": peer.entity_id,
        "status": peer.status,
        "organization": peer.organization_name,
        "kind": peer.organization_kind,
        "pinned_thumbprint": peer.pinned_thumbprint,
        "signing_keys": [key.kid for key in peer.keys if key.use == "sig"],
        "languages": list(peer.languages),
        "requested_by_peer": peer.requested_by_peer,
        "request_message": peer.request_message,
        "refreshed_at": timestamp(peer.refreshed_at),
        "configuration_expires_at": timestamp(peer.configuration_expires_at),
        "last_error": peer.last_error,
    }


@click.group()
def peer() -> None:
    """Trusted peers: add, accept, list, suspend, resume, remove, refresh."""


@peer.command("add")
@home_option
@click.argument("url")
@click.option(
    "--thumbprint", required=True, help="The peer's signing-key thumbprint, told out of band."
)
@click.option("--message", default="", help="A note shown to the peer's administrator.")
@json_option
def add(home: Path | None, url: str, thumbprint: str, message: str, as_json: bool) -> None:
    """Trust the node at URL if it is signed by THUMBPRINT, and ask it to trust this node."""
    node = open_node(home)
    with node.database.session() as session:
        added = describe(service.add_peer(node, session, url, thumbprint, message))
    if as_json:
        emit_one(added, True)
        return
    click.echo(f"{added['entity_id']} ({added['organization']}) is now trusted.")
    if added["last_error"]:
        click.echo(f"Warning: {added['last_error']}; try 'exchange-node peer add' again later.")
    else:
        click.echo(
            "A peering request was sent; its administrator accepts it with this node's thumbprint."
        )


@peer.command("list")
@home_option
@click.option(
    "--status", type=click.Choice([s.value for s in PeerStatus]), help="Only peers in this state."
)
@json_option
def list_(home: Path | None, status: str | None, as_json: bool) -> None:
    """List peers."""
    node = open_node(home)
    with node.database.session() as session:
        rows = [describe(p) for p in service.list_peers(session, status)]
    emit(
        rows, ["entity_id", "status", "organization", "kind", "refreshed_at", "last_error"], as_json
    )


@peer.command("requests")
@home_option
@json_option
def requests_(home: Path | None, as_json: bool) -> None:
    """List peering requests waiting for an administrator (pending peers)."""
    node = open_node(home)
    with node.database.session() as session:
        rows = [describe(p) for p in service.list_peers(session, PeerStatus.PENDING)]
    for row in rows:
        row["thumbprints"] = ", ".join(row["signing_keys"])
    emit(rows, ["entity_id", "organization", "kind", "thumbprints", "request_message"], as_json)
    if rows and not as_json:
        click.echo(
            "Accept one with: exchange-node peer accept URL --thumbprint TP "
            "(after confirming TP with its administrator)."
        )


@peer.command("accept")
@home_option
@click.argument("url")
@click.option("--thumbprint", required=True, help="The thumbprint its administrator told you.")
def accept(home: Path | None, url: str, thumbprint: str) -> None:
    """Trust a pending peer after confirming its thumbprint out of band."""
    node = open_node(home)
    with node.database.session() as session:
        accepted = service.accept_peer(node, session, url, thumbprint)
        click.echo(f"{accepted.entity_id} ({accepted.organization_name}) is now trusted.")


@peer.command("show")
@home_option
@click.argument("url")
@json_option
def show(home: Path | None, url: str, as_json: bool) -> None:
    """Show one peer."""
    node = open_node(home)
    with node.database.session() as session:
        emit_one(describe(service.get_peer(session, url)), as_json)


def _status_command(name: str, status: str, summary: str) -> click.Command:
    @peer.command(name, help=summary)
    @home_option
    @click.argument("url")
    def command(home: Path | None, url: str) -> None:
        node = open_node(home)
        with node.database.session() as session:
            changed = service.change_status(node, session, url, status)
            click.echo(f"{changed.entity_id} is now {changed.status}.")

    return command


_status_command("suspend", PeerStatus.SUSPENDED, "Stop exchanging with a peer, keeping its record.")
_status_command("resume", PeerStatus.TRUSTED, "Trust a suspended peer again.")
_status_command("remove", PeerStatus.REMOVED, "Remove a peer (it must be added or accepted again).")


@peer.command("refresh")
@home_option
@click.argument("url", required=False)
def refresh(home: Path | None, url: str | None) -> None:
    """Fetch peers' entity configurations now (following key rotations); one peer, or all."""
    node = open_node(home)
    with node.database.session() as session:
        targets = (
            [url]
            if url
            else [
                p.entity_id
                for p in service.list_peers(session)
                if p.status in (PeerStatus.TRUSTED, PeerStatus.SUSPENDED)
            ]
        )
    failures = 0
    for entity_id in targets:
        with node.database.session() as session:
            try:
                refreshed = service.refresh_peer(
                    node, session, service.get_peer(session, entity_id)
                )
                click.echo(f"{entity_id}: refreshed, {len(refreshed.keys)} keys")
            except (ExchangeError, ProtocolError) as e:
                failures += 1
                click.echo(f"{entity_id}: failed: {e.detail} [{e.code}]")
    if failures:
        raise SystemExit(1)


COMMANDS = [peer]
