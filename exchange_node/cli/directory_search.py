"""``exchange-node directory search``: search trusted peers' services held locally.

The same search as ``GET /api/v1/directory``, on this node's copy of its peers'
capacity documents: nothing is sent to a peer. ``--json`` prints the API's answer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from exchange_node.cli.common import emit, home_option, json_option, open_node
from exchange_node.protocol.wire import ORGANIZATION_KINDS
from exchange_node.services import directory_search as service
from exchange_node.services.directory_search import DirectoryQuery, SearchPage, SearchResult
from exchange_node.web.directory_schemas import page_json

COLUMNS = ("peer", "service", "capacity", "accepting", "verified", "stale")


@click.command("search")
@home_option
@click.argument("text", nargs=-1)
@click.option(
    "--category",
    "categories",
    multiple=True,
    help="Taxonomy term code or name (repeatable: any of them).",
)
@click.option("--language", help="Language code or name, e.g. ar or Arabic.")
@click.option("--age", type=int, help="The person's age in years.")
@click.option("--area", help="Words of the service area or address, e.g. a town.")
@click.option("--near", metavar="LAT,LON", help="Only services within --radius of this point.")
@click.option(
    "--radius",
    "radius_km",
    type=float,
    default=service.DEFAULT_RADIUS_KM,
    show_default=True,
    help="Kilometres around --near.",
)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(service.CAPACITY_STATUSES),
    help="Capacity status (repeatable: any of them).",
)
@click.option("--accepting/--not-accepting", default=None, help="Accepting referrals now, or not.")
@click.option("--affirming/--not-affirming", default=None, help="Offers affirming care, or not.")
@click.option(
    "--kind",
    "peer_kind",
    type=click.Choice(ORGANIZATION_KINDS),
    help="The peer's organization kind.",
)
@click.option("--limit", type=int, default=service.DEFAULT_LIMIT, show_default=True)
@click.option("--offset", type=int, default=0, show_default=True)
@json_option
def search(
    home: Path | None, text: tuple[str, ...], near: str | None, as_json: bool, **criteria: Any
) -> None:
    """Search trusted peers' services: accepting now first, fresher first; TEXT: words."""
    point = None if near is None else service.parse_point(near)
    query = DirectoryQuery(text=" ".join(text) or None, near=point, **criteria)
    node = open_node(home)
    with node.database.session() as session:
        page = service.search(session, query, now=node.now())
    if as_json:
        click.echo(json.dumps(page_json(page), indent=2, ensure_ascii=False))
        return
    emit([row(result) for result in page.results], COLUMNS + ("distance",) * bool(near), False)
    click.echo(summary(page))


def row(result: SearchResult) -> dict[str, str]:
    capacity = result.capacity_status
    if result.wait_days is not None:
        capacity += f" (wait {days(result.wait_days)})"
    return {
        "peer": result.peer_organization,
        "service": result.name,
        "capacity": capacity,
        "accepting": "yes" if result.accepting_referrals else "no",
        "verified": verified(result.verified_days_ago),
        "stale": "STALE" if result.stale else "",
        "distance": "" if result.distance_km is None else f"{result.distance_km:.1f} km",
    }


def verified(days_ago: int | None) -> str:
    if days_ago is None:
        return "never verified"
    return "verified today" if days_ago == 0 else f"verified {days(days_ago)} ago"


def days(count: int) -> str:
    return "1 day" if count == 1 else f"{count} days"


def summary(page: SearchPage) -> str:
    shown = len(page.results)
    if not shown:
        return f"{page.total} services match."
    last = page.offset + shown
    line = f"{page.offset + 1}-{last} of {page.total} services."
    if last < page.total:
        line += f" Next page: --offset {last}."
    if any(result.stale for result in page.results):
        line += " STALE: the peer's capacity document has expired; check before referring."
    return line


COMMANDS: list[click.Command] = [search]
