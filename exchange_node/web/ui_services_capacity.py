"""Updating a service's capacity on one screen, on a phone too, and confirming it unchanged.

"Update capacity" sets what peers see: the capacity status, whether referrals are
accepted, the open places (an HSDS ``service_capacity``, matched by what is counted),
the wait, notes for referrers and the intake fields referrals must carry. Saving it is
a person confirming it, so ``verified_at`` moves too (as ``exchange-node capacity set``
does); "Still accurate" moves only ``verified_at``
(:func:`~exchange_node.services.service_capacity.verify_capacity`). Either raises the
capacity document's version in the same transaction, so the next document served is
signed again with the change. Staff and administrators both may.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import flash, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response as BaseResponse

from exchange_node.db.models import Service
from exchange_node.errors import InvalidRequestError
from exchange_node.protocol.intake import INTAKE_FIELDS, SENSITIVE_CATEGORIES
from exchange_node.services import catalog, service_capacity
from exchange_node.services.service_capacity import (
    CAPACITY_STATUSES,
    MAX_NOTES_LENGTH,
    MAX_UNIT_LENGTH,
    MAX_WAIT_DAYS,
    CapacityChange,
    CapacityNumbers,
)
from exchange_node.web import ui_labels as labels
from exchange_node.web.context import current_node
from exchange_node.web.ui_pages import page_blueprint, render
from exchange_node.web.ui_services_form import whole_number
from exchange_node.web.ui_session import login_required, redirect_to, web_actor

blueprint = page_blueprint("services_capacity", __name__, url_prefix="/services")

DEFAULT_UNIT = "places"
MAX_OPEN_PLACES = 1_000_000
STATUS_CHOICES = {
    "capacity": lazy_gettext("Open places: taking people now"),
    "waitlist": lazy_gettext("Waitlist: people wait for a place"),
    "additional-assessment-required": lazy_gettext("Assessment first: people are assessed"),
    "no-capacity": lazy_gettext("Full: no places now"),
}
MESSAGES = {
    "status": lazy_gettext("Choose whether the service can take people now."),
    "accepting": lazy_gettext("Choose whether the service accepts referrals now."),
    "open_places": lazy_gettext("Give the open places as a whole number of 0 or more."),
    "unit": lazy_gettext("Say what is counted, in at most 100 characters."),
    "wait_days": lazy_gettext("Give the wait in whole days, from 0 to 3650, or leave it empty."),
    "notes": lazy_gettext("Notes have at most 1000 characters."),
    "intake_fields": lazy_gettext("Choose intake fields from the list."),
}
_POINTERS = {"capacities": "open_places", "accepting_referrals": "accepting"}


@blueprint.get("/<service_id>/capacity")
@login_required()
def update(service_id: str) -> str:
    service = load_service(service_id)
    return _page(service, current_values(service))


@blueprint.post("/<service_id>/capacity")
@login_required()
def save(service_id: str) -> str | tuple[str, int] | BaseResponse:
    node = current_node()
    values = posted_values(request.form)
    try:
        change = capacity_change(values)
        with node.database.session() as session:
            service_capacity.set_capacity(
                session, service_id, change, node.now(), actor=web_actor()
            )
    except InvalidRequestError as error:
        return _page(load_service(service_id), values, field_errors(error)), 400
    flash(_("The capacity is saved. Trusted peers see it at their next sync."), "success")
    return redirect_to("services.index")


@blueprint.post("/<service_id>/verify")
@login_required()
def verify(service_id: str) -> BaseResponse:
    node = current_node()
    with node.database.session() as session:
        service_capacity.verify_capacity(session, service_id, node.now(), actor=web_actor())
    flash(_("The capacity is confirmed as still accurate."), "success")
    return redirect_to("services.index")


def open_places(service: Service) -> tuple[str, str] | None:
    """The first HSDS capacity of the record: (how many are available, what is counted)."""
    capacities = service.record.get("capacities")
    for capacity in capacities if isinstance(capacities, list) else ():
        unit = capacity.get("unit") if isinstance(capacity, dict) else None
        available = capacity.get("available") if isinstance(capacity, dict) else None
        if isinstance(unit, dict) and isinstance(available, int | float):
            number = int(available) if float(available).is_integer() else available
            return str(number), str(unit.get("name", ""))
    return None


def current_values(service: Service) -> dict[str, Any]:
    places = open_places(service) or ("", DEFAULT_UNIT)
    return {
        "status": service.capacity_status,
        "accepting": "yes" if service.accepting_referrals else "no",
        "open_places": places[0],
        "unit": places[1],
        "wait_days": "" if service.wait_days is None else str(service.wait_days),
        "notes": service.notes or "",
        "intake_fields": list(service.intake_fields),
    }


def posted_values(form: MultiDict[str, str]) -> dict[str, Any]:
    names = ("status", "accepting", "open_places", "unit", "wait_days", "notes")
    values: dict[str, Any] = {name: form.get(name, "").strip() for name in names}
    values["intake_fields"] = form.getlist("intake_fields")[: len(INTAKE_FIELDS) + 1]
    return values


def capacity_change(values: Mapping[str, Any]) -> CapacityChange:
    """The whole capacity as the form gives it, confirmed by the person saving it.

    Raises:
        InvalidRequestError: with the form's field names.
    """
    problems: dict[str, str] = {}
    if values["status"] not in CAPACITY_STATUSES:
        problems["status"] = "unknown"
    if values["accepting"] not in ("yes", "no"):
        problems["accepting"] = "yes or no"
    places = whole_number(values["open_places"], MAX_OPEN_PLACES, "open_places", problems)
    wait = whole_number(values["wait_days"], MAX_WAIT_DAYS, "wait_days", problems)
    unit = values["unit"] or DEFAULT_UNIT
    if len(unit) > MAX_UNIT_LENGTH:
        problems["unit"] = "too long"
    if len(values["notes"]) > MAX_NOTES_LENGTH:
        problems["notes"] = "too long"
    if not set(values["intake_fields"]) <= set(INTAKE_FIELDS):
        problems["intake_fields"] = "unknown"
    if problems:
        raise InvalidRequestError("some fields cannot be used as they are", problems)
    return CapacityChange(
        status=values["status"],
        accepting_referrals=values["accepting"] == "yes",
        wait_days=wait,
        notes=values["notes"],
        intake_fields=tuple(values["intake_fields"]),
        numbers=() if places is None else (CapacityNumbers(unit, places),),
        verified=True,
    )


def field_errors(error: InvalidRequestError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for pointer in error.fields:
        name = pointer.strip("/").split("/")[0]
        name = _POINTERS.get(name, name)
        message = MESSAGES.get(name)
        errors.setdefault(name if message else "form", str(message or error.detail))
    return errors or {"form": error.detail}


def _page(service: Service, values: dict[str, Any], errors: dict[str, str] | None = None) -> str:
    sensitive = {
        name
        for name, (category, _most) in INTAKE_FIELDS.items()
        if category in SENSITIVE_CATEGORIES
    }
    return render(
        "services/capacity.html",
        service=service,
        switch_to=url_for("services_capacity.update", service_id=service.id),
        form=values,
        errors=errors or {},
        statuses=STATUS_CHOICES,
        intake_fields=labels.FIELDS,
        sensitive=sensitive,
    )


def load_service(service_id: str) -> Service:
    """The service, read in a transaction of its own (NotFoundError: a 404 page)."""
    node = current_node()
    with node.database.session() as session:
        return catalog.get_service(session, service_id)
