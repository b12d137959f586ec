"""The referral loop in a real browser, across two real nodes.

A volunteer at the community network finds the clinic's drop-in in the directory,
fills in exactly the fields the clinic asks for, records the person's consent and
sends the referral; intake staff at the clinic open it and accept it; the volunteer
reloads the referral and sees it accepted. The referral form in Arabic is laid out
right to left. The two people use separate browser contexts (their own cookies), as
two people on two computers would. Messages travel through the nodes' own workers,
so the pages are reloaded until they show what arrived.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from exchange_node.demo_referral import PERSON
from tests.browser.conftest import (
    NO_PLAYWRIGHT,
    Nodes,
    box,
    reload_until,
    screenshot,
    sign_in,
    text_edges,
)

pytest.importorskip("playwright.sync_api", reason=NO_PLAYWRIGHT)

from playwright.sync_api import BrowserContext, Locator, Page, expect

SERVICE = "Youth sexual health drop-in"
PURPOSE = "Referral to the youth sexual health drop-in, and follow-up on its outcome."


def fact(page: Page, term: str) -> Locator:
    """The value of ``term`` in the page's first list of facts (``<dt>``/``<dd>``)."""
    return page.locator("dl.facts").first.locator(f"dt:text-is('{term}') + dd")


def find_and_refer(page: Page, nodes: Nodes) -> str:
    """From the dashboard, search the directory and open the form; the form's address."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Directory").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Find a service")
    page.get_by_label("Search for").fill("sexual health")
    page.get_by_role("button", name="Search").click()
    card = page.get_by_role("listitem").filter(has=page.get_by_role("heading", name=SERVICE))
    expect(card).to_have_count(1)
    expect(card.get_by_text("Open places")).to_be_visible()  # the capacity badge
    screenshot(page, "directory-search")
    card.get_by_role("link", name="Refer someone").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Send a referral")
    assert f"service={nodes.service_id}" in page.url
    return page.url


def fill_in_and_consent(page: Page) -> str:
    """The clinic's intake fields, safe contact, consent; sent. The consent receipt code."""
    person = page.get_by_role("group", name="About the person")
    expect(person.get_by_role("textbox")).to_have_count(3)  # exactly what the clinic asks for
    person.get_by_label("Given name").fill(PERSON["given_name"])
    person.get_by_label("Phone number").fill(PERSON["phone"])
    person.get_by_label("Pronouns").fill(PERSON["pronouns"])
    page.get_by_label("Text message (SMS)").check()
    page.get_by_label("Do not mention").fill("gender identity")
    screenshot(page, "referral-form-en")
    page.get_by_role("button", name="Continue to consent").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Record consent")
    expect(page.get_by_text("Riverside Clinic").first).to_be_visible()
    sensitive = page.get_by_label("Gender identity or pronouns")
    expect(sensitive).not_to_be_checked()  # sensitive: asked on its own, never ticked for them
    page.get_by_label("Name", exact=True).check()
    page.get_by_label("Contact details (phone, e-mail or address)").check()
    sensitive.check()
    page.get_by_label("Purpose").fill(PURPOSE)
    page.get_by_label("The person themselves").check()
    page.get_by_label("Verbal (spoken)").check()
    screenshot(page, "referral-consent-en")
    page.get_by_role("button", name="Send referral").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Referral sent")
    code = page.locator(".receipt-code code").inner_text()
    assert re.fullmatch(r"[A-Z0-9]{4}-[A-Z0-9]{4}", code), code
    screenshot(page, "referral-sent-en")
    return code


def accept_at_the_clinic(page: Page, nodes: Nodes, referral_id: str) -> None:
    """Intake staff find the incoming referral, read it and accept it."""
    sign_in(page, nodes.clinic, nodes.intake)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Referrals").click()
    link = page.get_by_role("link", name=referral_id[:8])
    reload_until(page, lambda: expect(link).to_be_visible(timeout=1_000))
    screenshot(page, "referrals-clinic-en")
    link.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(referral_id[:8])
    expect(fact(page, "Status")).to_have_text("Requested")
    expect(page.get_by_text(PERSON["given_name"], exact=True)).to_be_visible()  # decrypted here
    safe_contact = page.get_by_role("region", name="Contacting the person safely")
    expect(safe_contact).to_contain_text("Do not leave a voicemail or message.")
    screenshot(page, "referral-incoming-en")
    page.get_by_role("button", name="Accept").click()
    expect(fact(page, "Status")).to_have_text("Accepted")


def test_a_referral_goes_round_the_loop_in_the_browser(
    new_context: Callable[..., BrowserContext], nodes: Nodes
) -> None:
    volunteer = new_context().new_page()
    sign_in(volunteer, nodes.community, nodes.volunteer)
    form_address = find_and_refer(volunteer, nodes)
    code = fill_in_and_consent(volunteer)
    volunteer.get_by_role("link", name="Open the referral").click()
    expect(fact(volunteer, "Consent receipt code")).to_contain_text(code)
    referral_id = volunteer.url.rsplit("/", 1)[1]
    assert re.fullmatch(r"[\w-]{16,}", referral_id), volunteer.url
    for value in PERSON.values():  # no personal data in what the browser history keeps
        assert value not in volunteer.url
        assert value not in volunteer.title()
    expect(fact(volunteer, "Status")).to_have_text("Requested")

    accept_at_the_clinic(new_context().new_page(), nodes, referral_id)

    reload_until(volunteer, lambda: expect(fact(volunteer, "Status")).to_have_text("Accepted"))
    expect(volunteer.locator("ol.timeline")).to_contain_text("Accepted")
    screenshot(volunteer, "referral-accepted-en")

    check_the_arabic_form_is_right_to_left(volunteer, form_address)


def check_the_arabic_form_is_right_to_left(page: Page, form_address: str) -> None:
    page.goto(form_address)
    page.get_by_role("button", name="العربية").click()
    html = page.locator("html")
    expect(html).to_have_attribute("dir", "rtl")
    expect(html).to_have_attribute("lang", "ar")
    assert page.url == form_address  # the same form, now in Arabic
    field, label = box(page, "main form input[type='text']"), box(page, "main form label")
    # Right to left: a field and its label start at the right, the label's text too.
    assert abs((field["x"] + field["width"]) - (label["x"] + label["width"])) < 2
    label_text = text_edges(page, "main form label")
    assert abs(label_text[1] - (label["x"] + label["width"])) < 2, "the label starts on the left"
    main = box(page, "main")
    assert field["x"] + field["width"] > main["x"] + main["width"] - 60, "the field is on the left"
    screenshot(page, "referral-form-ar")
