"""Acting on a referral from its page: a status change, or the person's withdrawal of consent.

Each action is a POST with the session's CSRF token; the referral services check,
record, queue the message to the peer and audit it. Then the browser goes back to
the referral's page (303) with a message. A change the state machine refuses is
shown with the service's words, which name the changes that are allowed; a missing
reason shows the page again with the form as it was.
"""

from __future__ import annotations

from flask import flash, request
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from exchange_node.db.models import ReferralRole
from exchange_node.errors import (
    ConflictError,
    InvalidRequestError,
    PeerNotTrustedError,
)
from exchange_node.protocol.errors import IllegalTransitionError
from exchange_node.protocol.states import REASON_REQUIRED
from exchange_node.services import referral_pages, referrals
from exchange_node.services.referral_changes import change_status as change_referral_status
from exchange_node.web import ui_labels as labels
from exchange_node.web.context import current_node
from exchange_node.web.ui_pages import page_blueprint, render
from exchange_node.web.ui_referrals_detail import render_detail, with_unix_times
from exchange_node.web.ui_session import login_required, redirect_to, web_actor

blueprint = page_blueprint("referral_actions", __name__, url_prefix="/referrals")

MAX_REASON_TEXT = 500


@blueprint.post("/<referral_id>/status")
@login_required()
def change_status(referral_id: str) -> BaseResponse | tuple[str, int]:
    """Move the referral on as this node's side; the other organization is told."""
    form = request.form
    status = form.get("status", "")
    needs_reason = status in REASON_REQUIRED
    node = current_node()
    try:
        with node.database.session() as session:
            referral = referral_pages.find_by_id(session, referral_id)
            change_referral_status(
                node,
                session,
                referral,
                status=status,
                reason_code=(form.get("reason") or None) if needs_reason else None,
                reason_text=(form.get("reason_text", "").strip() or None) if needs_reason else None,
                note=form.get("note", "").strip() or None,
                actor=web_actor(),
                now=node.now(),
            )
    except IllegalTransitionError as e:
        flash(_("This change is not allowed now: %(detail)s", detail=e.detail), "error")
    except InvalidRequestError as e:
        with node.database.session() as session:
            referral = referral_pages.find_by_id(session, referral_id)
            errors = _form_errors(e)
            return render_detail(node, session, referral, errors=errors, form=form, status=400)
    except (ConflictError, PeerNotTrustedError) as e:
        flash(e.detail, "error")
    else:
        node.notify_outbox()
        flash(
            _(
                "The referral is now: %(status)s. The other organization will be told.",
                status=labels.STATUSES[status],
            ),
            "success",
        )
    return redirect_to("referral.show", referral_id=referral_id)


@blueprint.get("/<referral_id>/withdraw")
@login_required()
def confirm_withdrawal(referral_id: str) -> str | BaseResponse:
    """Ask first: withdrawing purges the data here and at the peer."""
    node = current_node()
    with node.database.session() as session:
        referral = referral_pages.find_by_id(session, referral_id)
        if referral.role != ReferralRole.SENT or referral.withdrawn_at is not None:
            flash(_("Consent for this referral cannot be withdrawn here."), "error")
            return redirect_to("referral.show", referral_id=referral_id)
        shown = with_unix_times(referrals.describe(node, referral, personal=False))
    return render("referral_actions/withdraw.html", shown=shown, labels=labels)


@blueprint.post("/<referral_id>/withdraw")
@login_required()
def withdraw(referral_id: str) -> BaseResponse:
    """The person withdrew consent: purge the data here, ask the peer to purge its copy."""
    node = current_node()
    try:
        with node.database.session() as session:
            referral = referral_pages.find_by_id(session, referral_id)
            referrals.withdraw(
                node, session, referral.referral_id, actor=web_actor(), now=node.now()
            )
    except (InvalidRequestError, ConflictError) as e:
        flash(e.detail, "error")
    else:
        node.notify_outbox()
        flash(
            _(
                "Consent withdrawn. The personal data was deleted here, and the receiving "
                "organization is asked to delete its copy."
            ),
            "success",
        )
    return redirect_to("referral.show", referral_id=referral_id)


def _form_errors(error: InvalidRequestError) -> dict[str, str]:
    """The service's refusal, keyed by the status form's fields."""
    text = request.form.get("reason_text", "").strip()
    messages = {
        "/reason/code": ("reason", _("Choose a reason.")),
        "/reason": ("reason", _("Choose a reason.")),
        "/reason/text": (
            "reason_text",
            _("At most %(count)s characters.", count=MAX_REASON_TEXT)
            if text
            else _("Say what the reason is: it is needed when the reason is Other."),
        ),
        "/note": ("note", _("At most %(count)s characters.", count=1000)),
    }
    errors = dict(messages[pointer] for pointer in error.fields if pointer in messages)
    return errors or {"status": error.detail}
