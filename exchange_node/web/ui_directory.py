"""The directory: searching the services of trusted peers, with capacity and freshness.

A GET form with the filters of the directory search; its query string is read by the
same loader as ``GET /api/v1/directory`` (:func:`load_directory_query`), so the page,
the API and the command line accept and refuse the same things. A refused filter
shows the form again, values kept, with the reason (400). Results are cards linking
to the referral form. The search runs on what this node holds: nothing is sent to a
peer, and the criteria are never logged.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, request, url_for
from flask_babel import lazy_gettext
from werkzeug.datastructures import MultiDict

from exchange_node.errors import InvalidRequestError
from exchange_node.protocol.wire import ORGANIZATION_KINDS
from exchange_node.services import directory_search
from exchange_node.services.directory_search import SearchPage
from exchange_node.web.context import current_node
from exchange_node.web.directory_schemas import load_directory_query
from exchange_node.web.ui_pages import page_blueprint, render
from exchange_node.web.ui_session import login_required

blueprint = page_blueprint("directory", __name__, url_prefix="/directory")

#: Every blueprint of this area; the app registers them all.
BLUEPRINTS: tuple[Blueprint, ...] = (blueprint,)

#: The form's single-valued fields (``status`` is a group of checkboxes).
TEXT_FIELDS = ("q", "category", "language", "age", "area", "near", "radius_km", "peer_kind")
#: Filters folded away under "More filters" unless one of them is used.
MORE_FILTERS = ("category", "age", "area", "near", "radius_km", "affirming", "peer_kind")
RADIUS_CHOICES = ("5", "10", "50", "100")
KIND_LABELS = {
    "community-network": lazy_gettext("Community network"),
    "clinic": lazy_gettext("Clinic"),
    "school": lazy_gettext("School"),
    "legal-aid": lazy_gettext("Legal aid"),
    "housing": lazy_gettext("Housing"),
    "other": lazy_gettext("Other"),
}
STATUS_LABELS = {
    "capacity": lazy_gettext("Open places"),
    "waitlist": lazy_gettext("Waitlist"),
    "additional-assessment-required": lazy_gettext("Assessment first"),
    "no-capacity": lazy_gettext("Full"),
}
#: What to say about a refused filter, by form field (the search's own words otherwise).
FIELD_PROBLEMS = {
    "q": lazy_gettext("Give up to 10 words (200 characters) with letters or digits."),
    "area": lazy_gettext("Give up to 10 words (200 characters) with letters or digits."),
    "category": lazy_gettext("Give one category code or name, up to 255 characters."),
    "language": lazy_gettext("Give one language code or name, up to 255 characters."),
    "age": lazy_gettext("Give the age in whole years, from 0 to 200."),
    "near": lazy_gettext("Give a point as latitude,longitude in decimal degrees, e.g. 51.5,-0.12."),
    "radius_km": lazy_gettext("A distance needs a point to measure from (Near)."),
    "status": lazy_gettext("Choose capacity from the list."),
    "peer_kind": lazy_gettext("Choose a kind of organization from the list."),
    "offset": lazy_gettext("That page does not exist: start again from the first page."),
    "limit": lazy_gettext("Show from 1 to 100 services on a page."),
}


@blueprint.get("")
@login_required()
def search() -> tuple[str, int]:
    """The search form, and a page of services matching it (all services when empty)."""
    node = current_node()
    form = form_values(request.args)
    try:
        query = load_directory_query(request.args)
        with node.database.session() as session:
            page = directory_search.search(session, query, now=node.now())
            languages = directory_search.service_languages(session, page.results)
    except InvalidRequestError as error:
        errors = form_errors(error)
        return _page(form, errors=errors, open_more=_uses_more(form, errors)), 400
    return _page(form, page=page, service_languages=languages, open_more=_uses_more(form, {})), 200


def form_values(args: MultiDict[str, str]) -> dict[str, Any]:
    """What the form shows again: the values as given (capped), ``status`` as a list."""
    values: dict[str, Any] = {name: args.get(name, "")[:300] for name in TEXT_FIELDS}
    values["status"] = args.getlist("status")[:10]
    values["accepting"] = args.get("accepting") == "true"
    values["affirming"] = args.get("affirming") == "true"
    return values


def form_errors(error: InvalidRequestError) -> dict[str, str]:
    """Field name -> what to fix; a problem with no field of the form goes under ``form``."""
    errors: dict[str, str] = {}
    for pointer, reasons in error.fields.items():
        name = pointer.lstrip("/").split("/")[0]
        if name in FIELD_PROBLEMS:
            errors[name] = str(FIELD_PROBLEMS[name])
        else:
            errors.setdefault("form", reasons[0] if reasons else error.detail)
    return errors or {"form": error.detail}


def page_path(offset: int) -> str:
    """This search at another offset (the other parameters as they are)."""
    args = request.args.copy()
    args.pop("offset", None)
    if offset:
        args["offset"] = str(offset)
    query = urlencode(list(args.items(multi=True)))
    return url_for("directory.search") + (f"?{query}" if query else "")


def _page(
    form: dict[str, Any],
    *,
    page: SearchPage | None = None,
    service_languages: dict[tuple[str, str], tuple[str, ...]] | None = None,
    errors: dict[str, str] | None = None,
    open_more: bool = False,
) -> str:
    return render(
        "directory/search.html",
        form=form,
        page=page,
        service_languages=service_languages or {},
        errors=errors or {},
        open_more=open_more,
        kinds=[("", lazy_gettext("Any"))] + [(k, KIND_LABELS[k]) for k in ORGANIZATION_KINDS],
        radius_choices=[("", lazy_gettext("25 km (default)"))]
        + [(r, lazy_gettext("%(km)s km", km=r)) for r in RADIUS_CHOICES],
        status_labels=STATUS_LABELS,
        page_path=page_path,
    )


def _uses_more(form: dict[str, Any], errors: dict[str, str]) -> bool:
    return any(form.get(name) for name in MORE_FILTERS) or any(n in MORE_FILTERS for n in errors)
