"""The web app in a real browser: signing in, Arabic right to left, keyboard only, a phone.

Each test drives Debian's Chromium against the community network's node served by
``exchange-node serve`` (see conftest.py) and saves screenshots of what it saw.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.browser.conftest import (
    NO_PLAYWRIGHT,
    PHONE,
    Nodes,
    box,
    screenshot,
    sign_in,
    text_edges,
)

pytest.importorskip("playwright.sync_api", reason=NO_PLAYWRIGHT)

from playwright.sync_api import BrowserContext, Page, expect

ARABIC = "العربية"
#: How far from the window's edge the header's first box may start (its padding).
EDGE_PX = 40


def has_no_sideways_scroll(page: Page) -> bool:
    return bool(
        page.evaluate(
            "() => document.scrollingElement.scrollWidth <= document.scrollingElement.clientWidth"
        )
    )


def test_the_volunteer_signs_in_and_sees_the_dashboard(page: Page, nodes: Nodes) -> None:
    page.goto(f"{nodes.community.url}/")
    expect(page).to_have_url(f"{nodes.community.url}/login?next=/")  # sent to sign in first
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    expect(page.get_by_label("E-mail address")).to_be_focused()  # autofocus
    screenshot(page, "sign-in-en")

    sign_in(page, nodes.community, nodes.volunteer)
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")
    expect(page).to_have_title("Dashboard · Rainbow Youth Network")
    main_menu = page.get_by_role("navigation", name="Main")
    expect(main_menu.get_by_role("link", name="Dashboard")).to_have_attribute(
        "aria-current", "page"
    )
    expect(main_menu.get_by_role("link", name="Administration")).to_have_count(0)  # staff
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    screenshot(page, "dashboard-en")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{nodes.community.url}/login")
    page.goto(f"{nodes.community.url}/")
    expect(page).to_have_url(f"{nodes.community.url}/login?next=/")


def test_arabic_is_laid_out_right_to_left(page: Page, nodes: Nodes) -> None:
    sign_in(page, nodes.community, nodes.volunteer)
    html = page.locator("html")
    expect(html).to_have_attribute("dir", "ltr")
    english_brand, english_tools = box(page, ".brand"), box(page, ".tools")
    assert english_brand["x"] < EDGE_PX
    assert english_brand["x"] < english_tools["x"]
    assert abs(text_edges(page, "h1")[0] - box(page, "h1")["x"]) < 2

    page.get_by_role("button", name=ARABIC).click()
    expect(html).to_have_attribute("dir", "rtl")
    expect(html).to_have_attribute("lang", "ar")
    expect(page).to_have_url(f"{nodes.community.url}/")  # back where it was chosen
    expect(page.get_by_role("button", name="English")).to_be_visible()  # the way back
    brand, tools = box(page, ".brand"), box(page, ".tools")
    width = page.viewport_size["width"] if page.viewport_size else 0
    assert brand["x"] + brand["width"] > width - EDGE_PX, "the brand is not at the right edge"
    assert tools["x"] < brand["x"], "the tools are not left of the brand"
    heading = box(page, "h1")
    heading_text = text_edges(page, "h1")
    assert abs(heading_text[1] - (heading["x"] + heading["width"])) < 2, "the heading starts left"
    screenshot(page, "dashboard-ar")

    # The language outlives signing out: the sign-in page is in Arabic too.
    page.locator("form[action='/logout'] button").click()
    expect(page).to_have_url(f"{nodes.community.url}/login")
    expect(html).to_have_attribute("dir", "rtl")
    screenshot(page, "sign-in-ar")
    page.get_by_role("button", name="English").click()
    expect(html).to_have_attribute("dir", "ltr")


def test_keyboard_only_skip_link_first_and_focus_visible(page: Page, nodes: Nodes) -> None:
    page.goto(f"{nodes.community.url}/login")
    # Sign in with the keyboard alone: the address field has the focus already.
    expect(page.get_by_label("E-mail address")).to_be_focused()
    page.keyboard.type(nodes.volunteer.email)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(nodes.volunteer.password)
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{nodes.community.url}/")

    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).not_to_be_in_viewport()  # hidden until it has the focus
    page.keyboard.press("Tab")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    outline = skip.evaluate("link => getComputedStyle(link).outlineStyle")
    assert outline == "solid", f"no visible focus outline on the skip link ({outline})"
    screenshot(page, "keyboard-skip-link")
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()


@pytest.mark.parametrize("language", ["en", "ar"])
def test_at_360_px_nothing_scrolls_sideways(
    new_context: Callable[..., BrowserContext], nodes: Nodes, language: str
) -> None:
    page = new_context(viewport=PHONE).new_page()
    page.goto(f"{nodes.community.url}/login")
    if language == "ar":
        page.get_by_role("button", name=ARABIC).click()
        expect(page.locator("html")).to_have_attribute("dir", "rtl")
    assert has_no_sideways_scroll(page), "the sign-in page scrolls sideways at 360 px"
    screenshot(page, f"sign-in-{language}-360px")

    # By the fields' ids: in Arabic their labels are translated.
    page.locator("#f-email").fill(nodes.volunteer.email)
    page.locator("#f-password").fill(nodes.volunteer.password)
    page.locator("#f-password").press("Enter")
    expect(page).to_have_url(f"{nodes.community.url}/")
    for path in ("/", "/directory", "/referrals", "/services"):
        page.goto(f"{nodes.community.url}{path}")
        assert has_no_sideways_scroll(page), f"{path} scrolls sideways at 360 px ({language})"
    page.goto(f"{nodes.community.url}/")
    screenshot(page, f"dashboard-{language}-360px")
