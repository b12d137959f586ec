"""This node's own services and their capacity (a one-screen update that works on a phone).

Listing, adding, editing and removing services through the catalog
(:mod:`exchange_node.services.catalog`), with the fields of ``exchange-node service
add|edit`` (:mod:`exchange_node.web.ui_services_form`); the capacity pages are in
:mod:`exchange_node.web.ui_services_capacity`. Administrators and staff both may:
intake staff are the ones who publish services and capacity. Every change raises the
capacity document's version in its transaction (peers see it at their next sync) and
is audited as ``user:<id>``. An edit form carries a fingerprint of the record it
started from, so a change made meanwhile by someone else is not silently overwritten.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext
from werkzeug.wrappers import Response as BaseResponse

from exchange_node.db.models import Service
from exchange_node.errors import ConflictError, InvalidRequestError
from exchange_node.services import catalog
from exchange_node.web import ui_services_capacity
from exchange_node.web.context import current_node
from exchange_node.web.ui_pages import page_blueprint, render
from exchange_node.web.ui_services_capacity import load_service
from exchange_node.web.ui_services_form import (
    HSDS_STATUSES,
    changes,
    field_errors,
    form_values,
    posted_values,
    record_version,
)
from exchange_node.web.ui_session import login_required, redirect_to, web_actor

blueprint = page_blueprint("services", __name__, url_prefix="/services")

#: Every blueprint of this area; the app registers them all.
BLUEPRINTS: tuple[Blueprint, ...] = (blueprint, ui_services_capacity.blueprint)

HSDS_STATUS_LABELS = {
    "active": lazy_gettext("Active"),
    "inactive": lazy_gettext("Inactive"),
    "temporarily closed": lazy_gettext("Temporarily closed"),
    "defunct": lazy_gettext("Closed for good"),
}
Page = str | tuple[str, int] | BaseResponse


@blueprint.get("")
@login_required()
def index() -> str:
    node = current_node()
    with node.database.session() as session:
        services = catalog.list_services(session)
    return render(
        "services/index.html",
        services=services,
        open_places=ui_services_capacity.open_places,
        status_labels=HSDS_STATUS_LABELS,
    )


@blueprint.get("/new")
@login_required()
def new() -> str:
    return _form_page(None, form_values({}, public=False) | {"status": "active"})


@blueprint.post("/new")
@login_required()
def add() -> Page:
    node = current_node()
    values = posted_values(request.form)
    try:
        fields, public = changes(values, form_values({}, public=False))
        with node.database.session() as session:
            added = catalog.add_service_from_fields(
                node, session, fields, public=bool(public), actor=web_actor()
            )
    except InvalidRequestError as error:
        return _form_page(None, values, errors=field_errors(error)), 400
    flash(
        _("The service is added. It takes no referrals until you update its capacity."), "success"
    )
    return redirect_to("services_capacity.update", service_id=added.id)


@blueprint.get("/<service_id>/edit")
@login_required()
def edit(service_id: str) -> str:
    service = load_service(service_id)
    shown = form_values(service.record, service.public)
    return _form_page(service, shown, record_version(service.record, service.public))


@blueprint.post("/<service_id>/edit")
@login_required()
def save(service_id: str) -> Page:
    node = current_node()
    values, started_from = posted_values(request.form), request.form.get("version", "")
    try:
        with node.database.session() as session:
            service = catalog.get_service(session, service_id)
            if started_from != record_version(service.record, service.public):
                raise ConflictError("the service changed since the form was shown")
            fields, public = changes(values, form_values(service.record, service.public))
            catalog.edit_service(
                node, session, service.id, fields, public=public, actor=web_actor()
            )
    except ConflictError:
        service = load_service(service_id)
        error = _(
            "Someone else changed this service while you were editing it. "
            "Check the form and save again."
        )
        version = record_version(service.record, service.public)
        return _form_page(service, values, version, {"form": error}), 409
    except InvalidRequestError as error:
        page = _form_page(load_service(service_id), values, started_from, field_errors(error))
        return page, 400
    flash(_("The service is saved."), "success")
    return redirect_to("services.index")


@blueprint.get("/<service_id>/remove")
@login_required()
def confirm_removal(service_id: str) -> str:
    return render("services/remove.html", service=load_service(service_id))


@blueprint.post("/<service_id>/remove")
@login_required()
def remove(service_id: str) -> BaseResponse:
    node = current_node()
    with node.database.session() as session:
        catalog.remove_service(session, service_id, node.now(), actor=web_actor())
    flash(_("The service is removed. Peers stop seeing it at their next sync."), "success")
    return redirect_to("services.index")


def _form_page(
    service: Service | None,
    values: dict[str, Any],
    version: str | None = None,
    errors: dict[str, str] | None = None,
) -> str:
    return render(
        "services/form.html",
        service=service,
        switch_to=_form_address(service),
        form=values,
        version=version,
        errors=errors or {},
        statuses=[(status, HSDS_STATUS_LABELS[status]) for status in HSDS_STATUSES],
    )


def _form_address(service: Service | None) -> str:
    """The form's own page (GET): where the language switch leads from a POST's answer."""
    if service is None:
        return url_for("services.new")
    return url_for("services.edit", service_id=service.id)
