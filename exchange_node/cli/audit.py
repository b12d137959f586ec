"""``exchange-node audit ...``: read the audit log and verify its hash chain.

``audit verify`` prints the hash of the last entry: note it somewhere else, since a log
cut short at the end still forms a valid chain, and only a changed last hash shows it.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from exchange_node.cli.common import emit, home_option, json_option, open_node
from exchange_node.protocol.messages import format_timestamp
from exchange_node.services import audit as service


def describe(entry: service.LoggedEntry) -> dict[str, Any]:
    shown = asdict(entry)
    # A hand-edited row may hold anything; listing it must not fail (verify names it).
    shown["time"] = format_timestamp(entry.time) if isinstance(entry.time, int) else entry.time
    return shown


@click.group()
def audit() -> None:
    """The tamper-evident audit log: list entries, verify the chain."""


@audit.command("list")
@home_option
@click.option("--action", metavar="CODE", help="Only this action, e.g. peer.suspended.")
@click.option("--after", "after_seq", type=int, metavar="SEQ", help="Entries after this one.")
@click.option(
    "--limit",
    type=click.IntRange(1, service.MAX_LIST_LIMIT),
    default=100,
    show_default=True,
    help="At most this many entries.",
)
@json_option
def list_(
    home: Path | None, action: str | None, after_seq: int | None, limit: int, as_json: bool
) -> None:
    """List entries in order, oldest first (page on with --after)."""
    node = open_node(home)
    with node.database.session() as session:
        found = service.entries(session, after_seq=after_seq, limit=limit, action=action)
    emit([describe(e) for e in found], ["seq", "time", "actor", "action", "subject"], as_json)


@audit.command("verify")
@home_option
@json_option
def verify(home: Path | None, as_json: bool) -> None:
    """Recompute every hash and link; name the first entry changed, removed or reordered."""
    node = open_node(home)
    with node.database.session() as session:
        result = service.verify(session)
    if as_json:
        click.echo(json.dumps({"ok": result.ok, **asdict(result)}, indent=2))
    elif result.ok:
        click.echo(f"audit log intact: {result.entries} entries, last hash {result.last_hash}")
    else:
        click.echo(
            f"audit log broken at entry {result.broken_seq}: {result.problem}: {result.detail}"
        )
    if not result.ok:
        raise SystemExit(1)


COMMANDS = [audit]
