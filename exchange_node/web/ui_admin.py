"""Administration (administrators only): the overview, this node's keys, the audit log.

Peers, users and integration clients have modules of their own (``ui_admin_*``), listed
in :data:`BLUEPRINTS`. Every change is a POST made through a service, which audits it
under the administrator's user id.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from flask import Blueprint, flash, request
from flask_babel import format_timedelta
from flask_babel import gettext as _
from sqlalchemy import func, select
from werkzeug.wrappers import Response as BaseResponse

from exchange_node.db.models import AuditEntry, PeerStatus
from exchange_node.errors import ConfigurationError
from exchange_node.services import audit, peers
from exchange_node.web import ui_admin_clients, ui_admin_peers, ui_admin_users
from exchange_node.web.context import current_node
from exchange_node.web.ui_admin_forms import admin_blueprint
from exchange_node.web.ui_i18n import show_time
from exchange_node.web.ui_pages import render
from exchange_node.web.ui_session import login_required, redirect_to, web_actor

blueprint = admin_blueprint("admin", __name__, url_prefix="/admin")

#: Every blueprint of this area; the app registers them all.
BLUEPRINTS: tuple[Blueprint, ...] = (
    blueprint,
    ui_admin_peers.blueprint,
    ui_admin_users.blueprint,
    ui_admin_clients.blueprint,
)
#: Audit entries per page.
AUDIT_PAGE = 50


@blueprint.get("")
@login_required(role="admin")
def index() -> str:
    """A short status: peers by state, waiting requests, this node's thumbprint, the log."""
    node = current_node()
    with node.database.session() as session:
        by_status = Counter(peer.status for peer in peers.list_peers(session))
        thumbprint = node.ring(session).signing_key.kid
        verified = audit.verify(session)
    return render(
        "admin/index.html",
        by_status=[(status, by_status.get(status, 0)) for status in PeerStatus],
        pending=by_status.get(PeerStatus.PENDING, 0),
        thumbprint=thumbprint,
        verified=verified,
    )


@blueprint.get("/keys")
@login_required(role="admin")
def keys() -> str:
    node = current_node()
    with node.database.session() as session:
        statuses = node.keystore.statuses(session, node.now())
        thumbprint = node.ring(session).signing_key.kid
    return render(
        "admin/keys.html",
        statuses=statuses,
        thumbprint=thumbprint,
        rotating=any(status.state == "next" for status in statuses),
    )


@blueprint.get("/keys/rotate")
@login_required(role="admin")
def keys_rotate() -> str:
    """The confirmation step: what a rotation does, and when."""
    node = current_node()
    overlap = node.settings.key_overlap_seconds
    return render(
        "admin/rotate.html",
        overlap_text=format_timedelta(timedelta(seconds=overlap), threshold=1),
        switch_at=node.now() + overlap,
    )


@blueprint.post("/keys/rotate")
@login_required(role="admin")
def keys_rotate_post() -> BaseResponse:
    node = current_node()
    overlap = node.settings.key_overlap_seconds
    try:
        with node.database.session() as session:
            new = node.keystore.rotate(session, node.now(), overlap, actor=web_actor())
    except ConfigurationError:
        flash(_("A rotation is already under way: wait until the new keys sign."), "error")
        return redirect_to("admin.keys")
    flash(
        _(
            "New keys are published. The new signing key %(kid)s signs from %(when)s.",
            kid=new[0].kid,
            when=show_time(node.now() + overlap),
        ),
        "success",
    )
    return redirect_to("admin.keys")


@blueprint.get("/audit", endpoint="audit")
@login_required(role="admin")
def audit_log() -> str:
    """The latest entries, newest first, a page at a time; and whether the chain holds."""
    node = current_node()
    with node.database.session() as session:
        verified = audit.verify(session)
        last = session.scalar(select(func.max(AuditEntry.seq))) or 0
        end = _page_end(request.args.get("before", type=int), last)
        found = audit.entries(session, after_seq=max(end - 1 - AUDIT_PAGE, 0), limit=AUDIT_PAGE)
    shown = [entry for entry in reversed(found) if entry.seq < end]
    return render(
        "admin/audit.html",
        verified=verified,
        entries=shown,
        older=shown[-1].seq if shown and shown[-1].seq > 1 else None,
        # Newer entries: a page further on, or the latest page (no ``before``).
        newer=end <= last,
        newer_before=end + AUDIT_PAGE if end + AUDIT_PAGE <= last else None,
    )


def _page_end(before: int | None, last: int) -> int:
    """The page shows entries before this sequence number (the latest: ``last + 1``)."""
    if before is None or before < 1:
        return last + 1
    return min(before, last + 1)
