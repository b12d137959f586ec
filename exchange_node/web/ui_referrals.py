"""Referrals: sending (service, fields, consent, receipt), following, acting on, withdrawing.

This module is the list (``/referrals``): incoming and outgoing referrals, newest first,
filtered by role and status through the query string, without personal data (a short
id, the service and the other organization). Sending is :mod:`ui_referrals_send`, one
referral's page :mod:`ui_referrals_detail`, its actions :mod:`ui_referrals_actions`.
"""

from __future__ import annotations

from flask import Blueprint, request

from exchange_node.db.models import ReferralRole
from exchange_node.errors import InvalidRequestError
from exchange_node.protocol.states import ReferralStatus
from exchange_node.services import referrals
from exchange_node.web import (
    ui_referrals_actions,
    ui_referrals_detail,
    ui_referrals_send,
)
from exchange_node.web import ui_referrals_text as labels
from exchange_node.web.context import current_node
from exchange_node.web.ui_pages import page_blueprint, render
from exchange_node.web.ui_referrals_detail import with_unix_times
from exchange_node.web.ui_session import login_required

blueprint = page_blueprint("referrals", __name__, url_prefix="/referrals")

#: Rows per table (newest first).
LIMIT = 100
ROLES = (ReferralRole.RECEIVED.value, ReferralRole.SENT.value)
STATUSES = tuple(status.value for status in ReferralStatus)


@blueprint.get("")
@login_required()
def index() -> str:
    role, status = _filters()
    node = current_node()
    tables = {}
    with node.database.session() as session:
        for shown_role in ROLES:
            if role in (None, shown_role):
                found = referrals.list_referrals(
                    session, role=shown_role, status=status, limit=LIMIT
                )
                tables[shown_role] = [
                    with_unix_times(referrals.describe(node, referral, personal=False))
                    for referral in found
                ]
    return render(
        "referrals/index.html",
        tables=tables,
        role=role or "",
        status=status or "",
        statuses=[(code, labels.STATUSES[code]) for code in STATUSES],
        limit=LIMIT,
        labels=labels,
    )


def _filters() -> tuple[str | None, str | None]:
    role = request.args.get("role") or None
    status = request.args.get("status") or None
    problems = {}
    if role is not None and role not in ROLES:
        problems["/query/role"] = "received or sent"
    if status is not None and status not in STATUSES:
        problems["/query/status"] = f"one of {', '.join(STATUSES)}"
    if problems:
        raise InvalidRequestError("unknown filter: " + ", ".join(problems), problems)
    return role, status


#: Every blueprint of this area; the app registers them all.
BLUEPRINTS: tuple[Blueprint, ...] = (
    blueprint,
    ui_referrals_send.blueprint,
    ui_referrals_detail.blueprint,
    ui_referrals_actions.blueprint,
)
