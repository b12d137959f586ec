"""Signing in and out, and the language switch."""

from __future__ import annotations

import logging

from flask import redirect, request, session, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from exchange_node.errors import AuthenticationError
from exchange_node.services import users
from exchange_node.web import ui_session
from exchange_node.web.context import current_node
from exchange_node.web.ui_i18n import LANGUAGES
from exchange_node.web.ui_pages import page_blueprint, render

blueprint = page_blueprint("auth", __name__)
log = logging.getLogger("exchange_node.web")


@blueprint.get("/login")
def login() -> str | BaseResponse:
    if ui_session.current_user() is not None:
        return redirect(_next_page())
    return render("auth/login.html", next=_next_page(), email="", error=None)


@blueprint.post("/login")
def login_post() -> tuple[str, int] | BaseResponse:
    node = current_node()
    email = request.form.get("email", "")[: users.MAX_EMAIL_LENGTH + 1]
    password = request.form.get("password", "")
    with node.database.session() as db:
        try:
            user = users.verify_password(db, email, password)
        except AuthenticationError:
            log.info("a sign-in failed")
            error = _("Wrong e-mail address or password, or the account is disabled.")
            page = render("auth/login.html", next=_next_page(), email=email, error=error)
            return page, 401
        ui_session.sign_in(user)
    return redirect(_next_page(), code=303)


@blueprint.post("/logout")
def logout() -> BaseResponse:
    ui_session.sign_out()
    return ui_session.redirect_to("auth.login")


@blueprint.post("/language")
def choose_language() -> BaseResponse:
    """Keep the chosen language in the session and go back to the page it was chosen on."""
    language = request.form.get("lang", "")
    if language in LANGUAGES:
        session["lang"] = language
    return redirect(ui_session.safe_next(request.form.get("next"), url_for("dashboard.index")), 303)


def _next_page() -> str:
    return ui_session.safe_next(request.values.get("next"), url_for("dashboard.index"))
