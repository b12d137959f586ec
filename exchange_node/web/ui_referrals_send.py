"""Sending a referral: pick a service, the person's details, consent, then the receipt.

``/referrals/new?peer=<entity id>&service=<service id>`` shows the form for one service
of a trusted peer: exactly the intake fields it asks for, plus safe contact. Its POST
shows the consent step, which posts everything again (hidden fields) to
``/referrals/new/send``; only then is the referral created, through
:func:`~exchange_node.services.referrals.create_referral`, so nothing is stored before
consent and nothing personal reaches a URL. The confirmation page gives the consent
receipt code; the receipt itself is :mod:`ui_referrals_detail`'s.
"""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response as BaseResponse

from exchange_node.db.models import ReferralRole
from exchange_node.errors import InvalidRequestError, NotFoundError, PeerNotTrustedError
from exchange_node.protocol.intake import SENSITIVE_CATEGORIES
from exchange_node.services import referral_pages, referrals
from exchange_node.services.referral_pages import ReferralTarget, ServiceChoice
from exchange_node.services.referrals import ServiceNotAcceptingError
from exchange_node.web import ui_labels as labels
from exchange_node.web import ui_referrals_form as form_fields
from exchange_node.web.context import current_node
from exchange_node.web.ui_pages import page_blueprint, render
from exchange_node.web.ui_referrals_detail import with_unix_times
from exchange_node.web.ui_referrals_form import Details
from exchange_node.web.ui_session import login_required, redirect_to, web_actor

blueprint = page_blueprint("referral_send", __name__, url_prefix="/referrals")

Page = tuple[str, int]


@blueprint.get("/new")
@login_required()
def new() -> str | BaseResponse:
    """The form for one service, or a list of the trusted peers' services to pick from."""
    if "target" in request.args:  # the picker: go to the form's own address
        peer, _space, service = request.args.get("target", "").partition(" ")
        return redirect(url_for(".new", peer=peer, service=service), code=303)
    peer, service = request.args.get("peer", ""), request.args.get("service", "")
    node = current_node()
    with node.database.session() as session:
        if not (peer or service):
            choices = referral_pages.service_choices(session, now=node.now())
            return _pick_page(choices)
        target = referral_pages.find_target(session, peer, service, now=node.now())
    return _details_page(target, MultiDict(), {})[0]


@blueprint.post("/new")
@login_required()
def review() -> Page:
    """Check the person's details and safe contact, then ask for consent."""
    target = _target()
    details = form_fields.read_details(request.form, target)
    errors = details.errors | _trust_errors(target)
    if errors:
        return _details_page(target, request.form, errors, 400)
    return _consent_page(target, details, {})


@blueprint.post("/new/edit")
@login_required()
def edit() -> Page:
    """Back from the consent step to the details, as entered."""
    return _details_page(_target(), request.form, {})


@blueprint.post("/new/send")
@login_required()
def send() -> Page | BaseResponse:
    """Create the referral with the consent given, then show its receipt code."""
    node = current_node()
    now = node.now()
    target = _target()
    details = form_fields.read_details(request.form, target)
    if details.errors:  # only if the hidden fields were changed, or the service was
        return _details_page(target, request.form, details.errors, 400)
    offered = form_fields.offered_categories(details.person)
    consent = form_fields.read_consent(request.form, offered, now)
    if consent.errors:
        return _consent_page(target, details, consent.errors, 400)
    draft = _draft(target, details, consent)
    try:
        with node.database.session() as session:
            referral = referrals.create_referral(node, session, draft, actor=web_actor(), now=now)
            referral_id = referral.referral_id
    except ServiceNotAcceptingError:  # it stopped taking referrals meanwhile: ask why send
        fresh = _target()
        return _details_page(
            fresh, request.form, form_fields.read_details(request.form, fresh).errors, 409
        )
    except (InvalidRequestError, NotFoundError, PeerNotTrustedError) as e:
        refused = form_fields.service_errors(e, consent.categories)
        return _consent_page(target, details, refused, e.status)
    node.notify_outbox()
    flash(_("The referral is stored and will be sent."), "success")
    return redirect_to(".sent", referral_id=referral_id)


@blueprint.get("/<referral_id>/sent")
@login_required()
def sent(referral_id: str) -> str:
    """The confirmation: the consent receipt code to give the person, and the receipt."""
    node = current_node()
    with node.database.session() as session:
        referral = referral_pages.find_by_id(session, referral_id)
        if referral.role != ReferralRole.SENT:
            raise NotFoundError("only a referral this node sent has a consent receipt")
        shown = with_unix_times(referrals.describe(node, referral, personal=False))
    return render("referral_send/sent.html", shown=shown, labels=labels)


def _pick_page(choices: list[ServiceChoice]) -> str:
    options = []
    for choice in choices:
        text = _(
            "%(organization)s: %(service)s",
            organization=choice.peer_organization,
            service=choice.name,
        )
        if not choice.accepting_referrals:
            text = _("%(service)s (not taking referrals)", service=text)
        elif choice.stale:
            text = _("%(service)s (information out of date)", service=text)
        options.append((f"{choice.peer_entity_id} {choice.service_id}", text))
    return render("referral_send/pick.html", options=options)


def _target() -> ReferralTarget:
    node = current_node()
    peer, service = request.form.get("peer", ""), request.form.get("service", "")
    with node.database.session() as session:
        return referral_pages.find_target(session, peer, service, now=node.now())


def _form_address(target: ReferralTarget) -> str:
    """The (empty) form for this service: where the language switch leads from a step
    shown after a POST (what was typed is not carried: it is never put in a URL)."""
    return url_for("referral_send.new", peer=target.peer_entity_id, service=target.service_id)


def _trust_errors(target: ReferralTarget) -> dict[str, str]:
    if target.peer_trusted:
        return {}
    return {
        form_fields.SUBMIT: _(
            "This organization is not trusted by this node now: referrals cannot be sent to it."
        )
    }


def _details_page(
    target: ReferralTarget, form: MultiDict[str, str], errors: dict[str, str], status: int = 200
) -> Page:
    page = render(
        "referral_send/details.html",
        target=target,
        switch_to=_form_address(target),
        form=form,
        errors=errors,
        names=form_fields,
        labels=labels,
    )
    return page, status


def _consent_page(
    target: ReferralTarget, details: Details, errors: dict[str, str], status: int = 200
) -> Page:
    form = request.form
    offered = form_fields.offered_categories(details.person)
    again = form_fields.CONSENT_SHOWN in form  # shown before: keep what was entered
    default_purpose = _(
        "Referral to %(service)s, and follow-up on its outcome.", service=target.service_name
    )
    default_expiry = form_fields.default_expiry(current_node().now())
    page = render(
        "referral_send/consent.html",
        target=target,
        switch_to=_form_address(target),
        carried=form_fields.carried(form, target),
        plain=[category for category in offered if category not in SENSITIVE_CATEGORIES],
        sensitive=[category for category in offered if category in SENSITIVE_CATEGORIES],
        chosen=form_fields.chosen_categories(form, offered),
        purpose=form.get(form_fields.PURPOSE, "") if again else default_purpose,
        given_by=form.get(form_fields.GIVEN_BY, "") if again else "self",
        method=form.get(form_fields.METHOD, ""),
        expires_on=form.get(form_fields.EXPIRES, "") if again else default_expiry,
        errors=errors,
        names=form_fields,
        labels=labels,
    )
    return page, status


def _draft(
    target: ReferralTarget, details: Details, consent: form_fields.Consent
) -> referrals.ReferralDraft:
    return referrals.ReferralDraft(
        peer=target.peer_entity_id,
        service_id=target.service_id,
        person=details.person,
        categories=consent.categories,
        purpose=consent.purpose,
        given_by=consent.given_by,
        method=consent.method,
        captured_by=web_actor(),  # an opaque staff reference, never a name or e-mail address
        expires_at=consent.expires_at,
        safe_contact=details.safe_contact,
        override_reason=details.override_reason,
    )
