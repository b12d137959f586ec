"""Administration of integration clients (OAuth 2 client credentials): list, add, revoke.

A new client's secret is shown once, on the page that answers the form: never in a URL,
a flash message or a log, and it cannot be shown again (only its hash is stored).
"""

from __future__ import annotations

from flask import flash, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from exchange_node.errors import InvalidRequestError
from exchange_node.services import clients
from exchange_node.web.context import current_node
from exchange_node.web.ui_admin_forms import admin_blueprint, field_problems, form_text
from exchange_node.web.ui_pages import render
from exchange_node.web.ui_session import login_required, redirect_to, web_actor

blueprint = admin_blueprint("admin_clients", __name__, url_prefix="/admin/clients")

MAX_CLIENT_ID_LENGTH = 64


@blueprint.get("")
@login_required(role="admin")
def index() -> str:
    with current_node().database.session() as session:
        listed = clients.list_clients(session)
    return render("admin_clients/index.html", clients=listed)


@blueprint.get("/add")
@login_required(role="admin")
def add() -> str:
    return render("admin_clients/add.html", values={"scopes": []}, errors={}, scopes=clients.SCOPES)


@blueprint.post("/add")
@login_required(role="admin")
def add_post() -> str | tuple[str, int]:
    """Add the client and show its secret, this once (the page is never cached)."""
    node = current_node()
    name = form_text("name", clients.MAX_NAME_LENGTH + 1)
    chosen = [scope[:64] for scope in request.form.getlist("scopes")[: len(clients.SCOPES) + 1]]
    values = {"name": name, "scopes": chosen}
    try:
        with node.database.session() as session:
            client, secret = clients.add_client(
                session, name, chosen, node.now(), actor=web_actor()
            )
            client_id, scopes = client.client_id, list(client.scopes)
    except InvalidRequestError as e:
        errors = _client_errors(field_problems(e))
        page = render(
            "admin_clients/add.html",
            values=values,
            errors=errors,
            scopes=clients.SCOPES,
            switch_to=url_for("admin_clients.add"),
        )
        return page, e.status
    return render(
        "admin_clients/created.html",
        switch_to=url_for("admin_clients.index"),
        name=name,
        client_id=client_id,
        secret=secret,
        scopes=scopes,
        token_url=node.settings.url + url_for("oauth.token"),
    )


@blueprint.post("/<client_id>/revoke")
@login_required(role="admin")
def revoke(client_id: str) -> BaseResponse:
    """Refuse the client's tokens from now on."""
    node = current_node()
    with node.database.session() as session:
        clients.revoke_client(
            session, client_id[:MAX_CLIENT_ID_LENGTH], node.now(), actor=web_actor()
        )
    flash(_("The client is revoked: its tokens no longer work."), "success")
    return redirect_to("admin_clients.index")


def _client_errors(problems: dict[str, str]) -> dict[str, str]:
    errors = {}
    if "name" in problems:
        errors["name"] = _(
            "Give the client a name of 1 to %(count)s characters.", count=clients.MAX_NAME_LENGTH
        )
    if "scopes" in problems:
        errors["scopes"] = _("Choose at least one scope.")
    return errors or {"name": _("The client could not be added.")}
