"""Referrals: sending (service, fields, consent, receipt), following, acting on, withdrawing.

This module is the list (``/referrals``): incoming and outgoing referrals, newest first,
filtered by role and status through the query string, without personal data (a short
id, the service and the other organization), 50 to a page
(:func:`~exchange_node.services.referral_pages.list_page`); ``before=<row id>`` shows
the page after that row, which the "Older referrals" link gives. Sending is
:mod:`ui_referrals_send`, one referral's page :mod:`ui_referrals_detail`, its actions
:mod:`ui_referrals_actions`.
"""

from __future__ import annotations

from flask import Blueprint, request

from exchange_node.db.models import ReferralRole
from exchange_node.errors import InvalidRequestError
from exchange_node.protocol.states import ReferralStatus
from exchange_node.services import referral_pages
from exchange_node.web import ui_labels as labels
from exchange_node.web import (
    ui_referrals_actions,
    ui_referrals_detail,
    ui_referrals_send,
)
from exchange_node.web.context import current_node
from exchange_node.web.ui_pages import page_blueprint, render
from exchange_node.web.ui_session import login_required

blueprint = page_blueprint("referrals", __name__, url_prefix="/referrals")

ROLES = (ReferralRole.RECEIVED.value, ReferralRole.SENT.value)
STATUSES = tuple(status.value for status in ReferralStatus)
#: A row id in ``before`` has at most this many digits.
MAX_BEFORE_DIGITS = 18


@blueprint.get("")
@login_required()
def index() -> str:
    role, status, before = _filters()
    node = current_node()
    with node.database.session() as session:
        pages = {
            shown_role: referral_pages.list_page(
                session, role=shown_role, status=status, before=before
            )
            for shown_role in ROLES
            if role in (None, shown_role)
        }
    return render(
        "referrals/index.html",
        pages=pages,
        role=role or "",
        status=status or "",
        before=before,
        statuses=[(code, labels.STATUSES[code]) for code in STATUSES],
        labels=labels,
    )


def _filters() -> tuple[str | None, str | None, int | None]:
    role = request.args.get("role") or None
    status = request.args.get("status") or None
    before = request.args.get("before") or None
    problems = {}
    if role is not None and role not in ROLES:
        problems["/query/role"] = "received or sent"
    if status is not None and status not in STATUSES:
        problems["/query/status"] = f"one of {', '.join(STATUSES)}"
    if before is not None and not (
        before.isascii() and before.isdigit() and len(before) <= MAX_BEFORE_DIGITS
    ):
        problems["/query/before"] = "a referral row id, as the Older referrals link gives it"
    if problems:
        raise InvalidRequestError("unknown filter: " + ", ".join(problems), problems)
    return role, status, None if before is None else int(before)


#: Every blueprint of this area; the app registers them all.
BLUEPRINTS: tuple[Blueprint, ...] = (
    blueprint,
    ui_referrals_send.blueprint,
    ui_referrals_detail.blueprint,
    ui_referrals_actions.blueprint,
)
