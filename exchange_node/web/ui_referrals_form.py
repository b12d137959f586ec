"""Reading the "send a referral" form: the person's details and safe contact, then consent.

Each step posts back everything entered so far in hidden fields, so nothing is stored
before consent is given and nothing personal reaches a URL. The readers return what
:class:`~exchange_node.services.referrals.ReferralDraft` takes, or errors keyed by form
field name in the reader's language. They only check what a person can fix in the
form (sizes, formats, required choices); ``create_referral`` checks every rule again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict

from exchange_node.errors import ExchangeError, NotFoundError, PeerNotTrustedError
from exchange_node.protocol import wire
from exchange_node.protocol.errors import SchemaError
from exchange_node.protocol.intake import (
    DATA_CATEGORIES,
    INTAKE_FIELDS,
    SENSITIVE_CATEGORIES,
    category_of,
)
from exchange_node.services.referral_pages import ReferralTarget
from exchange_node.web.ui_labels import CATEGORIES, FIELDS

DAY = 86_400
DEFAULT_CONSENT_DAYS = 90
MAX_CONSENT_DAYS = 3650
MAX_PURPOSE, MAX_OVERRIDE = 500, 500

# Form field names of the first step (the person's details and safe contact).
PERSON = "person-"
CHANNEL, VOICEMAIL, NAME_ORGANIZATION = "sc-channel", "sc-voicemail", "sc-name-organization"
DAY_NAME, START, END, TIME_ZONE = "sc-day", "sc-start", "sc-end", "sc-time-zone"
DO_NOT_DISCLOSE, NOTES, OVERRIDE = "sc-do-not-disclose", "sc-notes", "override-reason"
SAFE_CONTACT_NAMES: tuple[str, ...] = (CHANNEL, VOICEMAIL, NAME_ORGANIZATION, DAY_NAME, START)
SAFE_CONTACT_NAMES += (END, TIME_ZONE, DO_NOT_DISCLOSE, NOTES)
# ... and of the consent step.
CATEGORY, PURPOSE, GIVEN_BY, METHOD, EXPIRES = (
    "category",
    "purpose",
    "given-by",
    "method",
    "expires-on",
)
#: Present once the consent step was shown (its choices are then the person's, not defaults).
CONSENT_SHOWN = "consent-step"
#: Errors that belong to no single field are shown against the submit button.
SUBMIT = "submit"
_CLOCK = re.compile(wire.CLOCK_PATTERN[1:-1])
_WITH_SECONDS = re.compile(r"[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?")


@dataclass(frozen=True)
class Details:
    """The first step, read: the person's data, safe contact and any override reason."""

    person: dict[str, str]
    safe_contact: dict[str, Any]
    override_reason: str | None
    errors: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Consent:
    """The consent step, read."""

    categories: tuple[str, ...]
    purpose: str
    given_by: str
    method: str
    expires_at: int
    errors: dict[str, str] = field(default_factory=dict)


def read_details(form: MultiDict[str, str], target: ReferralTarget) -> Details:
    """The person's data (only the fields ``target`` asks for), safe contact and override."""
    errors: dict[str, str] = {}
    person = _person(form, target.intake_fields, errors)
    safe_contact = _safe_contact(form, errors)
    override = _override(form, target, errors)
    return Details(person, safe_contact, override, errors)


def carried(form: MultiDict[str, str], target: ReferralTarget) -> list[tuple[str, str]]:
    """The first step's fields as (name, value) pairs, to post again as hidden fields."""
    names = [PERSON + name for name in target.intake_fields]
    names += [*SAFE_CONTACT_NAMES, OVERRIDE]
    return [(name, value) for name in names for value in form.getlist(name) if value.strip()]


def offered_categories(person: dict[str, str]) -> list[str]:
    """The data categories of the fields filled in, in the vocabulary's order."""
    used = {category_of(name) for name in person}
    return [category for category in DATA_CATEGORIES if category in used]


def chosen_categories(form: MultiDict[str, str], offered: Sequence[str]) -> list[str]:
    """Ticked categories; before the consent step was shown, the non-sensitive ones."""
    if CONSENT_SHOWN not in form:
        return [category for category in offered if category not in SENSITIVE_CATEGORIES]
    ticked = set(form.getlist(CATEGORY))
    return [category for category in offered if category in ticked]


def read_consent(form: MultiDict[str, str], offered: Sequence[str], now: int) -> Consent:
    errors: dict[str, str] = {}
    purpose = form.get(PURPOSE, "").strip()
    if not purpose:
        errors[PURPOSE] = _("Say what the information is shared for.")
    elif len(purpose) > MAX_PURPOSE:
        errors[PURPOSE] = _("At most %(count)s characters.", count=MAX_PURPOSE)
    given_by = form.get(GIVEN_BY, "")
    if given_by not in wire.CONSENT_GIVERS:
        errors[GIVEN_BY] = _("Say who gave consent.")
    method = form.get(METHOD, "")
    if method not in wire.CONSENT_METHODS:
        errors[METHOD] = _("Say how consent was given.")
    expires_at = _expiry(form.get(EXPIRES, ""), now, errors)
    categories = tuple(chosen_categories(form, offered))
    return Consent(categories, purpose, given_by, method, expires_at, errors)


def default_expiry(now: int) -> str:
    """The consent's end date offered first: 90 days from today (ISO, for a date input)."""
    return (datetime.fromtimestamp(now, UTC).date() + timedelta(DEFAULT_CONSENT_DAYS)).isoformat()


def service_errors(error: ExchangeError, chosen: Sequence[str]) -> dict[str, str]:
    """What ``create_referral`` refused, keyed by the consent step's fields."""
    problems: dict[str, str] = {}
    for pointer in error.fields:
        parts = pointer.strip("/").split("/")
        name = parts[1] if len(parts) > 1 else ""
        if parts[0] == "person" and name in INTAKE_FIELDS and category_of(name) not in chosen:
            category = category_of(name)
            problems[f"{CATEGORY}-{category}"] = _(
                "%(field)s is sent only if the person agrees to share this: %(category)s. "
                "Tick it, or change the details and leave the field empty.",
                field=FIELDS[name].label,
                category=CATEGORIES[category],
            )
        elif pointer == "/consent/expires_at":
            problems[EXPIRES] = _("The consent must end after today.")
    if not problems:
        problems[SUBMIT] = _refusal(error)
    return problems


def _refusal(error: ExchangeError) -> str:
    """The common refusals in the reader's language; the service's own words otherwise."""
    messages: dict[str, str] = {
        PeerNotTrustedError.code: _(
            "This organization is not trusted by this node now: referrals cannot be sent to it."
        ),
        NotFoundError.code: _(
            "This service is no longer in this node's directory: search the directory again."
        ),
    }
    return messages.get(error.code, error.detail)


def _person(
    form: MultiDict[str, str], names: Sequence[str], errors: dict[str, str]
) -> dict[str, str]:
    person = {}
    for name in names:
        value = form.get(PERSON + name, "").strip()
        if not value:
            continue
        person[name] = value
        limit = INTAKE_FIELDS[name][1]
        if len(value) > limit:
            errors[PERSON + name] = _("At most %(count)s characters.", count=limit)
        elif name == "age" and not (value.isascii() and value.isdigit()):
            errors[PERSON + name] = _("Give the age in years, as a number.")
        elif name == "date_of_birth" and not _is_date(value):
            errors[PERSON + name] = _("Give a date such as 2010-04-30.")
    return person


def _is_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _safe_contact(form: MultiDict[str, str], errors: dict[str, str]) -> dict[str, Any]:
    channels = _chosen(form, CHANNEL, wire.CONTACT_CHANNELS)
    safe: dict[str, Any] = {
        "channels": channels,
        "voicemail_allowed": form.get(VOICEMAIL) == "yes",
        "may_name_organization": form.get(NAME_ORGANIZATION) == "yes",
    }
    if not channels:
        errors[CHANNEL] = _("Choose at least one way the person may be contacted.")
    window = _window(form, errors)
    lines = [line.strip() for line in form.get(DO_NOT_DISCLOSE, "").splitlines() if line.strip()]
    optional = {
        "windows": [window] if window else None,
        "time_zone": form.get(TIME_ZONE, "").strip(),
        "do_not_disclose": lines,
        "notes": form.get(NOTES, "").strip(),
    }
    safe |= {name: value for name, value in optional.items() if value}
    if channels and not errors.keys() & {DAY_NAME, START, END}:
        _check_safe_contact(safe, errors)
    return safe


def _chosen(form: MultiDict[str, str], name: str, choices: Sequence[str]) -> list[str]:
    given = set(form.getlist(name))
    return [choice for choice in choices if choice in given]


def _window(form: MultiDict[str, str], errors: dict[str, str]) -> dict[str, Any] | None:
    """The one contact window the form offers (days, start, end), or None when left empty."""
    days = _chosen(form, DAY_NAME, wire.WEEKDAYS)
    start, end = _clock(form.get(START, "")), _clock(form.get(END, ""))
    if not (days or start or end):
        return None
    if not (days and start and end):
        missing = DAY_NAME if not days else START if not start else END
        errors[missing] = _("Give the days and both times, or leave all three empty.")
        return None
    if _CLOCK.fullmatch(start) and _CLOCK.fullmatch(end) and start >= end:
        errors[END] = _("The end time must be after the start time.")
    return {"days": days, "start": start, "end": end}


def _clock(text: str) -> str:
    """A time as HH:MM (a time input may add seconds: 15:30:00)."""
    text = text.strip()
    return text[:5] if _WITH_SECONDS.fullmatch(text) else text


#: Safe contact member (JSON Pointer's first part) -> the form field it came from.
_SAFE_CONTACT_FIELDS = {
    "channels": CHANNEL,
    "windows": START,
    "time_zone": TIME_ZONE,
    "do_not_disclose": DO_NOT_DISCLOSE,
    "notes": NOTES,
}


def _check_safe_contact(safe: dict[str, Any], errors: dict[str, str]) -> None:
    """The protocol's own schema decides what the peer would accept."""
    try:
        wire.load_claims(wire.SafeContactSchema, safe, "the safe-contact preferences")
    except SchemaError as e:
        for pointer in e.fields:
            member = pointer.strip("/").split("/")[0]
            name = _SAFE_CONTACT_FIELDS.get(member, NOTES)
            errors.setdefault(name, _safe_contact_message(name))


def _safe_contact_message(name: str) -> str:
    messages: dict[str, str] = {
        START: _("Give times as hours and minutes, such as 15:30."),
        TIME_ZONE: _("Give a time zone name such as Europe/London."),
        DO_NOT_DISCLOSE: _("At most 20 lines, each at most 200 characters."),
        NOTES: _("At most %(count)s characters.", count=1000),
    }
    return messages.get(name) or _("Check this choice.")


def _override(
    form: MultiDict[str, str], target: ReferralTarget, errors: dict[str, str]
) -> str | None:
    """The reason to send anyway, asked only when the service is not taking referrals."""
    if not target.not_accepting:
        return None
    reason = form.get(OVERRIDE, "").strip()
    if not reason:
        errors[OVERRIDE] = _(
            "This service is not taking referrals now. To send anyway, say why: "
            "the receiving staff will read it."
        )
    elif len(reason) > MAX_OVERRIDE:
        errors[OVERRIDE] = _("At most %(count)s characters.", count=MAX_OVERRIDE)
    return reason or None


def _expiry(text: str, now: int, errors: dict[str, str]) -> int:
    """The end of the chosen day (UTC), checked to be after now and within ten years."""
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        errors[EXPIRES] = _("Give a date such as 2030-04-30.")
        return 0
    expires_at = int(datetime.combine(day, time(23, 59, 59), UTC).timestamp())
    if expires_at <= now:
        errors[EXPIRES] = _("The consent must end after today.")
    elif expires_at > now + MAX_CONSENT_DAYS * DAY:
        errors[EXPIRES] = _("At most %(count)s days from today.", count=MAX_CONSENT_DAYS)
    return expires_at
