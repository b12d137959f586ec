"""Signing in and out, and the language switch."""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app, make_response, redirect, request, session, url_for
from flask_babel import format_timedelta
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from exchange_node.errors import AuthenticationError
from exchange_node.services import login_throttle, users
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
    """Sign in, unless the account or the client's address is locked (checked first).

    A failure counts against the account from this address, the address and the account
    (:mod:`~exchange_node.services.login_throttle`), in a transaction of its own; a
    success clears the count of the account from this address.
    """
    node = current_node()
    email = request.form.get("email", "")[: users.MAX_EMAIL_LENGTH + 1]
    password = request.form.get("password", "")
    keys = login_throttle.sign_in_keys(email, request.remote_addr, secret=_throttle_secret())
    try:
        with node.database.session() as db:
            login_throttle.check_allowed(db, keys, node.now())
            user = users.verify_password(db, email, password)
            login_throttle.record_success(db, keys)
            ui_session.sign_in(user)
    except login_throttle.SignInThrottledError as e:
        log.info("a sign-in was refused: too many failed attempts")
        return _throttled(email, e.retry_after)
    except AuthenticationError:
        log.info("a sign-in failed")
        with node.database.session() as db:
            login_throttle.record_failure(db, keys, node.now())
        error = _("Wrong e-mail address or password, or the account is disabled.")
        page = render(
            "auth/login.html", next=_next_page(), email=email, error=error, switch_to=_again()
        )
        return page, 401
    return redirect(_next_page(), code=303)


def _throttled(email: str, retry_after: int) -> BaseResponse:
    """429 with Retry-After, and the sign-in page saying how long to wait."""
    wait = format_timedelta(timedelta(seconds=max(retry_after, 1)), threshold=1)
    error = _(
        "Too many failed sign-ins. Signing in to this account, or from this network, "
        "is paused for your safety. Try again in %(wait)s.",
        wait=wait,
    )
    page = render(
        "auth/login.html", next=_next_page(), email=email, error=error, switch_to=_again()
    )
    response = make_response(page, 429)
    response.headers["Retry-After"] = str(max(retry_after, 1))
    return response


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


def _again() -> str:
    """The sign-in page (GET) going to the same page: where the language switch leads."""
    return url_for("auth.login", next=_next_page())


def _next_page() -> str:
    return ui_session.safe_next(request.values.get("next"), url_for("dashboard.index"))


def _throttle_secret() -> bytes:
    """The session key: the throttle's keys are HMACs under it, not plain hashes."""
    secret = current_app.secret_key
    return secret if isinstance(secret, bytes) else str(secret).encode()
