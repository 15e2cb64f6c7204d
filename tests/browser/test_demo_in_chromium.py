"""The demo in a real browser (Debian's Chromium, driven by Playwright): bookmark URL → test IdP → portal,
and admin → test → trace → continue. Screenshots go to test-artifacts/ for a person to look at."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a browser start and a demo: over 5 s each

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright (pip) is not installed")

if CHROMIUM is None:
    if os.environ.get("CI"):
        pytest.fail("CI must run the browser tests, but Chromium is not installed", pytrace=False)
    pytest.skip("Chromium is not installed (apt-get install chromium)", allow_module_level=True)

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]  # fmt: skip


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    yield page
    context.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_bookmark_to_portal_in_a_browser(demo, page):
    page.goto(f"{demo.urls.broker}/login/academy?target=/courses/123")
    shot(page, "01-discovery")
    page.get_by_role("link", name="Contoso staff (Microsoft Entra ID)").click()
    page.wait_for_url(f"{demo.urls.idp}/**")
    shot(page, "02-test-idp")
    page.get_by_role("button", name="Alex Morgan").click()
    # Two auto-posting forms run by themselves (the IdP's, then the broker's): the portal page arrives.
    page.wait_for_selector("#signed-in", timeout=15_000)
    shot(page, "03-portal")
    assert page.inner_text("#signed-in") == "Signed in to academy as alex.morgan@contoso.example"
    assert page.inner_text("#relay-state") == "/courses/123"
    assert "Sales Team" in page.inner_text("#groups")


def test_autopost_works_without_javascript(demo, browser):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{demo.urls.broker}/login/sales")
    page.get_by_role("button", name="Sam Lee").click()
    page.get_by_role("button", name="Continue").click()  # the test IdP's form, by hand
    shot(page, "04-no-javascript-continue")
    page.get_by_role("button", name="Continue to Sales Enablement").click()
    page.wait_for_selector("#signed-in")
    assert "Signed in to sales as sam.lee@contoso.example" in page.inner_text("#signed-in")
    context.close()


def test_admin_test_trace_continue_in_a_browser(demo, page):
    page.goto(f"{demo.urls.broker}/admin/")
    page.get_by_role("link", name="Contoso staff (Microsoft Entra ID)").click()
    page.get_by_role("button", name="Alex Morgan").click()
    page.wait_for_selector("text=Broker administration")
    shot(page, "05-admin")
    page.locator("a.test-link", has_text="Test via entra").first.click()
    page.get_by_role("button", name="Priya Shah").click()
    page.wait_for_selector("#verdict")
    shot(page, "06-trace")
    assert "Every check passed" in page.inner_text("#verdict")
    for section in ("#checks", "#claims", "#routing", "#provisioning", "#outgoing", "#response", "#request"):
        assert page.locator(section).count() == 1, section
    page.click("#continue")
    page.wait_for_selector("#signed-in", timeout=15_000)
    shot(page, "07-continued-to-portal")
    assert "Signed in to academy as priya.shah@contoso.example" in page.inner_text("#signed-in")


def test_picker_error_and_setup_pages_render(demo, page):
    page.goto(f"{demo.urls.broker}/login?idp=entra")
    page.get_by_role("button", name="Alex Morgan").click()
    page.wait_for_selector("text=Choose a learning portal")
    shot(page, "08-portal-picker")
    page.get_by_role("button", name="Sales Enablement").click()
    page.wait_for_selector("#signed-in", timeout=15_000)
    assert "Signed in to sales" in page.inner_text("#signed-in")

    page.goto(f"{demo.urls.broker}/login/sales?idp=entra&target=//evil.example")
    shot(page, "09-error-page")
    assert "target page is not allowed" in page.inner_text("main")
    assert page.locator(".ref").count() == 1

    page.goto(f"{demo.urls.broker}/portals/academy/metadata")
    shot(page, "10-learnupon-settings")
    assert "Certificate fingerprint (SHA-1)" in page.inner_text("main")
