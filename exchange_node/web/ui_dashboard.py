"""The dashboard: what needs someone's attention on this node.

Referrals received and still open, referrals sent and waiting for their outcome,
deliveries that failed, and trusted peers that fail or have gone quiet, as counts and
short lists linking to each referral. Identifiers, statuses and codes only: never a
referred person's data. The queries are :mod:`exchange_node.services.dashboard`'s.
"""

from __future__ import annotations

from urllib.parse import quote

from flask import current_app, url_for
from flask_babel import lazy_gettext

from exchange_node.services import dashboard
from exchange_node.web.context import current_node
from exchange_node.web.ui_pages import page_blueprint, render
from exchange_node.web.ui_session import current_user, login_required

blueprint = page_blueprint("dashboard", __name__)

#: Referral statuses as people read them.
STATUS_LABELS = {
    "requested": lazy_gettext("Requested"),
    "accepted": lazy_gettext("Accepted"),
    "rejected": lazy_gettext("Declined"),
    "cancelled": lazy_gettext("Cancelled"),
    "in-progress": lazy_gettext("In progress"),
    "on-hold": lazy_gettext("On hold"),
    "completed": lazy_gettext("Completed"),
    "failed": lazy_gettext("Failed"),
    "entered-in-error": lazy_gettext("Entered in error"),
}
#: Message types of the outbox as people read them.
MESSAGE_LABELS = {
    "referral": lazy_gettext("Referral"),
    "referral-status": lazy_gettext("Status update"),
    "consent-withdrawal": lazy_gettext("Consent withdrawal"),
    "deletion-receipt": lazy_gettext("Deletion receipt"),
}


@blueprint.get("/")
@login_required()
def index() -> str:
    node = current_node()
    user = current_user()
    with node.database.session() as session:
        attention = dashboard.attention(node, session, now=node.now())
    return render(
        "dashboard/index.html",
        attention=attention,
        status_labels=STATUS_LABELS,
        message_labels=MESSAGE_LABELS,
        referral_path=referral_path,
        admin_page=_admin_page() if user is not None and user.is_admin else None,
    )


def referral_path(referral_id: str) -> str:
    """The referral's page (``referrals.detail``; its path while that page is not there)."""
    if "referrals.detail" in current_app.view_functions:
        return url_for("referrals.detail", referral_id=referral_id)
    return f"/referrals/{quote(referral_id, safe='')}"


def _admin_page() -> str | None:
    return url_for("admin.index") if "admin.index" in current_app.view_functions else None
