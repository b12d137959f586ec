"""``exchange-node capacity ...``: whether this node's services can take people now.

``capacity set`` is a person confirming the capacity, so it also sets ``verified_at``
unless ``--not-verified``; ``capacity verify`` confirms it unchanged. Every change
raises the capacity document's version. SERVICE is a service's id, or its name when
no other service has it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from exchange_node.cli.common import emit, home_option, json_option, open_node, timestamp
from exchange_node.cli.services import describe
from exchange_node.protocol.intake import INTAKE_FIELDS
from exchange_node.services import catalog, service_capacity


@click.group()
def capacity() -> None:
    """Capacity of this node's services, as published to trusted peers."""


@capacity.command("set")
@home_option
@click.argument("reference", metavar="SERVICE")
@click.option("--status", type=click.Choice(service_capacity.CAPACITY_STATUSES))
@click.option("--accepting/--not-accepting", default=None, help="Takes referrals now, or not.")
@click.option("--wait-days", type=click.IntRange(0, service_capacity.MAX_WAIT_DAYS))
@click.option("--no-wait-days", is_flag=True, help="Forget the wait estimate.")
@click.option("--notes", help="Notes for referrers, no personal data ('' removes them).")
@click.option(
    "--intake-field",
    "intake_fields",
    multiple=True,
    type=click.Choice(list(INTAKE_FIELDS)),
    help="A field a referral must carry; repeat for several (replaces the list).",
)
@click.option("--no-intake-fields", is_flag=True, help="Referrals carry no person fields.")
@click.option("--available", type=click.FloatRange(min=0), help="HSDS capacity: how many free.")
@click.option("--maximum", type=click.FloatRange(min=0), help="HSDS capacity: how many in all.")
@click.option("--unit", help="HSDS capacity: what is counted (beds, appointments ...).")
@click.option("--not-verified", is_flag=True, help="Do not mark the capacity as confirmed now.")
def set_(home: Path | None, reference: str, **options: Any) -> None:
    """Change SERVICE's capacity; what is not given stays as it is."""
    change = _capacity_change(options)
    node = open_node(home)
    with node.database.session() as session:
        found = catalog.find_service(session, reference)
        changed = service_capacity.set_capacity(session, found.id, change, node.now())
        row = describe(changed)
    click.echo(
        f"{row['id']}: {row['capacity']}, accepting {row['accepting']}, verified {row['verified']}"
    )


@capacity.command("verify")
@home_option
@click.argument("reference", metavar="SERVICE")
def verify(home: Path | None, reference: str) -> None:
    """Confirm that SERVICE's capacity is still right (only its verified time changes)."""
    node = open_node(home)
    with node.database.session() as session:
        found = catalog.find_service(session, reference)
        verified = service_capacity.verify_capacity(session, found.id, node.now())
        click.echo(f"{verified.id}: verified at {timestamp(verified.verified_at)}")


@capacity.command("list")
@home_option
@json_option
def capacity_list(home: Path | None, as_json: bool) -> None:
    """List the capacity of every service."""
    node = open_node(home)
    with node.database.session() as session:
        rows = [describe(s) for s in catalog.list_services(session)]
    columns = ["id", "name", "capacity", "accepting", "wait_days", "verified", "updated"]
    emit(rows, columns, as_json)


def _capacity_change(options: dict[str, Any]) -> service_capacity.CapacityChange:
    numbers = (_whole(options["available"]), _whole(options["maximum"]), options["unit"])
    if any(value is not None for value in numbers) and (numbers[0] is None or not numbers[2]):
        raise click.UsageError("HSDS capacity numbers need --available and --unit")
    if options["wait_days"] is not None and options["no_wait_days"]:
        raise click.UsageError("--wait-days and --no-wait-days contradict each other")
    if options["intake_fields"] and options["no_intake_fields"]:
        raise click.UsageError("--intake-field and --no-intake-fields contradict each other")
    wait: Any = None if options["no_wait_days"] else options["wait_days"]
    intake = () if options["no_intake_fields"] else tuple(options["intake_fields"]) or None
    return service_capacity.CapacityChange(
        status=options["status"],
        accepting_referrals=options["accepting"],
        wait_days=service_capacity.KEEP if wait is None and not options["no_wait_days"] else wait,
        notes=service_capacity.KEEP if options["notes"] is None else options["notes"],
        intake_fields=intake,
        numbers=(service_capacity.CapacityNumbers(numbers[2], numbers[0], numbers[1]),)
        if numbers[0] is not None
        else (),
        verified=not options["not_verified"],
    )


def _whole(value: float | None) -> float | None:
    """An integral number as an int, so 3 is written 3 and not 3.0."""
    return int(value) if value is not None and value.is_integer() else value


COMMANDS = [capacity]
