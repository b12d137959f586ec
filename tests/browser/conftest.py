"""Fixtures of the browser tests: two real nodes, and Debian's Chromium driven by Playwright.

The nodes are the demo's community network and clinic (:mod:`exchange_node.demo_nodes`
starts them: ``exchange-node serve`` processes on free loopback ports, each with its
in-process worker), peered both ways; the clinic publishes the demo's drop-in service
with capacity and the community has synced its directory. Each has one staff member.
They serve the whole session; each test gets a fresh browser context (no cookies).

The tests skip, saying why, when the ``playwright`` package or a Chromium is missing:
Playwright drives ``/usr/bin/chromium`` (or ``EXCHANGE_TEST_CHROMIUM``), never a
browser of its own (``playwright install`` downloads one, which cannot work here).
Screenshots go to ``tests/browser/screenshots/`` (git-ignored).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from exchange_node.demo import ORGANIZATIONS
from exchange_node.demo_nodes import (
    Account,
    DemoError,
    DemoNode,
    add_accounts_side_by_side,
    free_ports,
    initialize_side_by_side,
    run_side_by_side,
)
from exchange_node.demo_steps import ACCOUNTS, CLINIC_CAPACITY, CLINIC_SERVICE

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

CHROMIUM = Path(os.environ.get("EXCHANGE_TEST_CHROMIUM", "/usr/bin/chromium"))
#: Headless, as root, and nothing that reaches for the network (this machine has none
#: beyond loopback, and a refused connection at every start only slows Chromium down).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
SCREENSHOTS = Path(__file__).parent / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}
#: Playwright's wait for a page or an element; delivery between the nodes takes well under it.
WAIT_MS = 10_000
#: How long a referral or its status may take to travel between the nodes (worker rounds).
DELIVERY_SECONDS = 30.0
NO_PLAYWRIGHT = "the 'playwright' package is not installed (pip install -e '.[test]')"


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        return NO_PLAYWRIGHT
    if not os.access(CHROMIUM, os.X_OK):
        return (
            f"no Chromium at {CHROMIUM}: install Debian's 'chromium' package (.ci/run does, "
            "as root) or set EXCHANGE_TEST_CHROMIUM to a Chromium executable"
        )
    return None


@pytest.fixture(scope="session", autouse=True)
def _browser_available() -> None:
    """Skip every browser test, saying why, before any node is started."""
    reason = missing_browser()
    if reason is not None:
        pytest.skip(reason)


@dataclass
class Nodes:
    """The two served nodes, the clinic's service and the staff account on each."""

    community: DemoNode
    clinic: DemoNode
    service_id: str
    volunteer: Account
    intake: Account


def staff_account(key: str) -> tuple[str, str]:
    """The demo's staff member (e-mail, role) on the node ``key``."""
    return next(account for account in ACCOUNTS[key] if account[1] == "staff")


@pytest.fixture(scope="session")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nodes]:
    """A community network and a clinic served on loopback, set up with the CLI."""
    home = tmp_path_factory.mktemp("browser-nodes")
    ports = free_ports(2)
    community, clinic = (
        DemoNode(key, name, kind, home / key, port)
        for (key, name, kind), port in zip(ORGANIZATIONS[:2], ports, strict=True)
    )
    try:
        initialize_side_by_side(community, clinic)
        for node in (community, clinic):
            node.start()
        for node in (community, clinic):
            node.wait_until_ready()
        yield set_up(community, clinic)
    except DemoError as e:
        pytest.fail(f"setting up the nodes failed: {e.message}\n{e.output}\n{logs(e.node)}")
    finally:
        for node in (community, clinic):
            node.stop()
        print(logs(community), logs(clinic), sep="\n")  # shown when a test failed


def set_up(community: DemoNode, clinic: DemoNode) -> Nodes:
    """Peer both ways, publish the clinic's service, sync the directory, add staff."""
    _, added = run_side_by_side(
        (community, ("peer", "add", clinic.url, "--thumbprint", clinic.thumbprint)),
        (clinic, ("service", "add", *CLINIC_SERVICE, "--json")),
    )
    service_id = str(json.loads(added)["service"]["id"])
    clinic.run("peer", "accept", community.url, "--thumbprint", community.thumbprint)
    clinic.run("capacity", "set", service_id, *CLINIC_CAPACITY)
    community.run("directory", "sync")
    [[volunteer], [intake]] = add_accounts_side_by_side(
        (community, [staff_account("community")]), (clinic, [staff_account("clinic")])
    )
    return Nodes(community, clinic, service_id, volunteer, intake)


def logs(node: DemoNode | None) -> str:
    if node is None:
        return ""
    return f"--- {node.name}'s log ---\n{node.log_tail(200)}"


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, for the whole session."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=list(CHROMIUM_FLAGS)
        )
        yield chromium
        chromium.close()


@pytest.fixture
def new_context(browser: Browser) -> Iterator[Callable[..., BrowserContext]]:
    """Make fresh browser contexts (own cookies: one per person); closed after the test."""
    made: list[BrowserContext] = []

    def make(*, viewport: dict[str, int] = DESKTOP) -> BrowserContext:
        context = browser.new_context(viewport=viewport, locale="en-GB")
        context.set_default_timeout(WAIT_MS)
        made.append(context)
        return context

    yield make
    for context in made:
        context.close()


@pytest.fixture
def page(new_context: Callable[..., BrowserContext]) -> Page:
    """A page in a fresh desktop-sized context."""
    return new_context().new_page()


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as ``tests/browser/screenshots/NAME.png``."""
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def text_edges(page: Page, selector: str) -> tuple[float, float]:
    """Where the text of the first ``selector`` starts and ends, left to right, in pixels."""
    edges = page.locator(selector).first.evaluate(
        """element => {
            const range = document.createRange();
            range.selectNodeContents(element);
            const box = range.getBoundingClientRect();
            return [box.left, box.right];
        }"""
    )
    return float(edges[0]), float(edges[1])


def box(page: Page, selector: str) -> dict[str, float]:
    """The bounding box of the first ``selector`` (x, y, width, height)."""
    found = page.locator(selector).first.bounding_box()
    assert found is not None, f"{selector} is not rendered"
    return dict(found)


def sign_in(page: Page, node: DemoNode, account: Account) -> None:
    """Sign in on ``node``'s page in English, as a person would; ends on the dashboard."""
    from playwright.sync_api import expect

    page.goto(f"{node.url}/login")
    page.get_by_label("E-mail address").fill(account.email)
    page.get_by_label("Password").fill(account.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{node.url}/")


def reload_until(page: Page, check: Callable[[], None], seconds: float = DELIVERY_SECONDS) -> None:
    """Reload ``page`` until ``check`` (Playwright assertions, which wait a while each) holds.

    What another node sends arrives through the workers, so a page shows it only when
    loaded again; each failed check's own auto-waiting paces the reloads.
    """
    deadline = time.monotonic() + seconds
    while True:
        page.reload()
        try:
            check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        else:
            return
