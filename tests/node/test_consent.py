"""The person's consent receipt: what it says, what it must never say, and after a purge."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select

from exchange_node.db.models import AuditEntry, Referral
from exchange_node.errors import InvalidRequestError
from exchange_node.services.consent import consent_receipt, open_receipt
from exchange_node.services.referrals import withdraw
from tests.node.test_referrals_support import (
    CONTACT_NOTES,
    GIVEN_NAME,
    PHONE,
    create,
    draft,
    receive,
    service_id,
)

if TYPE_CHECKING:
    from tests.node.conftest import TestNode

__all__ = ["service_id"]


def receipt(test_node: TestNode, referral: Referral, *, html: bool = False) -> str:
    node = test_node.node
    with node.database.session() as session:
        return consent_receipt(
            node,
            session,
            session.get_one(Referral, referral.id),
            actor="cli",
            now=node.now(),
            html=html,
        )


def assert_no_person_data(text: str) -> None:
    for secret in (GIVEN_NAME, PHONE, CONTACT_NOTES, "they/them"):
        assert secret not in text


def test_the_text_receipt_says_who_what_why_until_when_and_how_to_withdraw(
    community: TestNode, clinic: TestNode, service_id: str
) -> None:
    person = {"given_name": GIVEN_NAME, "phone": PHONE, "pronouns": "they/them"}
    categories = ("identity", "contact", "gender_identity")
    sent = create(community, draft(clinic, service_id, person=person, categories=categories))
    text = receipt(community, sent)
    code = sent.consent_code or ""
    assert text.startswith(f"Consent receipt {code}\n")
    assert "Community shares your information with Clinic (https://clinic.example)" in text
    assert "for the service: Youth drop-in." in text
    assert "- your name\n" in text
    assert "- how to contact you (phone, e-mail or address)\n" in text
    assert "- your gender identity or pronouns (sensitive: you agreed" in text
    assert "Referral to the youth drop-in, and follow-up on its outcome." in text
    assert "Until 1 April 2027, 00:00 UTC" in text
    assert "Given by you, spoken (verbal), on 1 January 2027, 00:00 UTC." in text
    assert "staff member reference staff-0042" in text
    assert f"Contact Community at any time and quote the code {code}." in text
    assert "deleted at both organizations" in text
    assert_no_person_data(text)


def test_only_sensitive_categories_are_marked(
    community: TestNode, clinic: TestNode, service_id: str
) -> None:
    sent = create(community, draft(clinic, service_id))
    assert "sensitive" not in receipt(community, sent)


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: dict[str, dict[str, str | None]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes.setdefault(tag, dict(attrs))


def test_the_html_receipt_is_a_self_contained_escaped_page(
    community: TestNode, clinic: TestNode, service_id: str
) -> None:
    purpose = "Help with <school> & housing"
    sent = create(community, draft(clinic, service_id, purpose=purpose))
    page = receipt(community, sent, html=True)
    parsed = _Page()
    parsed.feed(page)
    assert page.startswith("<!DOCTYPE html>")
    assert parsed.attributes["html"] == {"lang": "en"}
    assert "script" not in parsed.tags
    assert "link" not in parsed.tags
    assert "img" not in parsed.tags
    assert not re.search(r"(src|href)=", page)
    assert "Help with &lt;school&gt; &amp; housing" in page
    assert f"<h1>Consent receipt {sent.consent_code}</h1>" in page
    assert "<li>your name</li>" in page
    assert_no_person_data(page)


def test_after_a_withdrawal_the_receipt_says_the_data_was_deleted(
    community: TestNode, clinic: TestNode, service_id: str
) -> None:
    sent = create(community, draft(clinic, service_id))
    node = community.node
    with node.database.session() as session:
        withdraw(node, session, sent.referral_id, actor="cli", now=node.now())
    text = receipt(community, sent)
    assert sent.consent_code in text
    assert "You withdrew your consent on 1 January 2027, 00:00 UTC." in text
    assert "Community deleted the information it shared on 1 January 2027" in text
    assert "Clinic has not yet confirmed deleting it." in text
    assert "your name" not in text  # the categories were sealed with the data


def test_a_received_referral_has_no_receipt_here(
    community: TestNode, clinic: TestNode, service_id: str
) -> None:
    received = receive(clinic, community, service_id)
    with pytest.raises(InvalidRequestError, match="organization that made the referral"):
        receipt(clinic, received)


def test_showing_a_receipt_is_audited(
    community: TestNode, clinic: TestNode, service_id: str
) -> None:
    sent = create(community, draft(clinic, service_id))
    receipt(community, sent)
    with community.node.database.session() as session:
        last = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
        assert last is not None
        assert (last.actor, last.action, last.subject) == (
            "cli",
            "referral.consent_receipt_viewed",
            sent.referral_id,
        )


def test_the_facts_of_the_receipt_come_as_data_and_only_codes_and_times_once_purged(
    community: TestNode, clinic: TestNode, service_id: str
) -> None:
    categories = ("identity", "gender_identity")
    person = {"given_name": GIVEN_NAME, "pronouns": "they/them"}
    sent = create(community, draft(clinic, service_id, person=person, categories=categories))
    node = community.node
    with node.database.session() as session:
        referral = session.get_one(Referral, sent.id)
        facts = open_receipt(node, session, referral, actor="cli", now=node.now())
        assert facts.code == sent.consent_code
        assert (facts.organization, facts.withdraw_contact) == ("Community", "Community")
        assert (facts.peer_organization, facts.service) == ("Clinic", "Youth drop-in")
        assert facts.consent is not None
        assert facts.consent.categories == categories
        assert facts.consent.sensitive == ("gender_identity",)
        assert (facts.consent.given_by, facts.consent.method) == ("self", "verbal")
        assert facts.purged_at is None
        withdraw(node, session, sent.referral_id, actor="cli", now=node.now())
        purged = open_receipt(node, session, referral, actor="cli", now=node.now())
    assert purged.consent is None  # sealed with the data
    assert purged.withdrawn_at == purged.purged_at == node.now()
    assert_no_person_data(repr(facts) + repr(purged))
