"""Administration of peers: list, add by pinned thumbprint, peering requests, status, refresh.

The trust decisions are made by :mod:`exchange_node.services.peers`, as for the command
line; these views parse forms, call it with the administrator as actor, and turn its
errors (a thumbprint that does not match, a peer that cannot be reached) into messages.
Peers are named in URLs by their row id only.
"""

from __future__ import annotations

import re

from flask import abort, flash, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from exchange_node.db.models import Peer, PeerStatus
from exchange_node.errors import (
    ConflictError,
    ExchangeError,
    InvalidRequestError,
    NotFoundError,
    PeerRefusedError,
    PeerUnreachableError,
)
from exchange_node.protocol.errors import ProtocolError, UntrustedKeyError
from exchange_node.services import peers
from exchange_node.web.context import current_node
from exchange_node.web.ui_admin_forms import admin_blueprint, form_text
from exchange_node.web.ui_pages import render
from exchange_node.web.ui_session import login_required, redirect_to, web_actor

blueprint = admin_blueprint("admin_peers", __name__, url_prefix="/admin/peers")

#: An RFC 7638 thumbprint of an Ed25519 key: 43 base64url characters.
THUMBPRINT = re.compile(r"[A-Za-z0-9_-]{43}")
MAX_URL_LENGTH = 512
MAX_MESSAGE_LENGTH = 500
#: Errors that mean "this peer could not be added or accepted as asked", not a node failure.
_REFUSALS = (InvalidRequestError, ConflictError, PeerUnreachableError, PeerRefusedError)


@blueprint.get("")
@login_required(role="admin")
def index() -> str:
    with current_node().database.session() as session:
        listed = peers.list_peers(session)
    return render(
        "admin_peers/index.html",
        requests=[peer for peer in listed if peer.status == PeerStatus.PENDING],
        peers=[peer for peer in listed if peer.status != PeerStatus.PENDING],
    )


@blueprint.get("/add")
@login_required(role="admin")
def add() -> str:
    return render("admin_peers/add.html", values={}, errors={})


@blueprint.post("/add")
@login_required(role="admin")
def add_post() -> tuple[str, int] | BaseResponse:
    node = current_node()
    values = {
        "url": form_text("url", MAX_URL_LENGTH),
        "thumbprint": form_text("thumbprint", 64),
        "message": form_text("message", MAX_MESSAGE_LENGTH),
    }
    errors = _check_add(values)
    if errors:
        return _add_page(values, errors), 400
    try:
        with node.database.session() as session:
            peer = peers.add_peer(
                node,
                session,
                values["url"],
                values["thumbprint"],
                values["message"],
                actor=web_actor(),
            )
            peer_id, name, warning = peer.id, peer.organization_name, peer.last_error
    except _REFUSALS as e:
        return _add_page(values, _add_errors(e)), e.status
    flash(_("%(name)s is now trusted.", name=name), "success")
    if warning:
        flash(_("The peering request could not be delivered: %(reason)s", reason=warning), "error")
    return redirect_to("admin_peers.show", peer_id=peer_id)


@blueprint.get("/<int:peer_id>")
@login_required(role="admin")
def show(peer_id: int) -> str:
    return _show_page(peer_id)


@blueprint.post("/<int:peer_id>/accept")
@login_required(role="admin")
def accept(peer_id: int) -> tuple[str, int] | BaseResponse:
    """Trust a pending peer, once its thumbprint (confirmed out of band) is typed in."""
    node = current_node()
    thumbprint = form_text("thumbprint", 64)
    if not THUMBPRINT.fullmatch(thumbprint):
        return _show_page(peer_id, thumbprint, _thumbprint_format()), 400
    try:
        with node.database.session() as session:
            entity_id = _peer(session, peer_id).entity_id
            accepted = peers.accept_peer(node, session, entity_id, thumbprint, actor=web_actor())
            name = accepted.organization_name
    except _REFUSALS as e:
        errors = _add_errors(e)
        return _show_page(peer_id, thumbprint, errors.get("thumbprint") or errors["url"]), e.status
    flash(_("%(name)s is now trusted.", name=name), "success")
    return redirect_to("admin_peers.show", peer_id=peer_id)


@blueprint.post("/<int:peer_id>/suspend")
@login_required(role="admin")
def suspend(peer_id: int) -> BaseResponse:
    return _change(peer_id, PeerStatus.SUSPENDED)


@blueprint.post("/<int:peer_id>/resume")
@login_required(role="admin")
def resume(peer_id: int) -> BaseResponse:
    return _change(peer_id, PeerStatus.TRUSTED)


@blueprint.post("/<int:peer_id>/remove")
@login_required(role="admin")
def remove(peer_id: int) -> BaseResponse:
    """Remove a peer, or decline a peering request (the same change: pending -> removed)."""
    return _change(peer_id, PeerStatus.REMOVED)


@blueprint.post("/<int:peer_id>/refresh")
@login_required(role="admin")
def refresh(peer_id: int) -> BaseResponse:
    """Fetch the peer's entity configuration now; a failure is recorded on the peer."""
    node = current_node()
    with node.database.session() as session:
        peer = _peer(session, peer_id)
        if peer.status not in (PeerStatus.TRUSTED, PeerStatus.SUSPENDED):
            abort(409)
        try:  # in the session: the failure (count, error, backoff) is kept on the peer
            peers.refresh_peer(node, session, peer, actor=web_actor())
            flash(_("The peer's keys and endpoints were fetched again."), "success")
        except (ExchangeError, ProtocolError) as e:
            flash(_("The peer could not be refreshed: %(reason)s", reason=e.detail), "error")
    return redirect_to("admin_peers.show", peer_id=peer_id)


def _change(peer_id: int, status: PeerStatus) -> BaseResponse:
    node = current_node()
    try:
        with node.database.session() as session:
            entity_id = _peer(session, peer_id).entity_id
            peers.change_status(node, session, entity_id, status, actor=web_actor())
    except ConflictError:
        flash(_("This change is not possible in the peer's present state."), "error")
        return redirect_to("admin_peers.show", peer_id=peer_id)
    flash(str(_CHANGED[status]), "success")
    if status == PeerStatus.REMOVED:
        return redirect_to("admin_peers.index")
    return redirect_to("admin_peers.show", peer_id=peer_id)


def _add_page(values: dict[str, str], errors: dict[str, str]) -> str:
    switch_to = url_for("admin_peers.add")
    return render("admin_peers/add.html", values=values, errors=errors, switch_to=switch_to)


def _show_page(peer_id: int, thumbprint: str = "", error: str | None = None) -> str:
    """A peer's page: its facts, and the actions its state allows."""
    with current_node().database.session() as session:
        peer = _peer(session, peer_id)
        return render(
            "admin_peers/show.html",
            switch_to=url_for("admin_peers.show", peer_id=peer_id),
            peer=peer,
            signing=[key.kid for key in peer.keys if key.use == "sig"],
            changes=peers.STATUS_CHANGES[peer.status],
            thumbprint=thumbprint,
            errors={} if error is None else {"thumbprint": error},
        )


def _peer(session: Session, peer_id: int) -> Peer:
    peer = session.get(Peer, peer_id)
    if peer is None:
        raise NotFoundError(f"no peer {peer_id}")
    return peer


def _check_add(values: dict[str, str]) -> dict[str, str]:
    errors = {}
    if not values["url"]:
        errors["url"] = _("Give the peer's address, such as https://clinic.example.org.")
    if not THUMBPRINT.fullmatch(values["thumbprint"]):
        errors["thumbprint"] = _thumbprint_format()
    return errors


def _add_errors(error: ExchangeError) -> dict[str, str]:
    """What went wrong adding or accepting a peer, on the field it concerns."""
    if isinstance(error.__cause__, UntrustedKeyError):
        return {
            "thumbprint": _(
                "The node at this address is not signed by this thumbprint. Nothing was "
                "stored. Check the thumbprint with its administrator."
            )
        }
    if isinstance(error, PeerUnreachableError):
        return {
            "url": _(
                "The node at this address could not be reached: %(reason)s", reason=error.detail
            )
        }
    if isinstance(error, PeerRefusedError):
        return {"url": _("The node at this address refused: %(reason)s", reason=error.detail)}
    return {"url": error.detail}


def _thumbprint_format() -> str:
    return str(
        _("A thumbprint has 43 letters, digits, '-' and '_'. Copy it as its administrator gave it.")
    )


_CHANGED = {
    PeerStatus.SUSPENDED: lazy_gettext(
        "The peer is suspended: nothing is sent to it or accepted from it."
    ),
    PeerStatus.TRUSTED: lazy_gettext("The peer is trusted again."),
    PeerStatus.REMOVED: lazy_gettext("The peer was removed."),
}
