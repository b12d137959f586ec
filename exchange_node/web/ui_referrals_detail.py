"""One referral's page: facts, timeline, deliveries, the person's data and what can be done.

Every view of the page shows the person's data and safe-contact preferences, so every
view is recorded in the audit log (:func:`record_personal_access`, as the command
line's ``show --personal``). The buttons offered are the status changes the state
machine allows this node's side (:func:`allowed_transitions`); the forms post to
:mod:`ui_referrals_actions`. The printable consent receipt is served here too,
in the reader's language (its opening is audited by :func:`consent.open_receipt`).
"""

from __future__ import annotations

from typing import Any

from flask import url_for
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from exchange_node.db.models import Referral, ReferralRole
from exchange_node.node import Node
from exchange_node.protocol.messages import parse_timestamp
from exchange_node.protocol.states import REASON_REQUIRED, Side, allowed_transitions
from exchange_node.services import consent, referral_pages, referrals
from exchange_node.services.referral_queries import record_personal_access
from exchange_node.web import ui_labels as labels
from exchange_node.web.context import current_node
from exchange_node.web.ui_pages import page_blueprint, render
from exchange_node.web.ui_session import login_required, web_actor

blueprint = page_blueprint("referral", __name__, url_prefix="/referrals")

TIME_KEYS = (
    "consent_expires_at",
    "created_at",
    "updated_at",
    "closed_at",
    "withdrawn_at",
    "purged_at",
    "peer_deleted_at",
)


@blueprint.get("/<referral_id>")
@login_required()
def show(referral_id: str) -> tuple[str, int]:
    node = current_node()
    with node.database.session() as session:
        referral = referral_pages.find_by_id(session, referral_id)
        return render_detail(node, session, referral)


@blueprint.get("/<referral_id>/receipt")
@login_required()
def receipt(referral_id: str) -> str:
    """The person's consent receipt, printable, in the page's language (sent referrals)."""
    node = current_node()
    with node.database.session() as session:
        referral = referral_pages.find_by_id(session, referral_id)
        facts = consent.open_receipt(node, session, referral, actor=web_actor(), now=node.now())
    return render("referral/receipt.html", receipt=facts, referral_id=referral_id, labels=labels)


def render_detail(
    node: Node,
    session: Session,
    referral: Referral,
    *,
    errors: dict[str, str] | None = None,
    form: MultiDict[str, str] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    """The referral's page (its personal data shown, and that recorded in the audit log)."""
    shown = with_unix_times(referrals.describe(node, referral, personal=True))
    record_personal_access(session, referral, actor=web_actor(), now=node.now())
    side = Side.SENDER if referral.role == ReferralRole.SENT else Side.RECEIVER
    actions = [s for s in allowed_transitions(referral.status, side) if s in labels.ACTIONS]
    page = render(
        "referral/show.html",
        shown=shown,
        switch_to=url_for("referral.show", referral_id=referral.referral_id),
        side=side.value,
        actions=actions,
        needs_reason=[s for s in actions if s in REASON_REQUIRED],
        can_withdraw=referral.role == ReferralRole.SENT and referral.withdrawn_at is None,
        reasons=list(labels.REASONS.items()),
        errors=errors or {},
        form=form or MultiDict(),
        labels=labels,
    )
    return page, status


def with_unix_times(shown: dict[str, Any]) -> dict[str, Any]:
    """:func:`~exchange_node.services.referrals.describe`'s RFC 3339 times as Unix seconds,
    which the pages' ``|when`` filter shows in the reader's locale."""
    result = dict(shown)
    for key in TIME_KEYS:
        result[key] = _unix(shown.get(key))
    result["timeline"] = [event | {"time": _unix(event["time"])} for event in shown["timeline"]]
    for key in ("messages", "failed_messages"):
        result[key] = [_message_times(message) for message in shown[key]]
    result["delivery"] = shown["delivery"] and _message_times(shown["delivery"])
    record = shown.get("consent") or {}
    result["consent_captured_at"] = _unix(record.get("captured_at"))
    return result


def _message_times(message: dict[str, Any]) -> dict[str, Any]:
    return message | {
        "created_at": _unix(message["created_at"]),
        "delivered_at": _unix(message["delivered_at"]),
    }


def _unix(value: Any) -> int | None:
    return None if value is None else parse_timestamp(str(value), "/time")
