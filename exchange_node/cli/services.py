"""``exchange-node service ...``: this node's own services (their capacity: ``cli/capacity``).

A service is an Open Referral HSDS 3.1 record, written as simple options or given as
a JSON file; ``service import`` and ``service export`` read and write HSDS JSON. A
service is private unless ``--public`` lists it on the open HSDS endpoint. SERVICE is
a service's id, or its name when no other has it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TypeVar

import click

from exchange_node.cli.common import emit, emit_one, home_option, json_option, open_node, timestamp
from exchange_node.db.models import Service
from exchange_node.services import catalog
from exchange_node.services.service_locations import PhysicalLocation, SafeLocation
from exchange_node.services.service_records import (
    MAX_IMPORT_BYTES,
    ServiceFields,
    Term,
    parse_import,
)

F = TypeVar("F", bound=Callable[..., Any])
HSDS_STATUSES = ("active", "inactive", "defunct", "temporarily closed")
_ADDRESS = ("address_1", "address_2", "city", "state_province", "postal_code", "country")
_PLACE = ("location_name", *_ADDRESS, "latitude", "longitude")
_SAFE = ("safe_location", "safe_phone", "safe_email", "safe_url")

#: (option, parameter, help) of the text fields of a record.
_TEXT_OPTIONS = (
    ("--name", "name", "The service's name."),
    ("--description", "description", "What the service does."),
    ("--organization", "organization", "The organization (default: this node's name)."),
    ("--eligibility", "eligibility_description", "Who the service is for, in words."),
    ("--email", "email", "The service's email address ('' removes it)."),
    ("--phone", "phone", "The service's phone number ('' removes it)."),
    ("--website", "url", "The service's web page ('' removes it)."),
    ("--assured-date", "assured_date", "When the record was last checked (YYYY-MM-DD)."),
    ("--location-name", "location_name", "A physical location: its name."),
    ("--address", "address_1", "Its street address (then --city, --region, ...)."),
    ("--address-2", "address_2", "Its second address line."),
    ("--city", "city", "Its city."),
    ("--region", "state_province", "Its state, province or region."),
    ("--postal-code", "postal_code", "Its postal code."),
    ("--country", "country", "Its country (ISO 3166-1 code, such as 'GB')."),
    ("--safe-location", "safe_location", "A safe location's name: published with no address."),
    ("--safe-phone", "safe_phone", "The safe location's contact phone."),
    ("--safe-email", "safe_email", "The safe location's contact email."),
    ("--safe-url", "safe_url", "The safe location's contact web page."),
)


def record_options(command: F) -> F:
    """The options that build or change a record, ``--file`` and ``--public/--private``."""
    for option, name, summary in reversed(_TEXT_OPTIONS):
        command = click.option(option, name, help=summary)(command)
    decorators = [
        click.option("--status", type=click.Choice(HSDS_STATUSES), help="HSDS service status."),
        click.option(
            "--language",
            "languages",
            multiple=True,
            metavar="CODE[=NAME]",
            help="A language spoken (ISO 639, such as ar=Arabic); repeat for several.",
        ),
        click.option("--minimum-age", type=click.IntRange(0, 200), help="Youngest age served."),
        click.option("--maximum-age", type=click.IntRange(0, 200), help="Oldest age served."),
        click.option("--area", "areas", multiple=True, help="A service area's name; repeatable."),
        click.option(
            "--category",
            "categories",
            multiple=True,
            metavar="CODE[=NAME]",
            help="A taxonomy term (category); repeatable.",
        ),
        click.option(
            "--affirming/--not-affirming",
            default=None,
            help="Whether the service offers affirming care.",
        ),
        click.option("--latitude", type=click.FloatRange(-90, 90), help="The location's latitude."),
        click.option("--longitude", type=click.FloatRange(-180, 180), help="Its longitude."),
        click.option(
            "--public/--private",
            default=None,
            help="List it on the open HSDS endpoint (new services are private).",
        ),
        click.option(
            "--file",
            "record_file",
            type=click.File("rb"),
            help="An HSDS 3.1 service record (JSON) instead of the options.",
        ),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def describe(service: Service) -> dict[str, Any]:
    return {
        "id": service.id,
        "name": service.name,
        "status": service.record.get("status"),
        "capacity": service.capacity_status,
        "accepting": "yes" if service.accepting_referrals else "no",
        "wait_days": service.wait_days,
        "public": "yes" if service.public else "no",
        "verified": timestamp(service.verified_at),
        "updated": timestamp(service.capacity_updated_at),
    }


@click.group()
def service() -> None:
    """This node's services (Open Referral HSDS 3.1 records)."""


@service.command("add")
@home_option
@record_options
@json_option
def add(
    home: Path | None,
    record_file: IO[bytes] | None,
    public: bool | None,
    as_json: bool,
    **options: Any,
) -> None:
    """Add a service from options (--name at least) or from an HSDS record (--file)."""
    node = open_node(home)
    with node.database.session() as session:
        if record_file is not None:
            _only_file(options)
            added = catalog.add_service(node, session, _read(record_file), public=bool(public))
        else:
            fields = _fields(options)
            added = catalog.add_service_from_fields(node, session, fields, public=bool(public))
        shown = catalog.describe_service(added)
    if as_json:
        emit_one(shown, True)
        return
    click.echo(f"Added service {added.id}. It has no capacity until you set it:")
    click.echo(f"  exchange-node capacity set {added.id} --status capacity --accepting")


@service.command("edit")
@home_option
@click.argument("reference", metavar="SERVICE")
@record_options
def edit(
    home: Path | None,
    reference: str,
    record_file: IO[bytes] | None,
    public: bool | None,
    **options: Any,
) -> None:
    """Change the given fields of SERVICE, or replace its record (--file, keeping its id)."""
    node = open_node(home)
    with node.database.session() as session:
        found = catalog.find_service(session, reference)
        if record_file is not None:
            _only_file(options)
            catalog.replace_service(node, session, found.id, _read(record_file), public=public)
        else:
            fields = _fields(options)
            if fields == ServiceFields() and public is None:
                raise click.UsageError("nothing to change: give an option or --file")
            catalog.edit_service(node, session, found.id, fields, public=public)
        click.echo(f"Service {found.id} is changed.")


@service.command("list")
@home_option
@json_option
def list_(home: Path | None, as_json: bool) -> None:
    """List this node's services and their capacity."""
    node = open_node(home)
    with node.database.session() as session:
        rows = [describe(s) for s in catalog.list_services(session)]
    emit(rows, ["id", "name", "status", "capacity", "accepting", "public", "verified"], as_json)


@service.command("show")
@home_option
@click.argument("reference", metavar="SERVICE")
@json_option
def show(home: Path | None, reference: str, as_json: bool) -> None:
    """Show a service: its capacity, then its HSDS record."""
    node = open_node(home)
    with node.database.session() as session:
        found = catalog.find_service(session, reference)
        shown, summary = catalog.describe_service(found), describe(found)
    if as_json:
        emit_one(shown, True)
        return
    emit_one(
        summary | {"notes": found.notes, "intake_fields": shown["capacity"]["intake_fields"]}, False
    )
    click.echo(json.dumps(shown["service"], indent=2, ensure_ascii=False))


@service.command("remove")
@home_option
@click.argument("reference", metavar="SERVICE")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def remove(home: Path | None, reference: str, yes: bool) -> None:
    """Remove a service; peers stop seeing it at their next sync."""
    node = open_node(home)
    with node.database.session() as session:
        found = catalog.find_service(session, reference)
        if not yes:
            click.confirm(f"Remove service {found.id} ({found.name})?", abort=True)
        catalog.remove_service(session, found.id, node.now())
        click.echo(f"Service {found.id} is removed.")


@service.command("import")
@home_option
@click.argument("source", type=click.File("rb"), metavar="FILE")
@click.option("--public", is_flag=True, help="List the new services on the open HSDS endpoint.")
def import_(home: Path | None, source: IO[bytes], public: bool) -> None:
    """Import HSDS 3.1 JSON ('-' for stdin): a service, a list, or a page with 'contents'.

    A record whose id exists updates that service; nothing is imported if any record is wrong.
    """
    node = open_node(home)
    with node.database.session() as session:
        result = catalog.import_services(node, session, _read(source), public=public)
    click.echo(f"{len(result.added)} services added, {len(result.updated)} updated.")


@service.command("export")
@home_option
@click.option("--output", type=click.File("w"), default="-", help="A file (default: stdout).")
def export(home: Path | None, output: IO[str]) -> None:
    """Write every service as a JSON list of HSDS 3.1 records, with their capacities."""
    node = open_node(home)
    with node.database.session() as session:
        records = catalog.export_services(session)
    output.write(json.dumps(records, indent=2, ensure_ascii=False) + "\n")


def _fields(options: dict[str, Any]) -> ServiceFields:
    """The record fields given as options (none given: an empty ``ServiceFields``)."""
    locations: list[PhysicalLocation | SafeLocation] = []
    if any(options[name] is not None for name in _PLACE):
        place = {name: options[name] for name in _ADDRESS}
        locations.append(
            PhysicalLocation(
                name=options["location_name"],
                latitude=options["latitude"],
                longitude=options["longitude"],
                **place,
            )
        )
    if any(options[name] is not None for name in _SAFE):
        if not options["safe_location"]:
            raise click.UsageError("--safe-phone, --safe-email and --safe-url need --safe-location")
        locations.append(
            SafeLocation(
                options["safe_location"],
                options["safe_phone"],
                options["safe_email"],
                options["safe_url"],
            )
        )
    simple = (
        "name",
        "description",
        "status",
        "organization",
        "eligibility_description",
        "minimum_age",
        "maximum_age",
        "affirming",
        "email",
        "phone",
        "url",
        "assured_date",
    )
    return ServiceFields(
        **{name: options[name] for name in simple},
        languages=tuple(Term.parse(t) for t in options["languages"]) or None,
        areas=tuple(options["areas"]) or None,
        categories=tuple(Term.parse(t) for t in options["categories"]) or None,
        locations=tuple(locations) or None,
    )


def _only_file(options: dict[str, Any]) -> None:
    if _fields(options) != ServiceFields():
        raise click.UsageError("--file replaces the whole record: give it without other fields")


def _read(source: IO[bytes]) -> Any:
    """The JSON in a file or stdin, read no further than the import limit."""
    return parse_import(source.read(MAX_IMPORT_BYTES + 1))


COMMANDS = [service]
