"""``exchange-node referral ...``: consented referrals, sent and received.

``create`` refers a person to a service of a trusted peer, with their consent and
safe-contact preferences, and prints the consent receipt code; ``list`` and ``show``
follow referrals (personal data only with ``show --personal``, which is audited);
``update`` moves one through its states; ``withdraw`` records that the person took
their consent back; ``receipt`` prints the person's consent receipt. Messages to the
peer are queued and delivered by the worker. Errors never echo personal data.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click

from exchange_node.cli.common import emit, emit_one, home_option, json_option, open_node
from exchange_node.db.models import ReferralRole
from exchange_node.protocol.intake import DATA_CATEGORIES, INTAKE_FIELDS
from exchange_node.protocol.states import ReasonCode, ReferralStatus
from exchange_node.protocol.wire import CONSENT_GIVERS, CONSENT_METHODS, CONTACT_CHANNELS, WEEKDAYS
from exchange_node.services import consent, referrals
from exchange_node.services.referral_queries import record_personal_access

DAY = 86_400
MAX_FIELDS_FILE = 64 * 1024
ACTOR = "cli"
_WINDOW = re.compile(r"(?P<days>[a-z,-]+)=(?P<start>\d\d:\d\d)-(?P<end>\d\d:\d\d)")


class IntakeFieldType(click.ParamType[tuple[str, str], Any]):
    """``NAME=VALUE`` with NAME an intake field; a failure never repeats the value."""

    name = "NAME=VALUE"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, str]:
        if isinstance(value, tuple):
            return value
        name, sep, text = str(value).partition("=")
        if not sep:
            self.fail("expected NAME=VALUE, e.g. given_name=Sam", param, ctx)
        if name not in INTAKE_FIELDS:
            self.fail(f"no intake field {name!r}; one of: {', '.join(INTAKE_FIELDS)}", param, ctx)
        return name, text


class WindowType(click.ParamType[dict[str, Any], Any]):
    """``DAYS=HH:MM-HH:MM``; DAYS a range (``mon-fri``) or a list (``sat,sun``)."""

    name = "DAYS=HH:MM-HH:MM"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> dict[str, Any]:
        if isinstance(value, dict):
            return value
        match = _WINDOW.fullmatch(str(value).strip().lower())
        days = _days(match["days"]) if match else None
        if match is None or days is None:
            self.fail("expected DAYS=HH:MM-HH:MM, e.g. mon-fri=15:30-18:00", param, ctx)
        return {"days": days, "start": match["start"], "end": match["end"]}


def _intake_fields(given: tuple[tuple[str, str], ...], file: Any) -> dict[str, str]:
    """``--field`` values plus the lines of ``--fields-file``; a field named twice is refused.

    Lines are ``NAME=VALUE``; blank lines and lines starting with ``#`` are skipped. An
    error names the line number, never its value.
    """
    pairs = list(given)
    if file is not None:
        parser = IntakeFieldType()
        text = file.read(MAX_FIELDS_FILE + 1)
        if len(text) > MAX_FIELDS_FILE:
            raise click.BadParameter(
                f"larger than {MAX_FIELDS_FILE} characters", param_hint="--fields-file"
            )
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                pairs.append(parser.convert(line.rstrip("\r"), None, None))
            except click.BadParameter as e:
                raise click.BadParameter(
                    f"line {number}: {e.message}", param_hint="--fields-file"
                ) from None
    person: dict[str, str] = {}
    for name, value in pairs:
        if name in person:
            raise click.BadParameter(f"intake field {name!r} is given twice", param_hint="--field")
        person[name] = value
    return person


def _days(text: str) -> list[str] | None:
    days: list[str] = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        if first not in WEEKDAYS or (last and last not in WEEKDAYS):
            return None
        start, end = WEEKDAYS.index(first), WEEKDAYS.index(last or first)
        if end < start:
            return None
        days += [day for day in WEEKDAYS[start : end + 1] if day not in days]
    return days


@click.group()
def referral() -> None:
    """Consented referrals: create, list, show, update, withdraw, receipt."""


@referral.command("create")
@home_option
@click.option("--peer", required=True, help="The serving node's URL (a trusted peer).")
@click.option("--service", "service_id", required=True, help="The service's id (directory).")
@click.option("--field", "fields", multiple=True, type=IntakeFieldType(), help="Intake field.")
@click.option(
    "--fields-file",
    type=click.File("r", encoding="utf-8"),
    help="Intake fields as NAME=VALUE lines ('-' reads them from standard input), so that"
    " personal data stays out of shell history and process lists.",
)
@click.option(
    "--consent-category",
    "categories",
    multiple=True,
    type=click.Choice(DATA_CATEGORIES),
    help="A data category the person agreed to share; repeat. Sensitive ones one by one.",
)
@click.option("--purpose", required=True, help="What the data is shared for, as explained.")
@click.option("--given-by", type=click.Choice(CONSENT_GIVERS), default="self", show_default=True)
@click.option("--method", required=True, type=click.Choice(CONSENT_METHODS))
@click.option("--captured-by", required=True, help="Your staff reference (not your name).")
@click.option("--expires-days", type=click.IntRange(1, 3650), default=90, show_default=True)
@click.option(
    "--channel",
    "channels",
    multiple=True,
    required=True,
    type=click.Choice(CONTACT_CHANNELS),
    help="How the person may be contacted, in order of preference; repeat.",
)
@click.option("--voicemail/--no-voicemail", default=False, help="May a message be left?")
@click.option("--may-name-organization", is_flag=True, help="May callers say who they are?")
@click.option("--do-not-disclose", multiple=True, help="Not to mention to anyone else; repeat.")
@click.option("--contact-notes", help="Guidance for whoever contacts the person.")
@click.option("--window", "windows", multiple=True, type=WindowType(), help="When to contact.")
@click.option("--time-zone", help="IANA zone of the windows, e.g. Europe/London.")
@click.option("--override", help="Send although the service is not accepting: why.")
@json_option
def create(home: Path | None, as_json: bool, **options: Any) -> None:
    """Refer a person to a peer's service, with their consent."""
    node = open_node(home)
    now = node.now()
    draft = referrals.ReferralDraft(
        peer=options["peer"],
        service_id=options["service_id"],
        person=_intake_fields(options["fields"], options["fields_file"]),
        categories=options["categories"],
        purpose=options["purpose"],
        given_by=options["given_by"],
        method=options["method"],
        captured_by=options["captured_by"],
        expires_at=now + options["expires_days"] * DAY,
        safe_contact=_safe_contact(options),
        override_reason=options["override"],
    )
    with node.database.session() as session:
        created = referrals.create_referral(node, session, draft, actor=ACTOR, now=now)
        result = {
            "referral_id": created.referral_id,
            "consent_code": created.consent_code,
            "status": created.status,
        }
        service_name = created.service_name
    node.notify_outbox()
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"Referral {result['referral_id']} to {service_name}: {result['status']}.")
    click.echo(f"Consent receipt code: {result['consent_code']}")
    click.echo(f"Print the receipt with: exchange-node referral receipt {result['consent_code']}")


def _safe_contact(options: dict[str, Any]) -> dict[str, Any]:
    safe: dict[str, Any] = {
        "channels": list(options["channels"]),
        "voicemail_allowed": options["voicemail"],
        "may_name_organization": options["may_name_organization"],
    }
    optional = {
        "windows": list(options["windows"]),
        "time_zone": options["time_zone"],
        "do_not_disclose": list(options["do_not_disclose"]),
        "notes": options["contact_notes"],
    }
    return safe | {name: value for name, value in optional.items() if value}


@referral.command("list")
@home_option
@click.option("--role", type=click.Choice([role.value for role in ReferralRole]))
@click.option("--status", type=click.Choice([status.value for status in ReferralStatus]))
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@json_option
def list_(
    home: Path | None, role: str | None, status: str | None, limit: int, as_json: bool
) -> None:
    """List referrals, newest first (no personal data)."""
    node = open_node(home)
    with node.database.session() as session:
        found = referrals.list_referrals(session, role=role, status=status, limit=limit)
        rows = [referrals.describe(node, r, personal=False) for r in found]
    if as_json:
        emit(rows, [], True)
        return
    table = [
        {
            "referral_id": row["referral_id"],
            "role": row["role"],
            "status": row["status"],
            "peer": row["peer"]["organization"],
            "service": row["service_name"],
            "delivery": (row["delivery"] or {}).get("state"),
            "created_at": row["created_at"],
        }
        for row in rows
    ]
    emit(
        table, ["referral_id", "role", "status", "peer", "service", "delivery", "created_at"], False
    )


@referral.command("show")
@home_option
@click.argument("reference", metavar="ID")
@click.option("--personal", is_flag=True, help="Also the person's data (recorded in the audit).")
@json_option
def show(home: Path | None, reference: str, personal: bool, as_json: bool) -> None:
    """Show a referral: status, timeline, delivery; personal data only with --personal."""
    node = open_node(home)
    with node.database.session() as session:
        found = referrals.find_referral(session, reference)
        shown = referrals.describe(node, found, personal=personal)
        if personal:
            record_personal_access(session, found, actor=ACTOR, now=node.now())
    if as_json:
        click.echo(json.dumps(shown, indent=2))
        return
    _print_referral(shown)


def _print_referral(shown: dict[str, Any]) -> None:
    peer, delivery = shown["peer"], shown["delivery"]
    hidden = {"peer", "delivery", "timeline", "messages", "failed_messages"}
    hidden |= {"person", "consent", "safe_contact", "override_reason"}
    lines = {"referral_id": shown["referral_id"], "role": shown["role"]}
    lines["peer"] = f"{peer['organization']} ({peer['entity_id']})"
    lines |= {name: value for name, value in shown.items() if name not in hidden}
    lines["delivery"] = None if delivery is None else _message_line(delivery)
    if "override_reason" in shown:
        lines["override_reason"] = shown["override_reason"]
    emit_one({name: "-" if value is None else value for name, value in lines.items()}, False)
    click.echo("timeline:")
    for event in shown["timeline"]:
        click.echo("  " + _event_line(event))
    later = [m for m in shown["messages"] if m["message_type"] != "referral"]
    if later:
        click.echo("messages to the peer:")
        for message in later:
            click.echo(f"  {message['message_type']}: {_message_line(message)}")
    for name in ("person", "consent", "safe_contact"):
        if name in shown:
            _print_members(name, shown[name])


def _print_members(name: str, members: dict[str, Any] | None) -> None:
    if members is None:
        click.echo(f"{name}: - (purged)")
        return
    click.echo(f"{name}:")
    width = max((len(key) for key in members), default=0)
    for key, value in members.items():
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            shown = ", ".join(value)
        elif isinstance(value, list | dict):
            shown = json.dumps(value, ensure_ascii=False)
        else:
            shown = str(value)
        click.echo(f"  {key.ljust(width)}  {shown}")


def _event_line(event: dict[str, Any]) -> str:
    parts = [event["time"], event["kind"]]
    parts += [f"{event['status']} by the {event['side']}"] if event["status"] else []
    parts += [f"#{event['sequence']}"] if event["sequence"] else []
    parts += [f"reason {event['reason_code']}"] if event["reason_code"] else []
    parts += [f"reason text: {event['reason_text']}"] if event.get("reason_text") else []
    parts += [f"note: {event['note']}"] if event.get("note") else []
    return "  ".join(parts)


def _message_line(message: dict[str, Any]) -> str:
    attempts = f"{message['attempts']} attempt{'s' if message['attempts'] != 1 else ''}"
    line = f"{message['state']} ({attempts})"
    if message["delivered_at"]:
        line += f" at {message['delivered_at']}"
    if message["last_error_code"]:
        line += f"; last error {message['last_error_code']}"
    if message["last_error"]:
        line += f": {message['last_error']}"
    return line


@referral.command("update")
@home_option
@click.argument("reference", metavar="ID")
@click.option(
    "--status",
    required=True,
    type=click.Choice([s.value for s in ReferralStatus if s is not ReferralStatus.REQUESTED]),
)
@click.option("--reason", "reason_code", type=click.Choice([r.value for r in ReasonCode]))
@click.option("--reason-text", help="Needed with --reason other; sent to the peer.")
@click.option("--note", help="A note for the other organization's staff.")
def update(home: Path | None, reference: str, **options: Any) -> None:
    """Change a referral's status (the peer is told)."""
    node = open_node(home)
    with node.database.session() as session:
        changed = referrals.update_status(
            node, session, reference, actor=ACTOR, now=node.now(), **options
        )
        line = f"Referral {changed.referral_id} is now {changed.status}; the peer will be told."
    node.notify_outbox()
    click.echo(line)


@referral.command("withdraw")
@home_option
@click.argument("reference", metavar="ID")
def withdraw(home: Path | None, reference: str) -> None:
    """The person withdrew consent: tell the peer and delete the data here."""
    node = open_node(home)
    with node.database.session() as session:
        withdrawn = referrals.withdraw(node, session, reference, actor=ACTOR, now=node.now())
        referral_id, status = withdrawn.referral_id, withdrawn.status
    node.notify_outbox()
    click.echo(f"Consent for referral {referral_id} withdrawn (status {status}).")
    click.echo("The personal data here was deleted; the peer is asked to delete its copy.")


@referral.command("receipt")
@home_option
@click.argument("reference", metavar="ID")
@click.option("--html", is_flag=True, help="A printable HTML page instead of text.")
def receipt(home: Path | None, reference: str, html: bool) -> None:
    """Print the person's consent receipt for a referral this node sent."""
    node = open_node(home)
    with node.database.session() as session:
        found = referrals.find_referral(session, reference)
        click.echo(
            consent.consent_receipt(node, session, found, actor=ACTOR, now=node.now(), html=html),
            nl=False,
        )


COMMANDS: list[click.Command] = [referral]
