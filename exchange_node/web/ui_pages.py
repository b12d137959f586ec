"""What every page blueprint shares: HTML errors, security headers, no caching, CSRF.

``page_blueprint`` makes a blueprint for server-rendered pages: templates under
``templates/<name>/``, the signed-in user loaded and the CSRF token checked before
each view, and errors shown as a page in the reader's language (with the same
stable code the API would give). The security headers go on every response of the
app: a Content-Security-Policy without inline scripts or styles, no framing, no
referrer to other sites and no MIME sniffing.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Flask, Response, current_app, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext
from werkzeug.exceptions import HTTPException

from exchange_node.errors import ExchangeError
from exchange_node.web import problems, ui_session
from exchange_node.web.context import current_node
from exchange_node.web.problems import HTTP_CODES

log = logging.getLogger("exchange_node.web")

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
#: The main menu: (endpoint, label, administrators only). Entries whose endpoint the
#: app does not have are left out.
NAVIGATION = (
    ("dashboard.index", lazy_gettext("Dashboard"), False),
    ("referrals.index", lazy_gettext("Referrals"), False),
    ("directory.search", lazy_gettext("Directory"), False),
    ("services.index", lazy_gettext("Services"), False),
    ("admin.index", lazy_gettext("Administration"), True),
)
#: Paths of programs (the API, federation, OAuth): always problem details, never a page.
API_PREFIXES = ("/api/", "/federation/", "/oauth/", "/.well-known/", "/hsds/")
#: Names of the blueprints of pages (HTML for people, not part of the OpenAPI document).
PAGE_BLUEPRINTS: set[str] = set()
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def init_app(app: Flask) -> None:
    @app.after_request
    def security_headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.errorhandler(404)
    def not_found(error: HTTPException) -> Response | tuple[str, int]:
        """A page for a person who mistyped an address; problem details for programs."""
        if request.path.startswith(API_PREFIXES) or not _prefers_html():
            return problems.http_problem(error)
        ui_session.load_user(current_node())
        return error_page(error)

    @app.context_processor
    def navigation() -> dict[str, Any]:
        return {
            "navigation": [item for item in NAVIGATION if item[0] in current_app.view_functions]
        }


def _prefers_html() -> bool:
    accepted = request.accept_mimetypes
    return accepted.best_match(("application/json", "text/html")) == "text/html" and (
        accepted["text/html"] > accepted["application/json"]
    )


def page_blueprint(name: str, import_name: str, url_prefix: str | None = None) -> Blueprint:
    """A blueprint of pages: signed-in user loaded, CSRF checked, errors rendered, no-store."""
    blueprint = Blueprint(name, import_name, url_prefix=url_prefix)
    PAGE_BLUEPRINTS.add(name)

    @blueprint.before_request
    def before() -> None:
        ui_session.load_user(current_node())
        ui_session.check_csrf()

    @blueprint.after_request
    def never_cache(response: Response) -> Response:
        response.cache_control.no_store = True
        return response

    blueprint.register_error_handler(ExchangeError, error_page)
    blueprint.register_error_handler(HTTPException, error_page)
    return blueprint


def error_page(error: ExchangeError | HTTPException) -> tuple[str, int]:
    """The error as a page: its status, its stable code and what to do."""
    if isinstance(error, ExchangeError):
        status, code, detail = error.status, error.code, error.detail
    else:
        status = error.code or 500
        code, detail = HTTP_CODES.get(status, "http_error"), error.description or ""
    if status >= 500:
        log.error("%s on %s %s", code, request.method, request.path)
        detail = _("The node could not handle this request. Its logs say why.")
    elif status == 403:
        detail = _("Your account cannot open this page. Ask an administrator.")
    elif status == 404:
        detail = _("There is no such page here.")
    return render("errors/error.html", status=status, code=code, detail=detail), status


def render(template: str, **context: Any) -> str:
    """``render_template`` with what every page needs (the node's name, the time now)."""
    node = current_node()
    return render_template(template, node_name=node.settings.name, now=node.now(), **context)
