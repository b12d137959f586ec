"""The referral pages, end to end in one process: send with consent, deliver, act, withdraw.

The community's volunteer sends through the pages; delivery goes through the real
apps (in-memory transport); the clinic's intake staff act through their own pages.
Distinctive personal data lets each test check it never reaches a URL or a title.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from exchange_node.db.models import AuditEntry, OutboxMessage, Referral
from exchange_node.services import consent as receipts
from exchange_node.services import peers, referral_store
from exchange_node.services.delivery import deliver_until_idle
from exchange_node.web import ui_labels
from exchange_node.web.ui_labels import FIELDS
from exchange_node.web.ui_referrals_form import default_expiry
from tests.node.conftest import TestNode
from tests.node.test_referrals_support import CONTACT_NOTES, GIVEN_NAME, PHONE, list_service
from tests.node.web.conftest import PageClient, add_user

PERSONAL = (GIVEN_NAME, PHONE, CONTACT_NOTES, "they/them")


@pytest.fixture
def service_id(community: TestNode, clinic: TestNode) -> str:
    """A clinic service (given name, family name, phone, pronouns, language) the community
    holds in its directory."""
    return list_service(community, clinic)


@pytest.fixture
def intake(clinic: TestNode) -> PageClient:
    """Intake staff of the clinic, signed in."""
    client = PageClient(clinic)
    assert client.sign_in(add_user(clinic, "intake@clinic.example")).status_code == 303
    return client


def details(clinic: TestNode, service_id: str, **fields: Any) -> dict[str, Any]:
    """The first step of the form, filled in."""
    return {
        "peer": clinic.url,
        "service": service_id,
        "person-given_name": GIVEN_NAME,
        "person-phone": PHONE,
        "sc-channel": ["sms", "phone-call"],
        "sc-day": ["mon", "tue"],
        "sc-start": "15:30",
        "sc-end": "18:00",
        "sc-time-zone": "Europe/London",
        "sc-do-not-disclose": "the reason for the referral",
        "sc-notes": CONTACT_NOTES,
    } | fields


def consent(node: TestNode, **fields: Any) -> dict[str, Any]:
    """The consent step, filled in as the person agreed."""
    return {
        "consent-step": "1",
        "category": ["identity", "contact"],
        "purpose": "Referral to the youth drop-in.",
        "given-by": "self",
        "method": "verbal",
        "expires-on": default_expiry(node.node.now()),
    } | fields


def send(staff: PageClient, clinic: TestNode, service_id: str) -> str:
    """Send a referral through the pages; its id."""
    form = details(clinic, service_id)
    assert staff.post("/referrals/new", form).status_code == 200
    response = staff.post("/referrals/new/send", form | consent(staff.node))
    assert response.status_code == 303, page_text(response)
    match = re.fullmatch(r"/referrals/([0-9a-f-]{36})/sent", response.headers["Location"])
    assert match, response.headers["Location"]
    return match[1]


def page_text(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def title(response: TestResponse) -> str:
    found = re.search(r"<title>(.*?)</title>", page_text(response), re.DOTALL)
    return found[1] if found else ""


def assert_nothing_personal_in_addresses(*responses: TestResponse) -> None:
    for response in responses:
        request = response.request
        places = [request.path, request.query_string.decode(), title(response)]
        places.append(response.headers.get("Location", ""))
        for secret in PERSONAL:
            assert all(secret not in place for place in places), (secret, places)


def set_peer_status(node: TestNode, peer: TestNode, status: str) -> None:
    with node.node.database.session() as session:
        peers.change_status(node.node, session, peer.url, status)


def audited(node: TestNode, action: str) -> list[tuple[str, str]]:
    """(actor, subject) of the audit entries of ``action``."""
    with node.node.database.session() as session:
        found = session.execute(
            select(AuditEntry.actor, AuditEntry.subject).where(AuditEntry.action == action)
        )
        return [(actor, subject) for actor, subject in found]


def stored(node: TestNode) -> list[Referral]:
    with node.node.database.session() as session:
        rows = list(session.scalars(select(Referral)))
        session.expunge_all()
    return rows


def test_send_with_consent_then_the_clinic_accepts_and_the_community_sees_it(
    staff: PageClient, intake: PageClient, community: TestNode, clinic: TestNode, service_id: str
) -> None:
    form_page = staff.get(f"/referrals/new?peer={clinic.url}&service={service_id}")
    text = page_text(form_page)
    assert form_page.status_code == 200
    for name in ("given_name", "family_name", "phone", "pronouns", "preferred_language"):
        assert f'name="person-{name}"' in text
    assert 'name="person-date_of_birth"' not in text  # exactly the fields the service asks for
    assert "Do not mention" in text

    form = details(clinic, service_id)
    consent_page = staff.post("/referrals/new", form)
    text = page_text(consent_page)
    assert "Record consent" in text
    assert "Clinic" in text  # the receiving organization
    assert f'value="{GIVEN_NAME}"' in text  # carried in a hidden field, nothing stored yet
    assert re.search(r'value="identity" checked', text)
    assert stored(community) == []

    sent = staff.post("/referrals/new/send", form | consent(community))
    assert sent.status_code == 303
    confirmation = staff.get(sent.headers["Location"])
    [referral] = stored(community)
    assert re.fullmatch(r"user:[0-9]+", referral.created_by)  # never the e-mail address
    assert referral.consent_code in page_text(confirmation)
    assert "Queued" in page_text(confirmation)
    receipt = staff.get(f"/referrals/{referral.referral_id}/receipt")
    text = page_text(receipt)
    assert receipt.mimetype == "text/html"
    assert "no-store" in receipt.headers["Cache-Control"]
    assert "style-src 'self';" in receipt.headers["Content-Security-Policy"]  # no inline style
    assert "<style" not in text
    assert "style=" not in text
    assert referral.consent_code in text
    assert "How to withdraw" in text
    assert "your name" in text  # the categories shared, as the person reads them
    assert GIVEN_NAME not in text
    assert (referral.created_by, referral.referral_id) in audited(
        community, "referral.consent_receipt_viewed"
    )

    assert deliver_until_idle(community.node).delivered == 1
    incoming = intake.get("/referrals?role=received")
    assert referral.referral_id[:8] in page_text(incoming)
    assert "Youth drop-in" in page_text(incoming)
    assert GIVEN_NAME not in page_text(incoming)  # no personal data in the list
    detail = intake.get(f"/referrals/{referral.referral_id}")
    text = page_text(detail)
    assert GIVEN_NAME in text
    assert "Do not leave a voicemail or message." in text
    assert text.index("Contacting the person safely") < text.index("Timeline")  # prominent
    with clinic.node.database.session() as session:
        viewed = session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "referral.personal_data_viewed")
        )
    assert viewed == 1

    accepted = intake.post(
        f"/referrals/{referral.referral_id}/status", {"status": "accepted", "note": "Tuesday 10:00"}
    )
    assert accepted.status_code == 303
    assert "The referral is now: Accepted." in page_text(intake.get(accepted.headers["Location"]))
    assert deliver_until_idle(clinic.node).delivered == 1
    timeline = page_text(staff.get(f"/referrals/{referral.referral_id}"))
    assert re.search(r"<strong>Accepted</strong> by the receiving organization", timeline)
    assert "Tuesday 10:00" in timeline
    assert_nothing_personal_in_addresses(form_page, consent_page, sent, confirmation, detail)


def test_a_sensitive_category_is_asked_separately_and_unticked_means_not_sent(
    staff: PageClient, community: TestNode, clinic: TestNode, service_id: str
) -> None:
    form = details(clinic, service_id, **{"person-pronouns": "they/them"})
    text = page_text(staff.post("/referrals/new", form))
    sensitive = text[text.index("Sensitive information") :]
    assert 'value="gender_identity">' in sensitive  # its own checkbox, not ticked
    assert 'value="gender_identity"' not in text[: text.index("Sensitive information")]

    refused = staff.post("/referrals/new/send", form | consent(community))
    text = page_text(refused)
    assert refused.status_code == 400
    assert "Pronouns is sent only if the person agrees to share this" in text
    assert 'value="they/them"' in text  # the input is kept
    assert stored(community) == []
    back = page_text(staff.post("/referrals/new/edit", form | consent(community)))
    assert 'name="person-pronouns" type="text" value="they/them"' in back

    ticked = consent(community, category=["identity", "contact", "gender_identity"])
    assert staff.post("/referrals/new/send", form | ticked).status_code == 303
    [referral] = stored(community)
    data = referral_store.open_personal_data(community.node.data_key, referral)
    assert data is not None
    assert data.person["pronouns"] == "they/them"
    assert_nothing_personal_in_addresses(refused)


def test_bad_input_keeps_what_was_entered_and_a_form_needs_its_csrf_token(
    staff: PageClient, community: TestNode, clinic: TestNode, service_id: str
) -> None:
    form = details(clinic, service_id, **{"sc-channel": [], "person-phone": "9" * 40})
    response = staff.post("/referrals/new", form)
    text = page_text(response)
    assert response.status_code == 400
    assert "Choose at least one way the person may be contacted." in text
    assert "At most 32 characters." in text
    assert f'value="{GIVEN_NAME}"' in text
    assert CONTACT_NOTES in text
    no_consent_method = consent(community, method="")
    refused = staff.post("/referrals/new/send", details(clinic, service_id) | no_consent_method)
    assert refused.status_code == 400
    assert "Say how consent was given." in page_text(refused)
    # The group's error is tied to the group (the summary links to it by its id).
    assert '<fieldset id="f-method" aria-describedby="f-method-error">' in page_text(refused)
    assert '<p class="error" id="f-method-error">Say how consent was given.</p>' in (
        page_text(refused)
    )
    assert 'href="#f-method"' in page_text(refused)
    assert "Referral to the youth drop-in." in page_text(refused)
    without_token = staff.post(
        "/referrals/new/send", details(clinic, service_id) | consent(community), csrf=False
    )
    assert without_token.status_code == 400
    assert stored(community) == []
    assert_nothing_personal_in_addresses(response, refused)


def test_a_service_not_taking_referrals_needs_a_reason_to_send_anyway(
    staff: PageClient, community: TestNode, clinic: TestNode
) -> None:
    closed = list_service(community, clinic, accepting=False)
    form_page = page_text(staff.get(f"/referrals/new?peer={clinic.url}&service={closed}"))
    assert "This service is not taking referrals now." in form_page
    assert "Why send it anyway" in form_page
    form = details(clinic, closed)
    assert staff.post("/referrals/new", form).status_code == 400
    form["override-reason"] = "Urgent: the person is at risk tonight"
    assert staff.post("/referrals/new", form).status_code == 200
    set_peer_status(community, clinic, "suspended")  # between the two steps
    refused = staff.post("/referrals/new/send", form | consent(community))
    assert refused.status_code == 403
    assert "This organization is not trusted by this node now" in page_text(refused)
    assert "Urgent: the person is at risk tonight" in page_text(refused)
    set_peer_status(community, clinic, "trusted")
    assert staff.post("/referrals/new/send", form | consent(community)).status_code == 303
    [referral] = stored(community)
    assert referral.override


def test_each_side_sees_only_its_own_actions_and_the_state_machine_decides(
    staff: PageClient, intake: PageClient, community: TestNode, clinic: TestNode, service_id: str
) -> None:
    referral_id = send(staff, clinic, service_id)
    deliver_until_idle(community.node)
    sender = page_text(staff.get(f"/referrals/{referral_id}"))
    assert "Withdraw consent" in sender
    assert ">Cancel the referral</button>" in sender
    assert ">Accept</button>" not in sender
    receiver = page_text(intake.get(f"/referrals/{referral_id}"))
    assert ">Accept</button>" in receiver
    assert ">Decline</button>" in receiver
    assert ">Complete</button>" not in receiver  # not from requested
    assert "Withdraw consent" not in receiver

    path = f"/referrals/{referral_id}/status"
    no_reason = intake.post(path, {"status": "rejected", "note": "Full until June"})
    assert no_reason.status_code == 400
    assert "Choose a reason." in page_text(no_reason)
    assert "Full until June" in page_text(no_reason)
    skipped = intake.post(path, {"status": "completed"})
    assert skipped.status_code == 303
    flashed = page_text(intake.get(skipped.headers["Location"]))
    assert "This change is not allowed now" in flashed
    assert "the receiver may choose: accepted, rejected" in flashed
    assert intake.post(path, {"status": "accepted"}, csrf=False).status_code == 400
    assert [r.status for r in stored(clinic)] == ["requested"]
    declined = intake.post(path, {"status": "rejected", "reason": "no-capacity"})
    assert declined.status_code == 303
    assert [r.status for r in stored(clinic)] == ["rejected"]


def test_withdrawal_from_the_page_purges_here_and_at_the_peer(
    staff: PageClient, intake: PageClient, community: TestNode, clinic: TestNode, service_id: str
) -> None:
    referral_id = send(staff, clinic, service_id)
    deliver_until_idle(community.node)
    confirm = staff.get(f"/referrals/{referral_id}/withdraw")
    assert "This purges the person's data here and at the receiving organization" in (
        page_text(confirm)
    )
    withdrawn = staff.post(f"/referrals/{referral_id}/withdraw")
    assert withdrawn.status_code == 303
    page = page_text(staff.get(withdrawn.headers["Location"]))
    assert "Consent withdrawn." in page
    assert GIVEN_NAME not in page
    assert "The personal data was deleted here" in page
    [referral] = stored(community)
    assert referral.sealed is None

    deliver_until_idle(community.node)  # the cancellation and the withdrawal
    assert stored(clinic)[0].sealed is None
    assert GIVEN_NAME not in page_text(intake.get(f"/referrals/{referral_id}"))
    deliver_until_idle(clinic.node)  # the deletion receipt
    assert "Deleted at the peer at" in page_text(staff.get(f"/referrals/{referral_id}"))
    with community.node.database.session() as session:
        kinds = session.scalars(select(OutboxMessage.message_type).order_by(OutboxMessage.id))
        assert list(kinds) == ["referral", "referral-status", "consent-withdrawal"]


def test_the_list_filters_by_role_and_status_and_refuses_unknown_filters(
    staff: PageClient, clinic: TestNode, service_id: str
) -> None:
    referral_id = send(staff, clinic, service_id)
    outgoing = page_text(staff.get("/referrals?role=sent&status=requested"))
    assert referral_id[:8] in outgoing
    assert "Incoming referrals" not in outgoing
    assert referral_id[:8] not in page_text(staff.get("/referrals?status=accepted"))
    assert staff.get("/referrals?status=lost").status_code == 400
    picker = page_text(staff.get("/referrals/new"))
    assert f'value="{clinic.url} {service_id}"' in picker
    picked = staff.get("/referrals/new", query_string={"target": f"{clinic.url} {service_id}"})
    assert picked.status_code == 303
    assert 'name="person-given_name"' in page_text(staff.get(picked.headers["Location"]))


def test_every_intake_field_has_its_words() -> None:
    from exchange_node.protocol.intake import INTAKE_FIELDS

    assert set(FIELDS) == set(INTAKE_FIELDS)


def test_the_receipt_page_speaks_to_the_person_with_the_printed_receipts_words(
    community: TestNode,
) -> None:
    with community.app.test_request_context("/", headers={"Accept-Language": "en"}):
        categories = {code: str(text) for code, text in ui_labels.RECEIPT_CATEGORIES.items()}
        givers = {code: str(text).lower() for code, text in ui_labels.RECEIPT_GIVERS.items()}
        methods = {code: str(text).lower() for code, text in ui_labels.RECEIPT_METHODS.items()}
    assert categories == receipts.CATEGORY_LABELS
    assert givers == receipts.GIVER_LABELS
    assert methods == receipts.METHOD_LABELS
