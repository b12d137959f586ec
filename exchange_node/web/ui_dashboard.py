"""The dashboard: what needs someone's attention on this node."""

from __future__ import annotations

from exchange_node.web.ui_pages import page_blueprint, render
from exchange_node.web.ui_session import login_required

blueprint = page_blueprint("dashboard", __name__)


@blueprint.get("/")
@login_required()
def index() -> str:
    return render("dashboard/index.html")
