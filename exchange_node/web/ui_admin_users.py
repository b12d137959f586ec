"""Administration of the people who sign in: list, add, disable.

The rules (e-mail address, role, password length) are :mod:`exchange_node.services.users`'s;
these views show its refusals as translated messages on the fields they concern. Password
hashes are never read into a page, and a password typed in is never sent back.
"""

from __future__ import annotations

from flask import flash, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from exchange_node.db.models import User
from exchange_node.errors import ConflictError, InvalidRequestError, NotFoundError
from exchange_node.services import users
from exchange_node.web import ui_session
from exchange_node.web.context import current_node
from exchange_node.web.ui_admin_forms import admin_blueprint, field_problems, form_text
from exchange_node.web.ui_pages import render
from exchange_node.web.ui_session import login_required, redirect_to, web_actor

blueprint = admin_blueprint("admin_users", __name__, url_prefix="/admin/users")


@blueprint.get("")
@login_required(role="admin")
def index() -> str:
    with current_node().database.session() as session:
        accounts = [_account(user) for user in users.list_users(session)]
    return render("admin_users/index.html", accounts=accounts)


@blueprint.get("/add")
@login_required(role="admin")
def add() -> str:
    return render("admin_users/add.html", values={"role": "staff"}, errors={})


@blueprint.post("/add")
@login_required(role="admin")
def add_post() -> tuple[str, int] | BaseResponse:
    node = current_node()
    values = {
        "email": form_text("email", users.MAX_EMAIL_LENGTH + 1),
        "role": form_text("role", 16),
    }
    password = request.form.get("password", "")[: users.MAX_PASSWORD_LENGTH + 1]
    if password != request.form.get("password_again", "")[: users.MAX_PASSWORD_LENGTH + 1]:
        errors = {"password_again": _("The two passwords differ. Type the same password twice.")}
        return _add_page(values, errors), 400
    try:
        with node.database.session() as session:
            users.add_user(
                session, values["email"], values["role"], password, node.now(), actor=web_actor()
            )
    except (InvalidRequestError, ConflictError) as e:
        errors = _user_errors(field_problems(e), password)
        return _add_page(values, errors), e.status
    flash(_("The account was added. Tell its owner the password in person."), "success")
    return redirect_to("admin_users.index")


@blueprint.post("/<int:user_id>/disable")
@login_required(role="admin")
def disable(user_id: int) -> BaseResponse:
    """Stop an account from signing in (its sessions end at their next request)."""
    signed_in = ui_session.current_user()
    if signed_in is not None and signed_in.id == user_id:
        flash(_("You cannot disable your own account."), "error")
        return redirect_to("admin_users.index")
    node = current_node()
    with node.database.session() as session:
        user = session.get(User, user_id)
        if user is None:
            raise NotFoundError(f"no user {user_id}")
        users.disable_user(session, user.email, node.now(), actor=web_actor())
    flash(_("The account is disabled and can no longer sign in."), "success")
    return redirect_to("admin_users.index")


def _add_page(values: dict[str, str], errors: dict[str, str]) -> str:
    switch_to = url_for("admin_users.add")
    return render("admin_users/add.html", values=values, errors=errors, switch_to=switch_to)


def _account(user: User) -> dict[str, object]:
    """What the list shows of an account (not its password hash)."""
    return {
        "id": user.id,
        "email": user.email,
        "role": user.role,
        "disabled": user.disabled,
        "created_at": user.created_at,
    }


def _user_errors(problems: dict[str, str], password: str) -> dict[str, str]:
    """The service's refusals (English rule texts) as translated messages per field."""
    errors = {}
    if "email" in problems:
        errors["email"] = (
            _("There is already an account with this e-mail address.")
            if problems["email"] == "taken"
            else _("Give an e-mail address like name@example.org.")
        )
    if "role" in problems:
        errors["role"] = _("Choose a role.")
    if "password" in problems:
        errors["password"] = _password_error(password)
    return errors or {"email": _("The account could not be added.")}


def _password_error(password: str) -> str:
    if len(password) < users.MIN_PASSWORD_LENGTH:
        return str(
            _("The password needs at least %(count)s characters.", count=users.MIN_PASSWORD_LENGTH)
        )
    if len(password) > users.MAX_PASSWORD_LENGTH:
        return str(
            _(
                "The password can have at most %(count)s characters.",
                count=users.MAX_PASSWORD_LENGTH,
            )
        )
    return str(_("The password must not be the e-mail address."))
