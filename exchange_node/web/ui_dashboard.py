"""The dashboard: what needs someone's attention on this node.

Referrals received and still open, referrals sent and waiting for their outcome,
deliveries that failed, and trusted peers that fail or have gone quiet, as counts and
short lists linking to each referral. Identifiers, statuses and codes only: never a
referred person's data. The queries are :mod:`exchange_node.services.dashboard`'s.
"""

from __future__ import annotations

from exchange_node.services import dashboard
from exchange_node.web import ui_labels as labels
from exchange_node.web.context import current_node
from exchange_node.web.ui_pages import page_blueprint, render
from exchange_node.web.ui_session import current_user, login_required

blueprint = page_blueprint("dashboard", __name__)


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
        labels=labels,
        show_admin_link=user is not None and user.is_admin,
    )
