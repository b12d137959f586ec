"""``exchange-node keys ...``: this node's keys and their rotation."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import click

from exchange_node.cli.common import emit, home_option, json_option, open_node, timestamp


@click.group()
def keys() -> None:
    """This node's signing and encryption keys."""


@keys.command("show")
@home_option
@json_option
def show(home: Path | None, as_json: bool) -> None:
    """List keys with their state: next, active, retiring, retired."""
    node = open_node(home)
    with node.database.session() as session:
        statuses = node.keystore.statuses(session, node.now())
    rows = [asdict(status) for status in statuses]
    if not as_json:
        for row in rows:
            for name in ("published_at", "active_from", "retire_at"):
                row[name] = timestamp(row[name])
    emit(rows, ["kid", "use", "state", "published_at", "active_from", "retire_at"], as_json)


@keys.command("rotate")
@home_option
def rotate(home: Path | None) -> None:
    """Pre-publish new keys: they sign after the overlap; the old ones retire an overlap later."""
    node = open_node(home)
    overlap = node.settings.key_overlap_seconds
    with node.database.session() as session:
        new = node.keystore.rotate(session, node.now(), overlap)
    signing = next(key for key in new if key.use == "sig")
    switch = timestamp(node.now() + overlap)
    click.echo(f"New signing key {signing.kid} is published now and signs from {switch}.")
    click.echo("Peers follow on their own: a document signed by the current key announces it.")


COMMANDS = [keys]
