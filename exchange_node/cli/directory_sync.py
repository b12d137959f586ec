"""``exchange-node directory sync`` and ``directory peers``: poll peers' capacity now, and see
what is held of each peer. The polling itself is :mod:`exchange_node.services.directory_sync`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from exchange_node.cli.common import emit, home_option, json_option, open_node, timestamp
from exchange_node.services import directory_sync as service
from exchange_node.services.directory_sync import HeldDirectory, SyncResult


def describe(held: HeldDirectory) -> dict[str, Any]:
    return {
        "entity_id": held.entity_id,
        "organization": held.organization_name,
        "version": held.version,
        "services": held.services,
        "synced_at": timestamp(held.synced_at),
        "expires_at": timestamp(held.expires_at),
        "stale": held.stale,
        "failures": held.failures,
        "last_error": _error(held),
        "next_sync_at": timestamp(held.next_sync_at),
    }


def summary(result: SyncResult) -> str:
    """One line per peer: what this poll did, then what is held."""
    held = result.held
    if result.outcome == service.UPDATED:
        said = f"updated to version {held.version}"
    elif result.outcome == service.FAILED:
        said = f"failed: {_error(held)}"
    else:
        said = result.outcome.replace("_", " ")
    if held.version is None:
        return f"{held.entity_id}: {said}; nothing held yet"
    stale = f", stale since {timestamp(held.expires_at)}" if held.stale else ""
    return (
        f"{held.entity_id}: {said}; holding version {held.version}, {held.services} services, "
        f"synced {timestamp(held.synced_at)}{stale}"
    )


@click.command("sync")
@home_option
@click.option("--peer", "peer_url", help="Only this peer (its URL).")
@json_option
def sync(home: Path | None, peer_url: str | None, as_json: bool) -> None:
    """Poll trusted peers' capacity documents now, whether due or not.

    Prints a line per peer as it finishes, then a summary (with --json: one JSON list
    at the end). Exits with status 1 when a peer failed; what was held before is kept.
    """
    node = open_node(home)
    show = None if as_json else (lambda result: click.echo(summary(result)))
    if peer_url:
        results = [service.sync_peer(node, peer_url, force=True)]
        if show:
            show(results[0])
    else:
        results = service.sync_round(node, force=True, progress=show)
    if as_json:
        rows = [{"outcome": result.outcome, **describe(result.held)} for result in results]
        click.echo(json.dumps(rows, indent=2))
    elif not results:
        click.echo("No trusted peers to sync.")
    else:
        outcomes = [result.outcome for result in results]
        counts = ", ".join(
            f"{outcomes.count(name)} {name}"
            for name in (service.UPDATED, service.UNCHANGED, service.FAILED)
        )
        click.echo(f"{len(results)} peer{'' if len(results) == 1 else 's'}: {counts}.")
    if service.FAILED in (result.outcome for result in results):
        raise SystemExit(1)


@click.command("peers")
@home_option
@json_option
def peers(home: Path | None, as_json: bool) -> None:
    """What is held of each peer's capacity document, and how syncing it goes."""
    node = open_node(home)
    with node.database.session() as session:
        rows = [describe(held) for held in service.held_directories(node, session)]
    columns = ["entity_id", "version", "services", "synced_at", "stale", "failures", "last_error"]
    emit(rows, [*columns, "next_sync_at"], as_json)


def _error(held: HeldDirectory) -> str | None:
    if held.last_error_code is None:
        return None
    return f"{held.last_error_code}: {held.last_error}"


COMMANDS: list[click.Command] = [sync, peers]
