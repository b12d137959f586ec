"""The pages in Arabic: right to left, every text of the page translated, Arabic dates.

"Translated" is checked against the catalog itself: no text of the page may still be
an English message the Arabic catalog translates (a string missed by extraction, a
label evaluated before the request's language was known, a stale ``.mo``). Names
that are data (the nodes' organizations, the service) are allowed to stay English.
"""

from __future__ import annotations

import re
from functools import cache
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import pytest
from babel.messages.pofile import read_po
from flask_babel import ngettext

from exchange_node.services import referral_store
from exchange_node.services.delivery import deliver_until_idle
from exchange_node.web.ui_i18n import show_age, show_time
from tests.conftest import NOW
from tests.node.test_referrals_support import GIVEN_NAME, list_service
from tests.node.web.conftest import PageClient, add_user
from tests.node.web.test_referral_pages import consent, details, page_text, stored

if TYPE_CHECKING:
    from werkzeug.test import TestResponse

    from tests.node.conftest import TestNode

PACKAGE = Path(__file__).resolve().parents[3] / "exchange_node"
CATALOG = PACKAGE / "translations" / "ar" / "LC_MESSAGES" / "messages.po"
#: Data, not interface text: the test nodes' organization names and the clinic's service.
DATA = frozenset({"Community", "Clinic", "Youth drop-in"})
#: The medium date-time of the ar locale: 01‏/01‏/2027، 12:00:00 ص (RLM marks, Arabic comma).
ARABIC_DATE_TIME = re.compile(r"\d{2}\u200f/\d{2}\u200f/\d{4}، \d{1,2}:\d{2}:\d{2} [صم]")
#: The names the message extractor looks for (Babel's defaults and the two lazy ones).
EXTRACTED_NAMES = frozenset(
    {"_", "gettext", "ngettext", "pgettext", "npgettext", "lazy_gettext", "lazy_ngettext"}
)


class _TextNodes(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.texts.append(" ".join(data.split()))


@cache
def translated_english() -> frozenset[str]:
    """Every English message the Arabic catalog gives another text."""
    with CATALOG.open("rb") as file:
        catalog = read_po(file, locale="ar")
    return frozenset(
        entry.id
        for entry in catalog
        if isinstance(entry.id, str) and entry.id and entry.string and entry.string != entry.id
    )


def english_left(response: TestResponse) -> list[str]:
    """Texts of the page that are still an English message of the catalog."""
    parser = _TextNodes()
    parser.feed(page_text(response))
    return [text for text in parser.texts if text in translated_english() and text not in DATA]


def in_arabic(client: PageClient) -> PageClient:
    assert client.post("/language", {"lang": "ar", "next": "/"}).status_code == 303
    return client


def assert_arabic_page(response: TestResponse, status: int = 200) -> str:
    text = page_text(response)
    assert response.status_code == status, text
    assert '<html lang="ar" dir="rtl">' in text
    assert english_left(response) == []
    return text


@pytest.fixture
def service_id(community: TestNode, clinic: TestNode) -> str:
    """A clinic service asking for names, phone, pronouns and language, in the directory."""
    return list_service(community, clinic)


def test_the_sign_in_page_and_its_error_are_in_arabic(community: TestNode) -> None:
    client = PageClient(community)
    arabic = {"Accept-Language": "ar"}
    text = assert_arabic_page(client.get("/login", headers=arabic))
    assert "<title>تسجيل الدخول · Community</title>" in text
    assert "كلمة المرور" in text
    assert "Password" not in text

    email = add_user(community, "volunteer@community.example")
    refused = client.post("/login", {"email": email, "password": "wrong"}, headers=arabic)
    text = assert_arabic_page(refused, 401)
    assert "البريد الإلكتروني أو كلمة المرور غير صحيحين، أو أن الحساب معطَّل." in text
    assert f'value="{email}"' in text  # the address typed is kept


def test_the_dashboard_and_its_menu_follow_the_language_switch(staff: PageClient) -> None:
    text = assert_arabic_page(in_arabic(staff).get("/"))
    assert "<h1>لوحة المتابعة</h1>" in text
    for label in ("الإحالات", "الدليل", "الخدمات"):  # the menu's lazy labels, per request
        assert f">{label}</a>" in text
    assert "عمليات تسليم فاشلة: 0" in text
    assert "Dashboard" not in text

    assert staff.post("/language", {"lang": "en", "next": "/"}).status_code == 303
    english = page_text(staff.get("/"))
    assert '<html lang="en" dir="ltr">' in english
    assert "<h1>Dashboard</h1>" in english


def test_a_referral_is_sent_and_accepted_in_arabic(
    staff: PageClient, community: TestNode, clinic: TestNode, service_id: str
) -> None:
    intake = PageClient(clinic)
    assert intake.sign_in(add_user(clinic, "intake@clinic.example")).status_code == 303
    in_arabic(staff)
    in_arabic(intake)

    form_page = staff.get(f"/referrals/new?peer={clinic.url}&service={service_id}")
    text = assert_arabic_page(form_page)
    for words in ("الاسم الأول", "الضمائر المفضَّلة", "التواصل الآمن مع الشخص", "الاثنين"):
        assert words in text
    assert "رسالة نصية (SMS)" in text

    missing_channel = details(clinic, service_id, **{"sc-channel": []})
    text = assert_arabic_page(staff.post("/referrals/new", missing_channel), 400)
    assert "يُرجى اختيار وسيلة واحدة على الأقل للتواصل مع الشخص." in text
    assert f'value="{GIVEN_NAME}"' in text

    form = details(clinic, service_id, **{"person-pronouns": "they/them"})
    text = assert_arabic_page(staff.post("/referrals/new", form))
    assert "<h1>تسجيل الموافقة</h1>" in text
    sensitive = text[text.index("معلومات حساسة") :]
    assert "الهوية الجندرية أو الضمائر المفضَّلة" in sensitive
    assert 'value="gender_identity">' in sensitive  # its own choice, not ticked
    assert "الإحالة إلى Youth drop-in، ومتابعة نتيجتها." in text  # the purpose offered

    purpose = "الإحالة إلى خدمة الشباب ومتابعة نتيجتها."
    agreed = consent(community, category=["identity", "contact", "gender_identity"])
    sent = staff.post("/referrals/new/send", form | agreed | {"purpose": purpose})
    assert sent.status_code == 303, page_text(sent)
    text = assert_arabic_page(staff.get(sent.headers["Location"]))
    assert "تم إرسال الإحالة" in text
    assert "أُدرجت للإرسال" in text  # the delivery state
    assert ARABIC_DATE_TIME.search(text)  # when the consent ends, written the Arabic way
    [referral] = stored(community)
    data = referral_store.open_personal_data(community.node.data_key, referral)
    assert data is not None
    assert data.consent["purpose"] == purpose

    receipt = assert_arabic_page(staff.get(f"/referrals/{referral.referral_id}/receipt"))
    assert "<title>إيصال الموافقة · Community</title>" in receipt
    assert f"<code>{referral.consent_code}</code>" in receipt
    for words in ("كيفية سحب الموافقة", "اسمك", "هويتك الجندرية أو ضمائرك المفضَّلة", "شفهيًا"):
        assert words in receipt
    assert "How to withdraw" not in receipt
    assert "(معلومة حساسة: أعطيت موافقتك على مشاركتها تحديدًا)" in receipt
    assert ARABIC_DATE_TIME.search(receipt)

    assert deliver_until_idle(community.node).delivered == 1
    path = f"/referrals/{referral.referral_id}"
    accepted = intake.post(f"{path}/status", {"status": "accepted"})
    assert accepted.status_code == 303
    text = assert_arabic_page(intake.get(accepted.headers["Location"]))
    assert "حالة الإحالة الآن: قُبلت. سيتم إبلاغ الجهة الأخرى." in text
    assert "يجب عدم ترك رسالة صوتية أو رسالة مكتوبة." in text  # safe contact, first
    # a phone number keeps its left-to-right order on a right-to-left page
    assert re.search(r'<dd dir="ltr">\+?[0-9 ]+</dd>', text), "the phone number is not ltr"
    assert deliver_until_idle(clinic.node).delivered == 1
    text = assert_arabic_page(staff.get(path))
    assert "<strong>قُبلت</strong> من قِبل الجهة المستقبِلة" in text


def switch_target(response: TestResponse) -> str:
    """Where the page's language switch leads (its hidden ``next``)."""
    found = re.search(r'<input type="hidden" name="next" value="([^"]*)">', page_text(response))
    assert found, "no language switch"
    return unescape(found[1])


def test_the_switch_on_a_page_answering_a_post_leads_to_a_page_that_can_be_opened(
    staff: PageClient, community: TestNode, clinic: TestNode, service_id: str
) -> None:
    assert switch_target(staff.get("/referrals?role=sent")) == "/referrals?role=sent"
    consent_step = staff.post("/referrals/new", details(clinic, service_id))
    target = switch_target(consent_step)
    assert urlsplit(target).path == "/referrals/new"  # not /referrals/new/send (POST only)
    assert parse_qs(urlsplit(target).query) == {"peer": [clinic.url], "service": [service_id]}
    assert GIVEN_NAME not in target
    switched = staff.post("/language", {"lang": "ar", "next": target})
    assert switched.headers["Location"] == target
    text = assert_arabic_page(staff.get(target))
    assert 'name="person-given_name"' in text  # the form of the same service, again

    no_method = consent(community, method="")
    refused = staff.post("/referrals/new/send", details(clinic, service_id) | no_method)
    assert refused.status_code == 400  # the consent step again, with its error
    assert switch_target(refused) == target
    no_token = staff.post("/referrals/new/send", details(clinic, service_id), csrf=False)
    assert no_token.status_code == 400
    assert switch_target(no_token) == "/"  # an error page names none: the dashboard
    assert stored(community) == []


def test_error_pages_are_in_arabic_with_their_code(staff: PageClient) -> None:
    in_arabic(staff)
    text = assert_arabic_page(staff.get("/referrals/no-such-referral"), 404)
    assert "<title>خطأ 404 · Community</title>" in text
    assert "هذه الصفحة غير موجودة." in text
    assert "<code>not_found</code>" in text  # codes stay as they are
    text = assert_arabic_page(staff.get("/admin"), 403)
    assert "لا يملك حسابك صلاحية فتح هذه الصفحة. يُرجى مراجعة المسؤول." in text


def test_dates_ages_and_plurals_follow_the_arabic_locale(community: TestNode) -> None:
    with community.app.test_request_context("/", headers={"Accept-Language": "ar"}):
        assert "يناير" in show_time(NOW, "long")  # 2027-01-01
        assert ARABIC_DATE_TIME.fullmatch(show_time(NOW))
        assert show_age(NOW - 3 * 86_400, NOW) == "3 أيام"
        days = [ngettext("About %(num)s day", "About %(num)s days", n) for n in (1, 2, 5, 11, 100)]
        assert days == ["نحو 1 يوم", "نحو 2 يومين", "نحو 5 أيام", "نحو 11 يومًا", "نحو 100 يوم"]
    with community.app.test_request_context("/", headers={"Accept-Language": "en"}):
        assert show_time(NOW, "long").startswith("January 1, 2027")


def test_page_modules_mark_text_with_names_the_extractor_finds() -> None:
    """``lazy_gettext as _l`` hides every string from ``pybabel extract`` (and from the
    catalog test): those labels would stay English on Arabic pages."""
    imported = re.compile(r"from flask_babel import (\w+) as (\w+)")
    hidden = [
        f"{module.name}: {name} as {alias}"
        for module in sorted((PACKAGE / "web").glob("*.py"))
        for name, alias in imported.findall(module.read_text(encoding="utf-8"))
        if "gettext" in name and alias not in EXTRACTED_NAMES
    ]
    assert hidden == []
